"""Serving tasks never trained by every method of the new-task comparison, on the same trained runs.

The regimes (``compositional``: planted skill combinations; ``real_descriptions``: catalog tasks held out of their
family) train one run per *arm* and then serve each held-out task — a :class:`NewTask` — by these methods:

=================  =========================================================================================
graph              graph router with side features: attached from the description (and examples, when the
                   regime has them) and the declared relations
graph-nn           the same run, attached from the side features alone (relations computed: k nearest by them)
mlp                the no-edge ablation (``task_messages: false``), same features, attached as ``graph``
graph-side         graph router with side features and no free residual, attached as ``graph``
mlp-side           its no-edge ablation
graph-free         today's graph router (free task vectors): attached from the relations (neighbour features)
poly-neighbour     Poly, the new row = the relation-weighted mean of the neighbours' logits (no GNN)
nearest-task       Poly, the mixture of the 3 seen tasks whose description or examples embed closest (LoRAuter)
arrow              Poly's skills routed per token by Arrow (no task information at all)
uniform            Poly with a uniform row (the floor)
lorahub-16         Poly, LoraHub's CMA-ES over the row on 16 labelled shots (40 evaluations)
mhr-z-16           Poly, the row trained on 16 labelled shots (adapt mode ``routing``, 100 steps)
=================  =========================================================================================

A regime trains the arms it needs (:data:`ATTACHED`: which arm each attached method reads); the Poly methods read
the ``poly`` arm.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmarks.record_io import RecordError, read_record
from taskgraph.adapt import (
    adapt_run,
    load_task_splits,
    lorahub_search,
    nearest_task_logits,
    neighbour_logits,
    set_task_logits,
)
from taskgraph.adapters import arrow_routing
from taskgraph.atomic import write_text
from taskgraph.cli import ExitParser, run_command
from taskgraph.data import TaskData, tokenizer_pad_id
from taskgraph.eval import score_split
from taskgraph.model import TaskGraphModel, example_inputs, find_model_dir

SHOTS = 16
NEAREST_K = 3
NEAREST_TEMPERATURE = 0.1
# attached method -> (the arm whose run it reads, the evidence it attaches from)
ATTACHED: dict[str, tuple[str, tuple[str, ...]]] = {
    "graph": ("graph", ("side", "relations")),
    "graph-nn": ("graph", ("side",)),
    "mlp": ("mlp", ("side", "relations")),
    "graph-side": ("graph-side", ("side", "relations")),
    "mlp-side": ("mlp-side", ("side", "relations")),
    "graph-free": ("graph-free", ("relations",)),
}
METHODS = (*ATTACHED, "poly-neighbour", "nearest-task", "arrow", "uniform", "lorahub-16", "mhr-z-16")
CANDIDATES = {"graph": "mlp", "graph-side": "mlp-side"}  # graph configurations (chosen on validation) -> ablation
POLY_METHODS = ("poly-neighbour", "nearest-task", "arrow", "uniform", "lorahub-16", "mhr-z-16")
BASELINES = ("poly-neighbour", "nearest-task", "arrow", "lorahub-16", "mhr-z-16")  # the comparison's baselines
LABELED = ("lorahub-16", "mhr-z-16")  # read 16 labelled shots; the rest read none


def arms(side: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The router of every arm a regime trains, given its side features ``side``: the graph router with them and the
    free residual (``graph``) or without it (``graph-side``), each's no-edge ablation, today's graph router
    (``graph-free``) and Poly."""
    return {
        "graph": {"kind": "graph", "features": ["free", *side]},
        "mlp": {"kind": "graph", "features": ["free", *side], "task_messages": False},
        "graph-side": {"kind": "graph", "features": list(side)},
        "mlp-side": {"kind": "graph", "features": list(side), "task_messages": False},
        "graph-free": {"kind": "graph"},
        "poly": {"kind": "poly"},
    }


@dataclass(frozen=True)
class NewTask:
    """A held-out task as the methods serve it.

    Args:
        name: its name (not a seen task's).
        data: its data block (``{source: ..., ...}``).
        generation: its generative keys (``objective: generate``, ``max_new_tokens``, and ``template`` / ``choices``).
        relations: ``{seen task: weight in (0, 1]}``, its declared relations.
        description: its description, as text or the base's token ids.
        examples: up to ``router.examples`` unlabeled inputs (texts or token ids); None: the regime gives none.
    """

    name: str
    data: Mapping[str, Any]
    generation: Mapping[str, Any]
    relations: Mapping[str, float]
    description: str | Sequence[int]
    examples: Sequence[str | Sequence[int]] | None = None


def first_rows(data: TaskData, n: int) -> TaskData:
    """The first ``n`` rows of a split (the few shots LoraHub searches on)."""
    targets = None if data.targets is None else data.targets[:n]
    return dataclasses.replace(
        data, ids=data.ids[:n], lengths=data.lengths[:n], labels=data.labels[:n], targets=targets
    )


def shots_of(model: TaskGraphModel, index: int) -> TaskData:
    """Task ``index``'s first :data:`SHOTS` training rows (the planted and catalog rows are in a seeded random order:
    any 16 are a random 16)."""
    return first_rows(load_task_splits(model, model.spec.tasks[index], index)["train"], SHOTS)


def split_score(model: TaskGraphModel, index: int, metric: str, split: str = "test") -> float:
    """Task ``index``'s ``metric`` on ``split`` (``exact_match`` of free text, ``accuracy`` of choices)."""
    data = load_task_splits(model, model.spec.tasks[index], index)[split]
    return float(score_split(model, data, pad_id=tokenizer_pad_id(model.tokenizer))[metric])


def unlabeled_inputs(model: TaskGraphModel, index: int, limit: int) -> list[list[int]]:
    """The first ``limit`` training inputs of task ``index`` as token ids (what ``features: examples`` embeds)."""
    return example_inputs(load_task_splits(model, model.spec.tasks[index], index)["train"], limit)


def serve(
    out: Path,
    runs: Mapping[str, Path],
    tasks: Sequence[NewTask],
    methods: Sequence[str],
    *,
    seed: int,
    metric: str,
    seen_evidence: Callable[[TaskGraphModel], Tensor],
    new_evidence: Callable[[TaskGraphModel, NewTask], Tensor],
    candidates: Sequence[str] = (),
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every method's test ``metric`` on every held-out task (in order), and the ``candidates``' validation ``metric``
    (what chooses the graph configuration a regime judges).

    ``seen_evidence(poly)`` is ``[T, D]``: each seen task's embedding nearest-task compares; ``new_evidence(poly,
    task)`` the new task's ``[D]``.
    """
    scores: dict[str, list[float]] = {m: [] for m in methods}
    val: dict[str, list[float]] = {m: [] for m in candidates}
    for method, (arm, evidence) in ATTACHED.items():
        if method not in methods:
            continue
        model = TaskGraphModel.from_pretrained(find_model_dir(runs[arm]))
        for task in tasks:
            index = model.attach_task(
                task.name,
                description=task.description if "side" in evidence else None,
                examples=task.examples if "side" in evidence else None,
                relations=task.relations if "relations" in evidence else None,
                generation=task.generation,
                data=task.data,
            )
            scores[method].append(split_score(model, index, metric, "test"))
            if method in val:
                val[method].append(split_score(model, index, metric, "val"))
    if any(m in methods for m in POLY_METHODS):
        serve_on_poly(out, runs["poly"], tasks, methods, scores, seed, metric, seen_evidence, new_evidence)
    return scores, val


def serve_on_poly(
    out: Path,
    run: Path,
    tasks: Sequence[NewTask],
    methods: Sequence[str],
    scores: dict[str, list[float]],
    seed: int,
    metric: str,
    seen_evidence: Callable[[TaskGraphModel], Tensor],
    new_evidence: Callable[[TaskGraphModel, NewTask], Tensor],
) -> None:
    """The Poly run's methods (:data:`POLY_METHODS`), appended to ``scores``."""
    poly = TaskGraphModel.from_pretrained(find_model_dir(run))
    seen = seen_evidence(poly)  # [T, D]
    for task in tasks:
        index = poly.add_task_to_learn(task.name, 1, generation=task.generation, data=task.data)

        for method in ("poly-neighbour", "nearest-task", "uniform", "lorahub-16"):
            if method in methods:
                evidence = new_evidence(poly, task) if method == "nearest-task" else None  # [D]
                set_task_logits(poly, index, poly_row(method, poly, index, task, seen, evidence, seed))
                scores[method].append(split_score(poly, index, metric, "test"))
        if "arrow" in methods:
            set_task_logits(poly, index, poly_row("uniform", poly, index, task, seen, None, seed))
            with arrow_routing(poly):
                scores["arrow"].append(split_score(poly, index, metric, "test"))
        if "mhr-z-16" in methods:
            scores["mhr-z-16"].append(mhr_z(out, run, task, seed, metric))


def poly_row(
    method: str, poly: TaskGraphModel, index: int, task: NewTask, seen: Tensor, evidence: Tensor | None, seed: int
) -> Tensor:
    """The new task's ``[L, H, K]`` routing logits on the Poly run by ``method`` (its trained rows: ``[T, L, H, K]``;
    ``seen``: ``[T, D]`` and ``evidence``: ``[D]``, what nearest-task compares)."""
    logits = poly.router.logits.detach()[: len(seen)]  # [T, L, H, K]: the trained tasks' rows
    names = list(poly.task_names)
    if method == "poly-neighbour":
        return neighbour_logits(logits, {names.index(n): w for n, w in task.relations.items()})
    if method == "nearest-task":
        similarity = torch.nn.functional.cosine_similarity(seen, evidence[None], dim=1)  # [T]
        return nearest_task_logits(logits, similarity, NEAREST_K, NEAREST_TEMPERATURE)
    if method == "uniform":
        return torch.zeros_like(logits[0])
    return lorahub_search(poly, index, shots_of(poly, index), seed=seed).row  # lorahub-16


def mhr_z(out: Path, run: Path, task: NewTask, seed: int, metric: str) -> float:
    """MHR-z: the Poly run adapted to ``task`` by its routing row alone on :data:`SHOTS` labelled shots; its test
    ``metric``."""
    adapted = adapt_run(
        run,
        task=task.name,
        data=task.data,
        shots=SHOTS,
        mode="routing",
        out_dir=out / "adapt" / f"s{seed}" / task.name,
        seed=seed,
        generation=task.generation,
        overwrite=True,
        threads=1,
    )
    return float(adapted.test[metric])


# ----------------------------------------------------------------------------- reading a regime's record
def by_seed(record: Mapping[str, Any], method: str, part: str = "held_out") -> dict[int, float]:
    """``{seed: figure}`` of ``method`` in ``part`` (``held_out``, ``held_out_val``, ``seen_val``) of a record."""
    return {int(s): float(v[part][method]) for s, v in record["seeds"].items() if method in v[part]}


def chosen_graph(record: Mapping[str, Any], candidates: Sequence[str]) -> str:
    """The graph configuration a regime's targets judge: the best mean held-out validation figure over the seeds
    (a tie: the first of ``candidates``)."""
    means = {c: sum(by_seed(record, c, "held_out_val").values()) / len(record["seeds"]) for c in candidates}
    return max(candidates, key=lambda c: (means[c], -list(candidates).index(c)))


RECORD_KEYS = ("steps", "methods", "seeds")


def run_regime(module: str, command: Callable[[], int]) -> int:
    """A regime's ``main`` under the harness's exit-code contract (:func:`taskgraph.cli.run_command`)."""
    return run_command(command, bug=f"python -m {module} hit an internal error (exit 1)")


def merge_records(path: Path, others: list[Path]) -> dict[str, Any]:
    """The record at ``path`` with the seeds of ``others`` (other processes' records of the same settings) added."""
    record = read_record(path, "regime record", RECORD_KEYS)
    for other in others:
        extra = read_record(other, "regime record", RECORD_KEYS)
        if extra["steps"] != record["steps"] or extra["methods"] != record["methods"]:
            raise RecordError(f"{other}: measured with other settings (steps, methods) than {path}; not merged")
        record["seeds"].update(extra["seeds"])
    record["seeds"] = dict(sorted(record["seeds"].items(), key=lambda kv: int(kv[0])))
    return record


# ----------------------------------------------------------------------------- a regime's tables, from its record
Paired = tuple[float, float | None, float | None]  # mean, 95 % interval (None: too few seeds)


def method_table(
    record: Mapping[str, Any], primary: str, figure: str, tasks: Sequence[str] = ()
) -> tuple[list[str], dict[str, Paired]]:
    """The held-out table's lines — each method's mean ± std over seeds, ``primary`` − method paired by seed with its
    95 % interval and verdict, and one column per held-out task in ``tasks`` — and the paired differences."""
    from benchmarks.quality.stats import paired_difference
    from benchmarks.verdicts import interval, pm, verdict

    seeds = sorted(record["seeds"], key=int)
    graph = by_seed(record, primary)
    lines = [
        f"| method | labelled shots | held-out {figure} | {primary} − method [95 % CI] | verdict |"
        + "".join(f" {t} |" for t in tasks),
        "|---|---|---|---|---|" + "---|" * len(tasks),
    ]
    paired: dict[str, Paired] = {}
    for method in record["methods"]:
        values = by_seed(record, method)
        cells = "".join(
            f" {pm([record['seeds'][s]['held_out_per_task'][method][i] for s in seeds])} |" for i in range(len(tasks))
        )
        if method == primary:
            lines.append(f"| **{method}** | 0 | {pm(list(values.values()))} | – | – |{cells}")
            continue
        diff = paired_difference(primary, graph, method, values)
        paired[method] = (diff.mean, diff.low, diff.high)
        lines.append(
            f"| {method} | {SHOTS if method in LABELED else 0} | {pm(list(values.values()))} | "
            f"{interval(diff.mean, diff.low, diff.high)} | {verdict(diff.low, diff.high)} |{cells}"
        )
    return lines, paired


def seen_lines(record: Mapping[str, Any], arms: Sequence[str], figure: str, primary: str, short: str) -> list[str]:
    """The seen tasks' validation ``figure`` of every trained arm, and the target "the features cost nothing on seen
    tasks" (``primary`` against today's graph router, met unless its interval lies below 0)."""
    from benchmarks.quality.stats import paired_difference
    from benchmarks.verdicts import interval, pm, verdict

    seen = {arm: by_seed(record, arm, "seen_val") for arm in arms}
    diff = paired_difference(primary, seen[primary], "graph-free", seen["graph-free"])
    costs = diff.high is not None and diff.high < 0
    return [
        f"Seen tasks (validation {figure} of each trained arm): "
        + "; ".join(f"{arm} {pm(list(v.values()))}" for arm, v in seen.items())
        + ".",
        f"- the features cost nothing on seen tasks ({primary} vs graph-free): {'missed' if costs else 'met'} "
        f"({interval(diff.mean, diff.low, diff.high)}, {verdict(diff.low, diff.high)}){short}",
    ]


# ----------------------------------------------------------------------------- a regime's command line and record
def regime_parser(module: str, doc: str, steps: int) -> argparse.ArgumentParser:
    """The options every regime's ``main`` takes (usage errors exit 2: :func:`run_regime`)."""
    p = ExitParser(prog=f"python -m {module}", description=doc.split("\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seeds", type=int, default=3, help="seeds first-seed .. seeds-1")
    p.add_argument("--first-seed", type=int, default=0, help="(several processes: each its own seeds and --out)")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--record", metavar="NAME", help="copy OUT's record to benchmarks/results/NAME.json and stop")
    p.add_argument("--merge", type=Path, nargs="*", default=[], metavar="OUT2", help="--record: add these OUTs' seeds")
    return p


def publish(args: argparse.Namespace, file: str, module: str, **extra: Any) -> None:
    """``--record NAME``: OUT's record and the ``--merge`` OUTs' seeds as ``benchmarks/results/NAME.json``."""
    from benchmarks.render import RESULTS

    record = merge_records(args.out / file, [o / file for o in args.merge])
    record.update(extra)
    record["command"] = (
        f"python -m {module} --out OUT --seeds {len(record['seeds'])} --steps {record['steps']} "
        "(seeds split over processes with --first-seed, merged with --record --merge)"
    )
    write_text(RESULTS / f"{args.record}.json", json.dumps(record, indent=1) + "\n")


def seen_mean(run: Path) -> float:
    """A trained arm's mean validation figure over the seen tasks (its ``train.json``)."""
    return float(json.loads((run / "train.json").read_text())["final_val"]["mean_acc"])


def measure_seeds(
    path: Path,
    seeds: range,
    steps: int,
    measure: Callable[[int], tuple[Mapping[str, Path], dict[str, list[float]], dict[str, list[float]]]],
    **extra: Any,
) -> None:
    """Each seed of ``seeds`` not in the record at ``path`` yet: ``measure(seed)`` trains the arms and serves the
    held-out tasks (the arms' runs, every method's per-task scores, the candidates' validation); the record is
    rewritten after every seed (``extra``: its other top-level keys)."""
    record: dict[str, Any] = {"steps": steps, "methods": list(METHODS), "seeds": {}}
    if path.is_file():  # a resumed run: the seeds measured before are kept
        record = read_record(path, "regime record", RECORD_KEYS)
    record.update(extra)
    for seed in seeds:
        if str(seed) in record["seeds"]:
            continue
        started = time.perf_counter()
        runs, scores, val = measure(seed)
        record["seeds"][str(seed)] = {
            "held_out": {m: sum(v) / len(v) for m, v in scores.items()},
            "held_out_val": {m: sum(v) / len(v) for m, v in val.items()},
            "held_out_per_task": scores,
            "seen_val": {arm: seen_mean(run) for arm, run in runs.items()},
            "seconds": time.perf_counter() - started,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(record, indent=1))  # atomic: a run killed mid-write keeps the seeds before
        print(f"seed {seed}: " + ", ".join(f"{m} {v:.3f}" for m, v in record["seeds"][str(seed)]["held_out"].items()))
