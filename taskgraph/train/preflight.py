"""Everything ``taskgraph train`` checks before its first step, without training: ``taskgraph validate``.

The checks are the very functions :func:`~taskgraph.train.train` runs, in its order — the model counted on
the meta device (:func:`~taskgraph.model.footprint.plan_model`) and its memory estimate, the model built,
every task's data read and encoded, the sampler and the optimizer — so a spec that passes here passes
there. Data problems are collected task by task, so every broken task is named at once.

One difference, on purpose: validate never downloads. A catalog task whose package is not in the cache
yet is a *note* (train would fetch it), not a problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from taskgraph.errors import TaskgraphError
from taskgraph.model.footprint import Footprint, plan_model
from taskgraph.spec.models import Spec


@dataclass
class Preflight:
    """What the checks found: problems (train would stop on each), notes, and the model's footprint."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    footprint: Footprint | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def preflight(spec: Spec, base_dir: str | os.PathLike[str], *, device: str = "cpu") -> Preflight:
    """Run train's checks on ``spec`` (relative data paths resolve against ``base_dir``)."""
    from taskgraph.model import TaskGraphModel, fill_task_features
    from taskgraph.train.batches import MultiTaskSampler, load_model_data
    from taskgraph.train.optim import build_optimizer

    found = Preflight()
    try:
        found.footprint = plan_model(spec)
        found.footprint.check_memory(spec, device)
        model = TaskGraphModel(spec)
    except TaskgraphError as exc:
        found.problems.append(f"model: {exc}")
        return found
    skip = _uncached_catalog_tasks(spec, found.notes)
    data = load_model_data(model, spec, Path(base_dir), problems=found.problems, skip=skip)
    if found.problems or skip:
        return found
    try:
        training = spec.training
        MultiTaskSampler(
            [len(t) for t in data["train"]], training.sampling, training.sampling_temperature, seed=training.seed
        )
        build_optimizer(model, training)
    except TaskgraphError as exc:
        found.problems.append(f"training: {exc}")
    try:  # the graph router's side features (router.features): what train computes before step 1
        fill_task_features(model, spec, data["train"], Path(base_dir))
    except TaskgraphError as exc:
        found.problems.append(f"router: {exc}")
    return found


def _uncached_catalog_tasks(spec: Spec, notes: list[str]) -> set[str]:
    """Names of the spec's catalog tasks not in the cache yet (a note for each)."""
    from taskgraph.data.catalog import cached, catalog_task

    skip = set()
    for task in spec.tasks:
        if task.data is None or task.data.source != "catalog":
            continue
        name = task.data.own_fields().get("name")
        try:
            hit = cached(catalog_task(str(name)))
        except TaskgraphError:
            continue  # the spec check named it already
        if hit is None:
            skip.add(task.name)
            notes.append(
                f"tasks {task.name!r}: catalog task {name!r} is not in the cache yet; train downloads it "
                f"(run `taskgraph data fetch {name}` to fetch and check it now)"
            )
    return skip
