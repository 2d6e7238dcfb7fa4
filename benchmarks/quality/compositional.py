"""planted-compositional: tasks never trained, served from what is known about them (issue 28's regime).

    python -m benchmarks.quality.compositional --out runs/q28 --seeds 3 --steps 1000

A planted universe of 10 skills; 120 seen generative tasks of 2–3 skills train one run per arm, and 30 held-out
tasks — skill *combinations* never trained, every skill seen — are then served with no gradient step (or, for the
few-shot baselines, from 16 labelled shots) and scored by exact match on their test split. Every method reads the
same held-out tasks of the same trained runs:

=================  =========================================================================================
graph              graph router, ``features: [free, description, relations]``: attach from the description and
                   the declared relations (Jaccard of skill sets)
graph-nn           the same run, attached from the description alone (relations computed: k nearest by it)
mlp                the no-edge ablation (``task_messages: false``), same features, attached as ``graph``
graph-free         today's graph router (free task vectors): zero-shot from the relations (neighbour features)
poly-neighbour     Poly, the new row = the relation-weighted mean of the neighbours' logits (no GNN)
nearest-task       Poly, the mixture of the 3 seen tasks whose description embeds closest (LoRAuter-style; the
                   examples carry no task signal here: every planted task reads the same inputs)
arrow              Poly's skills routed per token by Arrow (no task information at all)
uniform            Poly with a uniform row (the floor)
lorahub-16         Poly, LoraHub's CMA-ES over the row on 16 labelled shots (40 evaluations)
mhr-z-16           Poly, the row trained on 16 labelled shots (adapt mode ``routing``, 100 steps)
=================  =========================================================================================

Rates are fixed, not selected (declared: adapters 3e-2, router 3e-3 for the graph arms, 1e-2 for Poly, as
planted-gen's). Output: ``OUT/compositional.json`` — per seed, per method, the mean exact match over the held-out
tasks, the seen tasks' validation mean of every arm, and the paired differences graph − method with their 95 %
intervals over seeds (``benchmarks.quality.stats``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.quality.stats import paired_difference
from taskgraph.adapt import (
    adapt_run,
    load_task_splits,
    lorahub_search,
    nearest_task_logits,
    neighbour_logits,
    set_task_logits,
)
from taskgraph.adapters import arrow_routing
from taskgraph.data import TaskData, build_source, held_out_tasks, planted_comp_spec, tokenizer_pad_id
from taskgraph.eval import score_split
from taskgraph.model import TaskGraphModel, embed_sequences, find_model_dir
from taskgraph.spec import spec_from_dict
from taskgraph.train import train

FEATURES = ["free", "description", "relations"]
SIDE_ONLY = ["description", "relations"]  # no free residual: the side features must carry every task's routing
ARMS: dict[str, dict[str, Any]] = {
    "graph": {"kind": "graph", "features": FEATURES},
    "mlp": {"kind": "graph", "features": FEATURES, "task_messages": False},
    "graph-side": {"kind": "graph", "features": SIDE_ONLY},
    "mlp-side": {"kind": "graph", "features": SIDE_ONLY, "task_messages": False},
    "graph-free": {"kind": "graph"},
    "poly": {"kind": "poly"},
}
ADAPTERS_LR = 1e-2  # planted-gen's chosen rate (3-seed selection, record quality-planted-gen-declared)
ROUTER_LR = {"graph": 3e-3, "mlp": 3e-3, "graph-side": 3e-3, "mlp-side": 3e-3, "graph-free": 3e-3, "poly": 1e-2}
METHODS = (
    "graph",
    "graph-nn",
    "mlp",
    "graph-side",
    "mlp-side",
    "graph-free",
    "poly-neighbour",
    "nearest-task",
    "arrow",
    "uniform",
    "lorahub-16",
    "mhr-z-16",
)
CANDIDATES = {"graph": "mlp", "graph-side": "mlp-side"}  # graph configurations (chosen on validation) -> ablation
SHOTS = 16
GENERATE = {"objective": "generate"}


SIZES: dict[str, Any] = {"seen": 60, "held_out": 20}  # (planted_comp_spec's: 120 / 30); --tiny: a smoke run


def arm_spec(arm: str, seed: int, steps: int) -> dict[str, Any]:
    spec = planted_comp_spec(seed=seed, steps=steps, **SIZES)
    spec["name"] = f"comp-{arm}-s{seed}"
    spec["router"] = dict(ARMS[arm])
    spec["training"]["lr"] = {**spec["training"]["lr"], "adapters": ADAPTERS_LR, "router": ROUTER_LR[arm]}
    spec["training"]["eval_every"] = steps
    spec["training"]["seed"] = seed
    return spec


def train_arm(out: Path, arm: str, seed: int, steps: int) -> Path:
    """Train one arm (skipped when its run finished before); returns the run folder."""
    run = out / "train" / f"{arm}-s{seed}"
    if not (run / "train.json").is_file():
        train(spec_from_dict(arm_spec(arm, seed, steps)), run, overwrite=True, threads=1)
    return run


def seen_mean(run: Path) -> float:
    return float(json.loads((run / "train.json").read_text())["final_val"]["mean_acc"])


def first_rows(data: TaskData, n: int) -> TaskData:
    """The first ``n`` rows of a split (the planted rows are drawn at random: any n are a random n)."""
    targets = None if data.targets is None else data.targets[:n]
    return dataclasses.replace(
        data, ids=data.ids[:n], lengths=data.lengths[:n], labels=data.labels[:n], targets=targets
    )


def exact_match(model: TaskGraphModel, index: int, split: str = "test") -> float:
    data = load_task_splits(model, model.spec.tasks[index], index)[split]
    return float(score_split(model, data, pad_id=tokenizer_pad_id(model.tokenizer))["exact_match"])


def held_out_scores(
    out: Path, runs: dict[str, Path], spec: dict[str, Any], seed: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every method's test exact match on every held-out task (in order), and the candidate graph configurations'
    validation exact match (what chooses the graph configuration the targets judge)."""
    tasks = held_out_tasks(spec)
    names = [t["name"] for t in spec["tasks"]]
    scores: dict[str, list[float]] = {m: [] for m in METHODS}
    val: dict[str, list[float]] = {m: [] for m in CANDIDATES}

    def attach_all(method: str, arm: str, **how: bool) -> None:
        model = TaskGraphModel.from_pretrained(find_model_dir(runs[arm]))
        for task in tasks:
            generation = {**GENERATE, "max_new_tokens": task["max_new_tokens"]}
            description = task["description_ids"] if how.get("description") else None
            relations = task["relations"] if how.get("relations") else None
            index = model.attach_task(
                task["name"], description=description, relations=relations, generation=generation, data=task["data"]
            )
            scores[method].append(exact_match(model, index))
            if method in val:
                val[method].append(exact_match(model, index, "val"))

    attach_all("graph", "graph", description=True, relations=True)
    attach_all("graph-nn", "graph", description=True)
    attach_all("mlp", "mlp", description=True, relations=True)
    attach_all("graph-side", "graph-side", description=True, relations=True)
    attach_all("mlp-side", "mlp-side", description=True, relations=True)
    attach_all("graph-free", "graph-free", relations=True)

    poly = TaskGraphModel.from_pretrained(find_model_dir(runs["poly"]))
    logits = poly.router.logits.detach().clone()  # [T, L, H, K]
    described = embed_sequences(poly, description_ids(spec))  # [T, D]
    for task in tasks:
        generation = {**GENERATE, "max_new_tokens": task["max_new_tokens"]}
        index = poly.add_task_to_learn(task["name"], 1, generation=generation, data=task["data"])
        relate = {names.index(n): w for n, w in task["relations"].items()}
        set_task_logits(poly, index, neighbour_logits(logits, relate))
        scores["poly-neighbour"].append(exact_match(poly, index))
        probe = embed_sequences(poly, [task["description_ids"]])[0]  # [D]
        similarity = torch.nn.functional.cosine_similarity(described, probe[None], dim=1)  # [T]
        set_task_logits(poly, index, nearest_task_logits(logits, similarity, 3, 0.1))
        scores["nearest-task"].append(exact_match(poly, index))
        set_task_logits(poly, index, torch.zeros_like(logits[0]))
        scores["uniform"].append(exact_match(poly, index))
        with arrow_routing(poly):
            scores["arrow"].append(exact_match(poly, index))
        shots = first_rows(load_task_splits(poly, poly.spec.tasks[index], index)["train"], SHOTS)
        found = lorahub_search(poly, index, shots, seed=seed)
        set_task_logits(poly, index, found.row)
        scores["lorahub-16"].append(exact_match(poly, index))
        adapted = adapt_run(
            runs["poly"],
            task=task["name"],
            data=task["data"],
            shots=SHOTS,
            mode="routing",
            out_dir=out / "adapt" / f"s{seed}" / task["name"],
            seed=seed,
            generation=generation,
            overwrite=True,
            threads=1,
        )
        scores["mhr-z-16"].append(float(adapted.test["exact_match"]))
    return scores, val


def description_ids(spec: dict[str, Any]) -> list[list[int]]:
    """The seen tasks' description ids (their sources')."""
    return [build_source(task, ".").description_ids() for task in spec_from_dict(spec).tasks]


# ----------------------------------------------------------------------------- the verdicts, computed from the record
BASELINES = ("poly-neighbour", "nearest-task", "arrow", "lorahub-16", "mhr-z-16")  # item 3's, on the same runs
LABELED = ("lorahub-16", "mhr-z-16")  # read 16 labelled shots; the rest read none
MHR_Z_MARGIN = 0.05  # the declared margin over MHR-z at 16 shots
TARGET_SEEDS = 6


def by_seed(record: dict[str, Any], method: str, part: str = "held_out") -> dict[int, float]:
    return {int(s): float(v[part][method]) for s, v in record["seeds"].items() if method in v[part]}


def chosen_graph(record: dict[str, Any]) -> str:
    """The graph configuration the targets judge: the best mean held-out validation exact match over the seeds
    (a tie: the first of :data:`CANDIDATES`)."""
    means = {c: sum(by_seed(record, c, "held_out_val").values()) / len(record["seeds"]) for c in CANDIDATES}
    return max(CANDIDATES, key=lambda c: (means[c], -list(CANDIDATES).index(c)))


def compositional_block(record: dict[str, Any], name: str) -> str:
    """The held-out table (mean ± std over seeds, the chosen graph − method with its paired 95 % interval) and the
    declared targets, met or missed, as Markdown."""
    from benchmarks.verdicts import interval, pm, verdict

    seeds = sorted(int(s) for s in record["seeds"])
    primary = chosen_graph(record)
    graph = by_seed(record, primary)
    vals = {c: pm(list(by_seed(record, c, "held_out_val").values())) for c in CANDIDATES}
    lines = [
        f"Record `benchmarks/results/{name}.json` (`{record.get('command', '')}`): {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}), {record['steps']} training steps per arm, exact match on the held-out tasks' "
        "test splits, averaged over the held-out tasks per seed. The graph configuration judged is chosen on the "
        "held-out tasks' validation splits: " + ", ".join(f"{c} {v}" for c, v in vals.items()) + f" → **{primary}**.",
        "",
        f"| method | labelled shots | held-out exact match | {primary} − method [95 % CI] | verdict |",
        "|---|---|---|---|---|",
    ]
    paired_rows: dict[str, tuple[float, float | None, float | None]] = {}
    for method in record["methods"]:
        values = by_seed(record, method)
        if method == primary:
            lines.append(f"| **{method}** | 0 | {pm(list(values.values()))} | – | – |")
            continue
        diff = paired_difference(primary, graph, method, values)
        paired_rows[method] = (diff.mean, diff.low, diff.high)
        shots = SHOTS if method in LABELED else 0
        lines.append(
            f"| {method} | {shots} | {pm(list(values.values()))} | {interval(diff.mean, diff.low, diff.high)} | "
            f"{verdict(diff.low, diff.high)} |"
        )
    seen = {arm: by_seed(record, arm, "seen_val") for arm in ARMS}
    lines += [
        "",
        "Seen tasks (validation exact match of each trained arm): "
        + "; ".join(f"{arm} {pm(list(v.values()))}" for arm, v in seen.items())
        + ".",
    ]
    free = by_seed(record, "graph-free")
    relations_alone = []
    for other in ("poly-neighbour", "mhr-z-16", primary):
        diff = paired_difference("graph-free", free, other, by_seed(record, other))
        relations_alone.append(f"− {other} {interval(diff.mean, diff.low, diff.high)} ({verdict(diff.low, diff.high)})")
    lines += [
        "",
        "Today's graph router routing the new task from its relations alone (graph-free, no side features) — what the "
        "GNN adds over the same relations without it: graph-free " + "; ".join(relations_alone) + ".",
    ]
    lines += ["", "Declared targets (issue 28; ≥ 6 seeds, paired 95 % intervals over seeds):", ""]
    short = f" (on {len(seeds)} of the {TARGET_SEEDS} seeds declared)" if len(seeds) < TARGET_SEEDS else ""
    for method in BASELINES:
        mean, low, high = paired_rows[method]
        met = low is not None and low > 0
        lines.append(f"- {primary} > {method}: {'met' if met else 'missed'} ({interval(mean, low, high)}){short}")
    mean, low, high = paired_rows["mhr-z-16"]
    met = mean is not None and low is not None and mean >= MHR_Z_MARGIN and low > 0
    lines.append(
        f"- {primary} ≥ mhr-z-16 + {MHR_Z_MARGIN}: {'met' if met else 'missed'} ({interval(mean, low, high)}){short}"
    )
    ablation = CANDIDATES[primary]
    mean, low, high = paired_rows[ablation]
    graph_wins = low is not None and low > 0
    lines.append(
        f"- the no-edge MLP ({ablation}) loses to the graph: {'met' if graph_wins else 'missed'} "
        f"({interval(mean, low, high)})"
        + (
            ""
            if graph_wins
            else " — the no-edge MLP is better: the edges cost held-out accuracy here"
            if high is not None and high < 0
            else " — the features, not the edges, carry what the graph router does here"
        )
        + short
    )
    diff = paired_difference(primary, seen[primary], "graph-free", seen["graph-free"])
    costs = diff.high is not None and diff.high < 0
    lines.append(
        f"- the features cost nothing on seen tasks ({primary} vs graph-free): {'missed' if costs else 'met'} "
        f"({interval(diff.mean, diff.low, diff.high)}, {verdict(diff.low, diff.high)}){short}"
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seeds", type=int, default=3, help="seeds first-seed .. seeds-1")
    p.add_argument("--first-seed", type=int, default=0, help="(several processes: each its own seeds and --out)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--tiny", action="store_true", help="a tiny universe (a smoke run of the code)")
    p.add_argument("--record", metavar="NAME", help="copy OUT's record to benchmarks/results/NAME.json and stop")
    p.add_argument("--merge", type=Path, nargs="*", default=[], metavar="OUT2", help="--record: add these OUTs' seeds")
    args = p.parse_args(argv)
    if args.record:
        from benchmarks.render import RESULTS

        record = json.loads((args.out / "compositional.json").read_text())
        for other in args.merge:  # the seeds other processes measured (the same settings)
            extra = json.loads((other / "compositional.json").read_text())
            if extra["steps"] != record["steps"] or extra["methods"] != record["methods"]:
                raise SystemExit(f"{other}: measured with other settings than {args.out}")
            record["seeds"].update(extra["seeds"])
        record["seeds"] = dict(sorted(record["seeds"].items(), key=lambda kv: int(kv[0])))
        record["sizes"] = dict(SIZES)
        record["command"] = (
            f"python -m benchmarks.quality.compositional --out OUT --seeds {len(record['seeds'])} "
            f"--steps {record['steps']} (seeds split over processes with --first-seed, merged with --record --merge)"
        )
        (RESULTS / f"{args.record}.json").write_text(json.dumps(record, indent=1) + "\n")
        return 0
    if args.tiny:
        SIZES.update(skills=6, seq_len=12, seen=10, held_out=3, examples_per_task=40)
    torch.set_num_threads(1)
    record: dict[str, Any] = {"steps": args.steps, "methods": list(METHODS), "seeds": {}}
    path = args.out / "compositional.json"
    if path.is_file():
        record = json.loads(path.read_text())
    for seed in range(args.first_seed, args.seeds):
        if str(seed) in record["seeds"]:
            continue
        started = time.perf_counter()
        runs = {arm: train_arm(args.out, arm, seed, args.steps) for arm in ARMS}
        spec = arm_spec("graph", seed, args.steps)
        scores, val = held_out_scores(args.out, runs, spec, seed)
        record["seeds"][str(seed)] = {
            "held_out": {m: sum(v) / len(v) for m, v in scores.items()},
            "held_out_val": {m: sum(v) / len(v) for m, v in val.items()},
            "held_out_per_task": scores,
            "seen_val": {arm: seen_mean(run) for arm, run in runs.items()},
            "seconds": time.perf_counter() - started,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1))
        print(f"seed {seed}: " + ", ".join(f"{m} {v:.3f}" for m, v in record["seeds"][str(seed)]["held_out"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
