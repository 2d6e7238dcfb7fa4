"""The real-text suites of ``python -m benchmarks quality`` — ``real`` and ``real-few`` — over a spec of catalog tasks with
families (default ``configs/real-text.yaml``); what each suite is for and the fairness rules:
:mod:`benchmarks.quality.suites`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from benchmarks.quality.suites import (
    REAL_BUDGET,
    REAL_FEW_BUDGET,
    Budget,
    HeldOutTask,
    QualityError,
    Suite,
    declare_every_pair,
)
from taskgraph.errors import TaskgraphError

REAL_CONFIG = "configs/real-text.yaml"
HELD_OUT_FAMILIES = ("sentiment", "topic", "authorship")  # real: the last task of the first two with ≥ 2 tasks
HELD_OUT_COUNT = 2


def config_label(path: Path) -> str:
    """A suite config as a record names it: relative to the repository when inside it (no machine's absolute path)."""
    repo = Path(__file__).resolve().parents[2]
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return str(path)


def find_real_config(
    path: str | os.PathLike[str] | None = None, default: str = REAL_CONFIG, suite: str = "real"
) -> Path:
    """``path``, else ``default`` (``configs/real-text.yaml``) under the working folder or the repository."""
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise QualityError(f"bench quality --config {str(found)!r}: no such file")
        return found
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):  # the repository holds benchmarks/quality
        if (root / default).is_file():
            return root / default
    raise QualityError(
        f"bench quality --suite {suite}: {default} was not found under {str(Path.cwd())!r} or the "
        "repository; give it with --config PATH"
    )


def read_suite_config(path: Path, suite: str) -> dict[str, Any]:
    """A suite's spec file as a dict with a ``tasks`` list (safe YAML); QualityError naming the file otherwise."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise QualityError(f"bench quality --suite {suite}: cannot read {str(path)!r}: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tasks"), list):
        raise QualityError(f"bench quality --suite {suite}: {str(path)!r} is not a spec with a tasks list")
    return raw


def task_family(task: Mapping[str, Any]) -> str | None:
    """A config task's family: its ``family`` field, else the catalog's family of its ``data.name``."""
    if task.get("family"):
        return str(task["family"])
    data = task.get("data") or {}
    if data.get("source") == "catalog" and data.get("name"):
        try:
            from taskgraph.data import catalog_task
        except ImportError:
            return None
        try:
            return str(catalog_task(str(data["name"])).family)
        except (TaskgraphError, KeyError, AttributeError):
            return None
    return None


def choose_held_out(
    tasks: Sequence[Mapping[str, Any]], families: Mapping[str, str | None], names: Sequence[str] | None = None
) -> list[str]:
    """The held-out tasks: ``names`` if given, else the last task of each of the first
    :data:`HELD_OUT_COUNT` families of :data:`HELD_OUT_FAMILIES` that have at least two tasks (so one stays seen)."""
    order = [str(t["name"]) for t in tasks]
    if names:
        unknown = [n for n in names if n not in order]
        if unknown:
            raise QualityError(f"bench quality --held-out {unknown}: not tasks of the config; its tasks are {order}")
        if len(set(names)) == len(order):
            raise QualityError("bench quality --held-out: every task would be held out; keep some to train on")
        return list(dict.fromkeys(names))
    chosen = []
    for family in HELD_OUT_FAMILIES:
        members = [n for n in order if families.get(n) == family]
        if len(members) >= 2 and len(chosen) < HELD_OUT_COUNT:
            chosen.append(members[-1])
    return chosen


def real_suite(
    budget: Budget = REAL_BUDGET, config: str | os.PathLike[str] | None = None, held_out: Sequence[str] | None = None
) -> Suite:
    """The real suite over the config (default ``configs/real-text.yaml``); see the module docstring."""
    budget.check("real")
    path = find_real_config(config)
    raw = read_suite_config(path, "real")
    tasks = [dict(t) for t in raw["tasks"]]
    families = {str(t["name"]): task_family(t) for t in tasks}
    chosen = choose_held_out(tasks, families, held_out)
    seen = [t for t in tasks if t["name"] not in chosen]
    for t in seen:  # the family is the relation ground truth: keep it on every task
        if families[t["name"]] and not t.get("family"):
            t["family"] = families[t["name"]]
    out = []
    for name in chosen:
        entry = next(t for t in tasks if t["name"] == name)
        family = families[name]
        relate = {str(t["name"]): 1.0 for t in seen if family is not None and families[t["name"]] == family}
        out.append(HeldOutTask(name, int(entry["num_labels"]), dict(entry.get("data") or {}), family, relate))
    base = {**raw, "tasks": seen}
    notes = (
        f"config {config_label(path)}; held out {chosen} (adapted few-/zero-shot), {len(seen)} seen tasks train",
        "declared relations dropped: relation AUROC is measured against the families with none declared",
        "graph zero-shot relations: every seen task of the held-out task's family, weight 1",
    )
    seen_families = {str(t["name"]): str(families[t["name"]]) for t in seen if families[t["name"]]}
    return Suite("real", base, path.parent.resolve(), tuple(out), seen_families, budget, notes)


def real_few_suite(
    budget: Budget = REAL_FEW_BUDGET,
    config: str | os.PathLike[str] | None = None,
    held_out: Sequence[str] | None = None,
) -> Suite:
    """``real-few``: :func:`real_suite` with at most ``budget.train_examples`` rows per seen task and every seen pair
    declared (1 within a family, 0 across); see the module docstring."""
    base = real_suite(budget, config, held_out)
    family = base.families
    declared = declare_every_pair(base.seen_tasks, lambda a, b: a in family and family.get(a) == family.get(b))
    related = sum(1 for *_, w in declared if w > 0)
    cap = "all" if budget.train_examples is None else f"at most {budget.train_examples}"
    notes = (
        base.notes[0],
        f"few rows: {cap} training rows per seen task ({len(base.seen_tasks)} seen tasks; validation and test whole)",
        f"declared in every cell: all {len(declared)} seen pairs, {related} within a family at 1.0, the others at "
        "0.0 (only the graph router reads them; relation AUROC scores undeclared pairs only, so none is scored)",
        base.notes[2],
    )
    return replace(base, name="real-few", notes=notes, declared=declared)
