"""The planted suites of ``python -m benchmarks quality`` — ``planted``, ``planted-few``, ``planted-gen`` — built from a
planted universe (:mod:`taskgraph.data.planted`, :mod:`taskgraph.data.planted_gen`) whose task × skill incidence is
the ground truth; what each suite is for and the fairness rules: :mod:`benchmarks.quality.suites`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from benchmarks.quality.suites import (
    FEW_BUDGET,
    PLANTED_BUDGET,
    PLANTED_GEN_BUDGET,
    Budget,
    HeldOutTask,
    QualityError,
    Suite,
    declare_every_pair,
)
from taskgraph.errors import validation_problems

FEW_UNIVERSE: dict[str, Any] = {"tasks": 44, "held_out": 4}  # 40 seen tasks over the default 8 skills
# planted-gen: 12 generative tasks over 6 skills, none held out.
GEN_UNIVERSE: dict[str, Any] = {"skills": 6, "tasks": 12, "held_out": 0, "min_tasks_per_skill": 3}
# What ``planted_suite(universe=...)`` / ``bench quality --planted KEY=VALUE`` may set: the planted universe
# (PlantedConfig) and the size of the random-init model it trains (planted_spec's keywords).
UNIVERSE_KEYS = (
    "seed",
    "skills",
    "tasks",
    "held_out",
    "skills_per_task",
    "min_tasks_per_skill",
    "tokens_per_skill",
    "seq_len",
    "vocab_size",
    "examples_per_task",
    "hidden_size",
    "num_layers",
    "num_heads",
    "rank",
)
TINY_UNIVERSE: dict[str, Any] = {  # 6 seen tasks, 10 of their 15 pairs related, 1 held out
    "skills": 6,
    "tasks": 7,
    "held_out": 1,
    "skills_per_task": (2, 2),
    "min_tasks_per_skill": 1,
    "seq_len": 12,
    "vocab_size": 64,
    "examples_per_task": 40,
    "hidden_size": 16,
    "num_heads": 2,
    "rank": 2,
}
TINY_GEN_UNIVERSE: dict[str, Any] = {**TINY_UNIVERSE, "tasks": 6, "held_out": 0}  # planted-gen --tiny: all seen


def planted_suite(
    budget: Budget = PLANTED_BUDGET, universe: Mapping[str, Any] | None = None, declare: bool = False
) -> Suite:
    """The planted suite over ``planted_spec(**universe)`` (default: its default universe); ``declare``: every seen
    pair's relation declared (:func:`declare_planted_truth`)."""
    from taskgraph.data import PlantedConfig, planted_spec, planted_universe

    budget.check("planted")
    options = dict(universe or {})
    unknown = sorted(set(options) - set(UNIVERSE_KEYS))
    if unknown:
        raise QualityError(f"bench quality --planted: unknown key(s) {unknown}; choose from {list(UNIVERSE_KEYS)}")
    config_keys = set(PlantedConfig.model_fields)
    try:
        config = PlantedConfig(**{k: v for k, v in options.items() if k in config_keys})
    except ValidationError as exc:
        problems = validation_problems(exc, root="universe")
        raise QualityError(f"bench quality --planted: not a valid planted universe: {problems}") from None
    full = planted_spec(
        include_held_out=True, steps=budget.steps, batch_size=budget.batch_size, name="planted", **options
    )
    world = planted_universe(config)
    held = set(world.held_out_tasks())
    entries = full["tasks"]  # task t is entries[t]
    seen_names = [entries[t]["name"] for t in world.seen_tasks()]
    held_out = []
    for t in sorted(held):
        skills = set(world.skills_of(t))
        relate = {entries[s]["name"]: 1.0 for s in world.seen_tasks() if skills & set(world.skills_of(s))}
        held_out.append(
            HeldOutTask(entries[t]["name"], entries[t]["num_labels"], dict(entries[t]["data"]), None, relate)
        )
    base = {**full, "tasks": [e for e in entries if e["name"] in seen_names]}
    notes = (
        (
            f"planted universe: {world!r}; seen tasks train, held-out tasks "
            f"{[h.name for h in held_out]} are adapted few-/zero-shot"
        ),
        (
            "graph zero-shot relations: every seen task sharing a skill with the held-out task, weight 1 "
            "(ground truth, used for routing only)"
        ),
    )
    suite = Suite("planted", base, Path("."), tuple(held_out), {}, budget, notes)
    return declare_planted_truth(suite) if declare else suite


def planted_few_suite(budget: Budget = FEW_BUDGET, universe: Mapping[str, Any] | None = None) -> Suite:
    """``planted-few``: :func:`planted_suite` over ``FEW_UNIVERSE`` (updated by ``universe``), every seen pair declared
    (1 when the two tasks share a planted skill, else 0); see the module docstring."""
    options = {**FEW_UNIVERSE, **dict(universe or {})}
    base = planted_suite(budget, options)
    cap = "all" if budget.train_examples is None else f"at most {budget.train_examples}"
    few = f"few examples: {cap} training examples per seen task ({len(base.seen_tasks)} seen tasks)"
    return declare_planted_truth(replace(base, name="planted-few", notes=(*base.notes, few)))


def declare_planted_truth(suite: Suite) -> Suite:
    """``suite`` (one planted universe's tasks) with every seen pair declared in every cell: 1.0 where the two tasks
    share a planted skill, else 0.0 — what a user who knows the skill groups would say (planted-few always; planted
    and planted-gen with ``--declare``)."""
    from taskgraph.data import PlantedConfig, planted_universe

    data = suite.base["tasks"][0]["data"]  # every task's data block carries the whole universe config
    world = planted_universe(PlantedConfig(**{k: v for k, v in data.items() if k in PlantedConfig.model_fields}))
    row = {t["name"]: t["data"]["task"] for t in suite.base["tasks"]}
    declared = declare_every_pair(
        list(row), lambda a, b: bool(set(world.skills_of(row[a])) & set(world.skills_of(row[b])))
    )
    related = sum(1 for *_, w in declared if w > 0)
    note = (
        f"declared in every cell: all {len(declared)} seen pairs, {related} sharing a planted skill at 1.0, the "
        "others at 0.0 (only the graph router reads them; relation AUROC scores undeclared pairs only)"
    )
    return replace(suite, notes=(*suite.notes, note), declared=declared)


def planted_gen_suite(
    budget: Budget = PLANTED_GEN_BUDGET, universe: Mapping[str, Any] | None = None, declare: bool = False
) -> Suite:
    """``planted-gen``: :func:`~taskgraph.data.planted_gen.planted_gen_spec` over ``GEN_UNIVERSE`` (updated by
    ``universe``, the keys of :data:`UNIVERSE_KEYS` but ``tokens_per_skill``); every task is seen (see the module
    docstring); ``declare``: every pair's relation declared (:func:`declare_planted_truth`)."""
    from taskgraph.data import planted_gen_spec

    budget.check("planted-gen")
    options = {**GEN_UNIVERSE, **dict(universe or {})}
    allowed = [k for k in UNIVERSE_KEYS if k != "tokens_per_skill"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise QualityError(f"bench quality --planted (planted-gen): unknown key(s) {unknown}; choose from {allowed}")
    if options.get("held_out"):
        raise QualityError(
            f"bench quality --planted held_out={options['held_out']} (planted-gen): this suite holds no task out "
            "(generative adaptation is not part of it); leave held_out at 0"
        )
    try:
        base = planted_gen_spec(steps=budget.steps, batch_size=budget.batch_size, name="planted-gen", **options)
    except ValidationError as exc:
        problems = validation_problems(exc, root="universe")
        raise QualityError(f"bench quality --planted (planted-gen): not a valid planted universe: {problems}") from None
    notes = (
        f"planted generative universe: {len(base['tasks'])} tasks over {options['skills']} skills, every task seen; "
        "a task's target is the tokens of its own skills in the sequence's first half, so it needs exactly its skills",
        "accuracy = exact match of the greedy generation (chance ~0)",
    )
    suite = Suite("planted-gen", base, Path("."), (), {}, budget, notes)
    return declare_planted_truth(suite) if declare else suite
