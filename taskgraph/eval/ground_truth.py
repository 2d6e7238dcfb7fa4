"""What a run's learned structure is scored against: which tasks are truly related, which skills they use.

- **planted**: every task's data block is a ``planted``, ``planted-gen`` or ``planted-comp`` source of one universe (same
  :meth:`~taskgraph.data.planted.PlantedParams.universe_config`). Spec task t is universe row
  ``params.task``; the incidence is the universe's ``[T, S]`` rows of those tasks, and two tasks are
  related when they share a skill (:meth:`~taskgraph.data.planted.PlantedUniverse.relations`).
- **family**: every task has ``family`` set; two tasks are related when their families are equal.
- otherwise there is no ground truth (None): relation AUROCs and allocation precision are not scored.

Planted wins when both apply. :func:`declared_mask` marks the relations the spec declared (a
router was told them, so they are left out of relation AUROC).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from taskgraph.data.planted import PlantedParams, planted_universe
from taskgraph.spec.models import Spec, TaskSpec

PLANTED, FAMILY = "planted", "family"
PLANTED_SOURCES = ("planted", "planted-gen", "planted-comp")  # one universe's tasks share its truth


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The truth of a run's tasks, in ``spec.tasks`` order.

    Args:
        kind: ``"planted"`` or ``"family"``.
        related: ``[T, T]`` bool, symmetric, False on the diagonal.
        incidence: ``[T, S]`` bool task × skill (planted), else None.
    """

    kind: str
    related: np.ndarray
    incidence: np.ndarray | None = None

    def __repr__(self) -> str:
        skills = "" if self.incidence is None else f", skills={self.incidence.shape[1]}"
        pairs = int(np.triu(self.related, k=1).sum())
        return f"GroundTruth(kind={self.kind!r}, tasks={self.related.shape[0]}, related_pairs={pairs}{skills})"


def ground_truth(spec: Spec) -> GroundTruth | None:
    """The planted or family truth of ``spec``'s tasks (see the module docstring); None when neither applies."""
    return planted_truth(spec) or family_truth(spec)


def planted_truth(spec: Spec) -> GroundTruth | None:
    """The truth of a spec whose every task is a task of one planted universe; else None."""
    params = [_planted_params(task) for task in spec.tasks]
    if not params or any(p is None for p in params):
        return None
    configs = {p.universe_config() for p in params if p is not None}
    if len(configs) != 1:
        return None  # tasks of several universes: their skills are not comparable
    universe = planted_universe(configs.pop())
    rows = [p.task for p in params if p is not None]
    incidence = universe.incidence[rows]  # [T, S]
    inc = incidence.astype(np.int64)
    related = (inc @ inc.T) > 0  # [T, T] share a skill
    np.fill_diagonal(related, False)
    return GroundTruth(PLANTED, related, incidence.copy())


def family_truth(spec: Spec) -> GroundTruth | None:
    """Same family = related, when every task has a ``family``; else None."""
    families = [task.family for task in spec.tasks]
    if not families or any(f is None for f in families):
        return None
    fam = np.array(families, dtype=object)
    related = fam[:, None] == fam[None, :]  # [T, T]
    np.fill_diagonal(related, False)
    return GroundTruth(FAMILY, related.astype(bool))


def declared_mask(spec: Spec) -> np.ndarray:
    """``[T, T]`` bool: the pairs ``relations.declared`` names (both directions)."""
    ids = {name: i for i, name in enumerate(spec.task_names)}
    mask = np.zeros((len(ids), len(ids)), dtype=bool)
    for a, b, _ in spec.relations.declared:
        if a in ids and b in ids:
            mask[ids[a], ids[b]] = mask[ids[b], ids[a]] = True
    return mask


def _planted_params(task: TaskSpec) -> PlantedParams | None:
    data = task.data
    if data is None or data.source not in PLANTED_SOURCES:
        return None
    if isinstance(data.params, PlantedParams):
        return data.params
    try:
        return PlantedParams.model_validate(data.own_fields())
    except ValidationError:
        return None
