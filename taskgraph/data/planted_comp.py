"""The planted compositional universe: planted generative tasks, some held out as new combinations of seen skills.

The examples are the planted generative universe's (:mod:`taskgraph.data.planted_gen`: the target copies the
tokens of the task's skills that lie in the first half of the input). What this kind adds is what a router may be
told about a task it never trained on:

- **Held-out combinations.** The universe has ``seen + held_out`` tasks; the last ``held_out`` are kept out of
  training. Their skill sets are new (:func:`~taskgraph.data.planted.sample_incidence` draws every set distinct),
  but each of their skills is used by at least ``min_tasks_per_skill`` seen tasks, so a held-out task is a new
  composition of trained skills.
- **Descriptions as token ids.** Task ``t`` is described by ``description_length`` of the universe's token ids
  (:func:`planted_description`): one token of each of its skills, at shuffled positions among filler tokens::

      task {1, 4}, length 8   ->   f f s4 f f s1 f f        (s_k: a token of skill k; f: filler)

  There is no tokenizer, so the description lives in the source (:meth:`PlantedCompSource.description_ids`)
  and the task's ``description:`` text stays empty (a text there would be hashed into router features).
- **Declared relations.** Two seen tasks are related with the Jaccard weight of their skill sets,
  ``|S_i ∩ S_j| / |S_i ∪ S_j|`` (:func:`jaccard`), declared for every pair that shares a skill.

:func:`planted_comp_spec` builds a spec of the seen tasks; :func:`held_out_tasks` gives the held-out tasks'
entries with their relations to the seen ones and their descriptions, to attach zero-shot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, ValidationError, model_validator

from taskgraph.data.planted import PlantedConfig, PlantedParams, PlantedUniverse, planted_universe
from taskgraph.data.planted_gen import PlantedGenSource, planted_gen_spec
from taskgraph.errors import DataError, validation_problems
from taskgraph.registry import SOURCES

KIND = "planted-comp"
DESCRIPTION_LENGTH = 8  # tokens in a task's description (default)
DESCRIPTION_STREAM = 2  # the universe draws its tasks from stream 0 and its examples from stream 1


class PlantedCompParams(PlantedParams):
    """Parameters of a ``planted-comp`` task: those of ``planted`` plus ``description_length``, the tokens of
    its description (at least the most skills a task has)."""

    description_length: int = Field(DESCRIPTION_LENGTH, ge=1, le=4096)

    @model_validator(mode="after")
    def _room_for_skills(self) -> PlantedCompParams:
        most = self.skills_per_task[1]
        if self.description_length < most:
            raise ValueError(
                f"description_length ({self.description_length}) must be at least the most skills a task has "
                f"(skills_per_task[1] = {most}): a description names each of its task's skills once"
            )
        return self

    def universe_config(self) -> PlantedConfig:
        return PlantedConfig(**self.model_dump(exclude={"task", "description_length"}))


def planted_description(universe: PlantedUniverse, t: int, length: int, rng_seed: int) -> list[int]:
    """Task ``t``'s description: ``length`` token ids naming its skills among filler.

    Each skill ``k`` of the task (:meth:`~taskgraph.data.planted.PlantedUniverse.skills_of`) contributes one token,
    drawn from its own tokens ``universe.skill_tokens[k]``; the other ``length - |S_t|`` tokens are drawn (with
    repeats) from ``universe.filler_tokens``, never a skill's token; then the positions are shuffled. So the
    description says which skills the task uses, and nothing of what the task does with them. The same
    ``(rng_seed, t)`` gives the same description, whatever else was drawn.

    Args:
        universe: the planted universe the task belongs to.
        t: the task's index in it.
        length: tokens in the description, at least the task's skill count.
        rng_seed: the seed of the draw (:func:`PlantedCompSource.description_ids` passes the universe's seed).

    Shapes:
        returns ``[length]`` token ids in ``1 .. vocab_size - 1``.
    """
    skills = universe.skills_of(t)
    if length < len(skills):
        raise ValueError(
            f"planted task {t} uses {len(skills)} skills {skills}; a description of {length} tokens cannot name "
            f"each once: give a length of at least {len(skills)}"
        )
    rng = np.random.default_rng([rng_seed, DESCRIPTION_STREAM, t])
    named = [int(rng.choice(universe.skill_tokens[k])) for k in skills]  # [|S_t|]
    filler = rng.choice(universe.filler_tokens, size=length - len(skills))  # [length - |S_t|]
    slots = rng.permutation(length)  # [length]
    out = np.empty(length, dtype=np.int64)
    out[slots[: len(skills)]] = named
    out[slots[len(skills) :]] = filler
    return out.tolist()


def jaccard(incidence: np.ndarray) -> np.ndarray:
    """``[T, T]`` Jaccard weights ``|S_i ∩ S_j| / |S_i ∪ S_j|`` of the skill sets of ``incidence [T, S]`` (bool)."""
    inc = incidence.astype(np.int64)  # [T, S]
    shared = inc @ inc.T  # [T, T]
    size = inc.sum(1)  # [T]
    union = size[:, None] + size[None, :] - shared  # [T, T]
    return shared / np.maximum(union, 1)


def task_name(t: int, tasks: int) -> str:
    """The spec name of universe task ``t`` of ``tasks``: ``comp-007``."""
    return f"comp-{t:0{len(str(tasks - 1))}d}"


@SOURCES.register(KIND, params=PlantedCompParams)
class PlantedCompSource(PlantedGenSource):
    """One task of a planted compositional universe: ``planted-gen``'s examples, and a description as token ids
    (see the module docstring and :class:`PlantedCompParams`)."""

    kind = KIND
    params: PlantedCompParams

    def description_ids(self) -> list[int]:
        """The task's planted description (:func:`planted_description`, seeded by the universe's seed)."""
        universe = planted_universe(self.params.universe_config())
        return planted_description(universe, self.params.task, self.params.description_length, universe.config.seed)


def planted_comp_spec(
    *,
    seed: int = 0,
    skills: int = 10,
    seen: int = 120,
    held_out: int = 30,
    skills_per_task: tuple[int, int] = (2, 3),
    min_tasks_per_skill: int = 2,
    seq_len: int = 20,  # the planted inputs need 2 x skills
    vocab_size: int = 64,
    examples_per_task: int = 400,
    router: str = "graph",
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    rank: int = 4,
    steps: int = 3000,
    batch_size: int = 32,
    description_length: int = DESCRIPTION_LENGTH,
    name: str = "planted-comp",
) -> dict[str, Any]:
    """A full spec dict over a planted compositional universe of ``seen + held_out`` tasks: the spec of
    :func:`~taskgraph.data.planted_gen.planted_gen_spec` (a random-init tiny GPT-2, one generate task per seen
    task), its tasks named ``comp-NNN`` with ``planted-comp`` data blocks, and ``relations.declared`` the Jaccard
    weight of every seen pair that shares a skill. The held-out tasks are not in it (:func:`held_out_tasks`).

    Raises:
        DataError: universe arguments :class:`PlantedCompParams` refuses (every problem, one paragraph).
    """
    tasks = seen + held_out
    try:
        spec = planted_gen_spec(
            seed=seed,
            skills=skills,
            tasks=tasks,
            held_out=held_out,
            skills_per_task=skills_per_task,
            min_tasks_per_skill=min_tasks_per_skill,
            seq_len=seq_len,
            vocab_size=vocab_size,
            examples_per_task=examples_per_task,
            router=router,
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            rank=rank,
            steps=steps,
            batch_size=batch_size,
            name=name,
        )
        data = {k: v for k, v in spec["tasks"][0]["data"].items() if k != "source"}
        params = PlantedCompParams.model_validate({**data, "description_length": description_length})
    except ValidationError as exc:
        problems = validation_problems(exc, root="its settings")
        raise DataError(f"cannot build the planted compositional universe: {problems}") from None
    for entry in spec["tasks"]:
        entry["name"] = task_name(entry["data"]["task"], tasks)
        entry["data"] = {**entry["data"], "source": KIND, "description_length": description_length}
    universe = planted_universe(params.universe_config())
    ids = universe.seen_tasks()
    weights = jaccard(universe.incidence)  # [T, T]
    spec["relations"] = {
        "declared": [
            [task_name(i, tasks), task_name(j, tasks), float(weights[i, j])]
            for n, i in enumerate(ids)
            for j in ids[n + 1 :]
            if weights[i, j] > 0
        ]
    }
    return spec


def held_out_tasks(spec_or_params: Mapping[str, Any] | PlantedCompParams) -> list[dict[str, Any]]:
    """The held-out tasks of a planted compositional universe, as task entries to attach zero-shot.

    Each is a dict with the keys of a seen task of :func:`planted_comp_spec` (``name``, ``objective``,
    ``max_new_tokens``, ``data``) plus ``relations`` (``{seen task name: Jaccard weight}``, the seen tasks that
    share a skill with it) and ``description_ids`` (:func:`planted_description`).

    Args:
        spec_or_params: a :func:`planted_comp_spec` dict, or the :class:`PlantedCompParams` of any of its tasks
            (``spec.tasks[0].data.params`` of the validated spec).

    Raises:
        DataError: a dict that is not a planted compositional spec.
    """
    params = _params_of(spec_or_params)
    universe = planted_universe(params.universe_config())
    weights = jaccard(universe.incidence)  # [T, T]
    tasks, seen = universe.num_tasks, universe.seen_tasks()
    out: list[dict[str, Any]] = []
    for t in universe.held_out_tasks():
        out.append(
            {
                "name": task_name(t, tasks),
                "objective": "generate",
                "max_new_tokens": params.skills_per_task[1] + 1,  # as planted_gen_spec: the most skills + end
                "data": {"source": KIND, **params.model_copy(update={"task": t}).model_dump(mode="json")},
                "relations": {task_name(s, tasks): float(weights[t, s]) for s in seen if weights[t, s] > 0},
                "description_ids": planted_description(universe, t, params.description_length, universe.config.seed),
            }
        )
    return out


def _params_of(spec_or_params: Mapping[str, Any] | PlantedCompParams) -> PlantedCompParams:
    if isinstance(spec_or_params, PlantedCompParams):
        return spec_or_params
    tasks = spec_or_params.get("tasks") if isinstance(spec_or_params, Mapping) else None
    data = tasks[0].get("data") if isinstance(tasks, list) and tasks and isinstance(tasks[0], Mapping) else None
    if not isinstance(data, Mapping) or data.get("source") != KIND:
        raise DataError(
            f"held_out_tasks: expected a planted_comp_spec() dict (its first task's data.source {KIND!r}) or "
            f"PlantedCompParams; got a {type(spec_or_params).__name__} whose first task has "
            f"{'no data' if data is None else 'data.source ' + repr(data.get('source'))}"
        )
    try:
        return PlantedCompParams.model_validate({k: v for k, v in data.items() if k != "source"})
    except ValidationError as exc:
        raise DataError(f"held_out_tasks: the spec's first task: {validation_problems(exc, prefix='data.')}") from None
