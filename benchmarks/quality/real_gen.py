"""``bench quality --suite real-gen``: real tasks as text-to-text, every router, beside the same tasks with heads.

The suite reads ``configs/real-gen.yaml`` (or ``--config``): catalog tasks of several families whose every task is
``objective: generate`` with ``choices`` — each label's word — on an encoder–decoder (a BERT2BERT warm-started from
MiniLM-L6). A task's accuracy is rank classification (the choice with the highest length-normalised
log-likelihood under the task's routing, the T0 / MHR protocol), so it needs no decoding and reads like a
classifier's accuracy.

Every cell runs twice, under the same budget, router, rate and seed:

* ``real-gen`` — the generative tasks (the loss is the target tokens' cross-entropy);
* ``real-gen-heads`` — the same tasks and rows as classifiers: a head per task on the encoder alone (the warm
  start dropped; a config-built encoder–decoder keeps its ``encoder`` config), label ``i`` being choice ``i``.

:func:`beside` pairs the two by router and seed: generative − heads test accuracy with a Student-t interval,
and the per-family accuracy of both. No task is held out (adaptation of generative tasks is tested elsewhere;
here it would double the cost), and the learning rate is the budget's grid like every suite.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from benchmarks.quality.real_suites import config_label, find_real_config, read_suite_config, task_family
from benchmarks.quality.stats import paired_difference
from benchmarks.quality.suites import REAL_GEN_BUDGET, Budget, QualityError, Suite
from benchmarks.quality.summary import by_seed

REAL_GEN_CONFIG = "configs/real-gen.yaml"
HEADS = "real-gen-heads"


def real_gen_suite(budget: Budget = REAL_GEN_BUDGET, config: str | os.PathLike[str] | None = None) -> Suite:
    """The generative suite over ``config`` (default ``configs/real-gen.yaml``); every task is seen."""
    budget.check("real-gen")
    path = find_real_config(config, REAL_GEN_CONFIG, "real-gen")
    raw = read_suite_config(path, "real-gen")
    tasks = [dict(t) for t in raw["tasks"]]
    plain = [str(t.get("name")) for t in tasks if t.get("objective") != "generate" or not t.get("choices")]
    if plain:
        raise QualityError(
            f"bench quality --suite real-gen: {str(path)!r}: tasks {plain} are not text-to-text with choices; every "
            "task needs objective: generate and choices: [...] (rank classification is the suite's accuracy)"
        )
    families = {str(t["name"]): task_family(t) for t in tasks}
    for t in tasks:
        if families[t["name"]] and not t.get("family"):
            t["family"] = families[t["name"]]
    base = {**raw, "tasks": tasks, "relations": {"declared": []}}
    notes = (
        f"config {config_label(path)}; {len(tasks)} text-to-text tasks with choices, every one seen (no held-out task)",
        "accuracy: rank classification (length-normalised log-likelihood of each choice under the task's routing)",
        f"beside: the same tasks, rows, budget, routers and seeds with classification heads ({HEADS})",
    )
    known = {name: str(f) for name, f in families.items() if f}
    return Suite("real-gen", base, path.parent.resolve(), (), known, budget, notes)


def heads_twin(suite: Suite) -> Suite:
    """``suite``'s tasks as classifiers: a head per task (``num_labels`` = its choices, label i = choice i) on the
    encoder alone; the same data, budget and folder."""
    base = copy.deepcopy(suite.base)
    model = dict(base["model"])
    model.pop("warm_start", None)
    config = model.get("config")
    if isinstance(config, Mapping) and config.get("model_type") == "encoder-decoder":
        model["config"] = dict(config["encoder"])  # a config-built encoder-decoder: its encoder
    model["pooling"] = "mean"
    base["model"] = model
    generative = ("objective", "choices", "template", "max_new_tokens", "stop", "target")
    twin_tasks = []
    for task in base["tasks"]:
        entry = {k: v for k, v in task.items() if k not in generative}
        entry["num_labels"] = len(task["choices"])
        twin_tasks.append(entry)
    base["tasks"] = twin_tasks
    base["name"] = f"{base.get('name', 'real-gen')}-heads"
    notes = (*suite.notes[:1], "the heads twin: every task a classifier on the encoder, label i = choice i")
    return replace(suite, name=HEADS, base=base, notes=notes)


def beside(gen: Mapping[str, Any], heads: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per router in both results: test mean accuracy of each, generative − heads paired by seed (Student-t 95 %),
    and each family's accuracy under both."""
    rows_h = {r["router"]: r for r in heads["routers"]}
    out = []
    for row in gen["routers"]:
        other = rows_h.get(row["router"])
        if other is None:
            continue
        diff = paired_difference("generate", by_seed(row, "test"), "heads", by_seed(other, "test")).as_dict()
        families = sorted(set(row.get("families", {})) | set(other.get("families", {})))
        out.append(
            {
                "router": row["router"],
                "lr": {"generate": row["lr"], "heads": other["lr"]},
                "generate": row["test"],
                "heads": other["test"],
                "generate_minus_heads": diff,
                "families": {
                    f: {"generate": row["families"].get(f), "heads": other["families"].get(f)} for f in families
                },
            }
        )
    return out


def render_beside(rows: list[dict[str, Any]]) -> str:
    """The markdown table of :func:`beside`."""

    def fmt(spread: Mapping[str, Any] | None) -> str:
        if not spread or spread.get("mean") is None:
            return "–"
        std = spread.get("std")
        return f"{spread['mean']:.3f}" + (f" ± {std:.3f}" if std is not None else "")

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:+.3f}"

    families = sorted({f for r in rows for f in r["families"]})
    lines = [
        "# real-gen beside real-gen-heads: the same tasks as text-to-text (rank classification) and with heads",
        "",
        "| router | text-to-text test | heads test | text-to-text − heads [95 % CI] | "
        + " | ".join(f"{f} (t2t / heads)" for f in families)
        + " |",
        "|---|---|---|---|" + "---|" * len(families),
    ]
    for r in rows:
        d = r["generate_minus_heads"]
        cells = [
            f"{fmt(r['families'][f]['generate'])} / {fmt(r['families'][f]['heads'])}" if f in r["families"] else "–"
            for f in families
        ]
        lines.append(
            f"| {r['router']} | {fmt(r['generate'])} | {fmt(r['heads'])} | {num(d['mean'])} "
            f"[{num(d['ci_low'])}, {num(d['ci_high'])}] {d['verdict']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"
