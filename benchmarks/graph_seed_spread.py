"""The graph router's seed spread on the planted walk-through spec, and what causes it.

    python -m benchmarks.graph_seed_spread                    # about an hour on one busy core; resumable
    python -m benchmarks.graph_seed_spread --variants graph poly cos2

Record: ``benchmarks/results/graph_seed_spread.json``. Each run's figures: ``runs/seed-spread/<variant>/seed<K>.json``
(a run whose JSON exists is not run again).

Plan, declared before any run:

1. Baseline: ``graph`` (configs/routers/graph.yaml) and ``poly`` (configs/routers/poly.yaml), seeds 0-6, one torch
   thread, one process. Per run: validation and test mean accuracy, test allocation precision (``taskgraph eval
   --no-timing --no-alignment``), the validation trajectory (every 250 steps) and the final routing's normalised
   entropy. Per variant: mean, sample std, min, max.
2. Candidate causes, each a variant of ``graph`` that changes one thing, same 7 seeds (spec keys where they exist,
   else a patch applied in this process for training and evaluation; no library file is edited):
   (b) the read-out's cosine scale ``COSINE_SCALE`` 5 -> 2 (``cos2``) and -> 10 (``cos10``);
   (a) the task features' initialisation: ``randn × 0.1`` (``emb0.1``) and an orthogonal init of the same norm
       (``emb-orth``; both transform the drawn ``randn``, so every other random draw is unchanged);
   (c) the relation terms: ``relations.learn=false`` (``rel-fixed``) and ``router.smoothness=0`` (``smooth0``);
   (d) the router's rate ``training.lr.router=3e-3`` (``rlr3e-3``);
   (e) if time allows, the adapters + heads rate 0.01 instead of 0.03 (``lr0.01``) and the router's rate 3e-2
       (``rlr3e-2``).
   Order of priority: graph, poly, cos2, emb0.1, emb-orth, cos10, rel-fixed, smooth0, rlr3e-3, lr0.01, rlr3e-2.
   (Run in the end: all but cos10, lr0.01 and rlr3e-2, left out for time in favour of the checks below; the
   record's ``not_run`` lists them.)
   Added after the baseline (poly seed 4 fell to 0.9165, cos2 seed 4 to 0.7505): a chaos check, ``graph-jitter`` and
   ``poly-jitter``, the same specs with the adapters' rate 0.03 -> 0.0300003 (relative 1e-5). If the seed decided
   the outcome, each seed's figure would barely move; if training is chaotic, the jittered run differs from its
   seed's baseline about as much as two seeds differ (|Δ| ≈ √2 × the across-seed std). Reported per router: the
   std of the paired differences / √2 (the run-to-run noise at a fixed seed) beside the across-seed std (and, once the
   router's rate 3e-3 had been run, the same check of it: ``rlr3e-3-jitter``), and how fast
   the two training losses part (the first step where they differ by more than 1e-2; their mean |Δ| over steps
   1-100). Also added then: each graph variant's spread against the pooled graph reference (graph ∪ graph-jitter,
   14 runs of the same configuration), Brown-Forsythe test (scipy.stats.levene, center="median"), since two 7-seed
   draws of the same configuration can differ 4× in std.
3. Verdicts, paired by seed against ``graph``: the mean difference of val (and test) accuracy with a 95 % Student-t
   interval (scipy.stats.t, 6 degrees of freedom). A variant *reduces the spread* only if (i) its val std is lower
   than graph's with a one-sided Pitman-Morgan test p < 0.05 (the test for equal variances of paired samples: the
   correlation of the seeds' sums and differences) and (ii) its paired val mean difference is not below 0 (point
   estimate ≥ 0; the interval is reported). With 7 seeds the test detects only large reductions (about 2× in std);
   a smaller one is reported as a tie, not a win.
4. Added after the chaos check (``--probe``): where the sensitivity comes from. Each configuration is trained for
   200 steps twice per seed (seeds 0 and 1), as given and with the adapters' rate × (1 + 1e-5); the mean |Δ loss| of
   the two over steps 1-50, 51-100 and 101-200 says how fast a 1e-5 perturbation grows (graph vs poly at 1,500
   steps: 30-1000× apart over steps 1-100). Configurations: graph, poly, and graph with one part changed
   (relations fixed, no smoothness, both, the router's rate 3e-3 or 1e-6 — a router that barely moves —,
   cosine scale 2, task features × 0.1, adapters' rate 0.01). Cheap (about 10 s a run); a proxy, not the outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.seed_spread_stats import ALPHA, describe, loss_divergence, paired, spread_vs_pool
from benchmarks.seed_spread_variants import (
    BY_NAME,
    CHAOS_CHECKS,
    GRAPH_SPEC,
    PAIRED_WITH,
    POOL,
    PROBE_BY_NAME,
    PROBE_SEEDS,
    PROBE_STEPS,
    PROBE_VARIANTS,
    PROBE_WINDOWS,
    VARIANTS,
    Variant,
)

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "graph_seed_spread.json"
RUNS = ROOT / "runs" / "seed-spread"
SEEDS = tuple(range(7))
BASELINE = "graph"


# ----------------------------------------------------------------------------- one run
def routing_entropy(run_dir: Path) -> float:
    """The trained router's routing, mean over tasks, layers and heads of ``H(w) / ln K`` (1: uniform)."""
    from taskgraph.model import TaskGraphModel, learned_routing

    model = TaskGraphModel.from_pretrained(run_dir / "model")
    w = learned_routing(model).weights  # [T, L, H, K]
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1)  # [T, L, H]
    return float(entropy.mean() / math.log(w.shape[-1]))


def initial_routing(variant: Variant, seeds: Sequence[int]) -> dict[str, float] | None:
    """The graph router's routing at initialisation (the router alone, built under ``manual_seed(seed)``; the same
    distribution as a run's start, not its exact draw): mean normalised entropy and mean largest weight."""
    import torch

    from taskgraph.routing import GraphRouter
    from taskgraph.spec import spec_with_overrides

    spec = spec_with_overrides(ROOT / variant.spec, list(variant.overrides))
    if spec.router.kind != "graph":
        return None
    entropy, top = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        with variant.patch() if variant.patch is not None else contextlib.nullcontext():
            router = GraphRouter.from_spec(spec, num_layers=4, skills=spec.adapters.skills)  # query, value × 2 layers
            with torch.no_grad():
                w = router.encode().weights  # [T, L, H, K]
        entropy.append(float((-(w * w.clamp_min(1e-12).log()).sum(-1)).mean() / math.log(w.shape[-1])))
        top.append(float(w.max(-1).values.mean()))
    return {"entropy": sum(entropy) / len(entropy), "max_weight": sum(top) / len(top)}


def run_one(variant: Variant, seed: int, runs: Path) -> dict[str, Any]:
    """Train and evaluate one (variant, seed), or read its figures if already recorded."""
    record = runs / variant.name / f"seed{seed}.json"
    if record.is_file():
        return json.loads(record.read_text())
    from taskgraph.eval import evaluate_run
    from taskgraph.spec import spec_with_overrides
    from taskgraph.train import train

    run_dir = runs / variant.name / f"seed{seed}"
    if run_dir.exists():  # an interrupted run of ours
        shutil.rmtree(run_dir)
    spec_path = ROOT / variant.spec
    spec = spec_with_overrides(spec_path, [*variant.overrides, f"training.seed={seed}"])
    start = time.perf_counter()
    with variant.patch() if variant.patch is not None else contextlib.nullcontext():
        train(spec, run_dir, base_dir=spec_path.parent)
        wall = time.perf_counter() - start
        val = evaluate_run(run_dir, split="val", timing=False, alignment=False)
        test = evaluate_run(run_dir, split="test", timing=False, alignment=False)
        entropy = routing_entropy(run_dir)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines() if line.strip()]
    out = {
        "variant": variant.name,
        "seed": seed,
        "val_accuracy": val["mean"]["accuracy"],
        "test_accuracy": test["mean"]["accuracy"],
        "allocation_precision": (test.get("allocation") or {}).get("precision"),
        "routing_entropy": entropy,
        "val_trajectory": {str(r["step"]): r["mean_acc"] for r in log if r.get("split") == "val" and "mean_acc" in r},
        "val_per_task": {k: v["accuracy"] for k, v in val["tasks"].items()},
        "train_wall_s": round(wall, 1),
    }
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    record.write_text(json.dumps(out, indent=1) + "\n")
    return out


def probe_one(variant: Variant, seed: int, runs: Path) -> dict[str, list[float]]:
    """The training losses of ``PROBE_STEPS`` steps, as given and with the adapters' rate × (1 + 1e-5)."""
    record = runs / "probe" / variant.name / f"seed{seed}.json"
    if record.is_file():
        return json.loads(record.read_text())
    from taskgraph.spec import spec_with_overrides
    from taskgraph.train import train

    spec_path = ROOT / variant.spec
    overrides = [*variant.overrides, f"training.seed={seed}"]
    rate = spec_with_overrides(spec_path, overrides).training.lr.adapters
    out: dict[str, list[float]] = {}
    for twin, extra in (("base", []), ("jitter", [f"training.lr.adapters={rate * (1 + 1e-5)!r}"])):
        run_dir = runs / "probe" / variant.name / f"seed{seed}-{twin}"
        shutil.rmtree(run_dir, ignore_errors=True)
        spec = spec_with_overrides(spec_path, [*overrides, *extra])
        with variant.patch() if variant.patch is not None else contextlib.nullcontext():
            train(spec, run_dir, base_dir=spec_path.parent, max_steps=PROBE_STEPS)
        lines = (run_dir / "log.jsonl").read_text().splitlines()
        out[twin] = [r["loss"] for r in map(json.loads, lines) if r.get("split") == "train"]
        shutil.rmtree(run_dir)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(out) + "\n")
    return out


def summarise_probe(probes: dict[str, dict[int, dict[str, list[float]]]]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for name, by_seed in probes.items():
        diffs = {s: np.abs(np.asarray(r["base"]) - np.asarray(r["jitter"])) for s, r in by_seed.items()}
        out[name] = {
            "what": PROBE_BY_NAME[name].what,
            "seeds": sorted(by_seed),
            **{
                f"mean_abs_dloss_steps_{a + 1}_{b}": float(np.mean([d[a:b].mean() for d in diffs.values()]))
                for a, b in PROBE_WINDOWS
            },
            "per_seed_steps_101_200": {str(s): float(d[100:200].mean()) for s, d in diffs.items()},
        }
    return out


# ----------------------------------------------------------------------------- statistics
def summarise(results: dict[str, dict[int, dict[str, Any]]], runs_dir: Path = RUNS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, runs in results.items():
        base = results.get(PAIRED_WITH.get(name, BASELINE), {})
        seeds = sorted(runs)
        variant = BY_NAME[name]
        entry: dict[str, Any] = {
            "what": variant.what,
            "spec": variant.spec,
            "overrides": list(variant.overrides),
            "patch": variant.patch_text,
            "seeds": seeds,
            "initial_routing": initial_routing(variant, seeds),
            "per_seed": {str(s): {k: v for k, v in runs[s].items() if k not in ("variant", "seed")} for s in seeds},
        }
        for key in ("val_accuracy", "test_accuracy", "allocation_precision", "routing_entropy"):
            vals = [runs[s][key] for s in seeds if runs[s].get(key) is not None]
            if len(vals) > 1:
                entry[key] = describe(vals)
        common = [s for s in seeds if s in base]
        if name != BASELINE and len(common) >= 3:
            entry["paired_with"] = PAIRED_WITH.get(name, BASELINE)
            entry["paired"] = {
                key: paired([runs[s][key] for s in common], [base[s][key] for s in common])
                for key in ("val_accuracy", "test_accuracy", "allocation_precision")
            }
            entry["paired"]["seeds"] = common  # type: ignore[assignment]
            val = entry["paired"]["val_accuracy"]
            lo, hi = val["ci95"]
            spread = val["p_std_lower"] < ALPHA and val["std_ratio"] < 1
            entry["verdict"] = {
                "std_lower": spread,
                "mean": "higher" if lo > 0 else "lower" if hi < 0 else "tie",
                "reduces_spread": bool(spread and val["mean_diff"] >= 0),
            }
        if name in CHAOS_CHECKS:
            entry["loss_divergence"] = loss_divergence(CHAOS_CHECKS[name], name, seeds, runs_dir)
        out[name] = entry
    pool = [r["val_accuracy"] for name in POOL for r in results.get(name, {}).values()]
    if len(pool) > len(SEEDS):
        for name, entry in out.items():
            if name not in POOL and BY_NAME[name].spec == GRAPH_SPEC:
                vals = [results[name][s]["val_accuracy"] for s in entry["seeds"]]
                entry["spread_vs_graph_pool"] = spread_vs_pool(vals, pool)
    for check, base in CHAOS_CHECKS.items():  # each configuration with its chaos check: 14 runs of one configuration
        if check in results and base in results:
            both = [*results[base].values(), *results[check].values()]
            out[f"{base}-pool"] = {
                "what": f"{base} ∪ {check}: one configuration, {len(both)} runs",
                **{key: describe([r[key] for r in both]) for key in ("val_accuracy", "test_accuracy")},
                "allocation_precision": describe([r["allocation_precision"] for r in both]),
            }
    out["chaos_comparison"] = chaos_comparison(results)
    return out


def chaos_comparison(results: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """graph against each other chaos-checked configuration (post hoc, plan item 2's addition): the fixed-seed noise
    (std of the jitter differences / √2) with a one-sided F test that graph's is larger (independent differences,
    6 and 6 degrees of freedom); the two pools' spread (Brown-Forsythe, two-sided); and the pooled paired val
    difference over the 14 (seed, twin) pairs with a 95 % Student-t interval."""
    import numpy as np
    from scipy import stats

    def twins(base: str) -> tuple[np.ndarray, np.ndarray] | None:
        check = next((c for c, b in CHAOS_CHECKS.items() if b == base), None)
        if check is None or check not in results or base not in results:
            return None
        seeds = sorted(set(results[base]) & set(results[check]))
        a = np.array([results[base][s]["val_accuracy"] for s in seeds])
        b = np.array([results[check][s]["val_accuracy"] for s in seeds])
        return a, b

    out: dict[str, Any] = {}
    ref = twins(BASELINE)
    if ref is None:
        return out
    for other in (b for b in CHAOS_CHECKS.values() if b != BASELINE):
        got = twins(other)
        if got is None:
            continue
        noise_ref, noise = (float(np.std(b - a, ddof=1) / math.sqrt(2)) for a, b in (ref, got))
        n_ref, n = len(ref[0]) - 1, len(got[0]) - 1
        pool_ref, pool = np.concatenate(ref), np.concatenate(got)
        entry = {
            "fixed_seed_noise": {BASELINE: noise_ref, other: noise},
            "noise_ratio": noise_ref / noise,
            "f_test_p_graph_noisier": float(stats.f.sf((noise_ref / noise) ** 2, n_ref, n)),
            "pool_std": {BASELINE: float(pool_ref.std(ddof=1)), other: float(pool.std(ddof=1))},
            "pool_brown_forsythe_p": float(stats.levene(pool_ref, pool, center="median").pvalue),
        }
        if other != "poly":  # same spec and seeds: pair (seed, twin) with (seed, twin)
            d = pool - pool_ref
            half = float(stats.t.ppf(1 - ALPHA / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
            entry["pooled_paired_val_diff"] = {"mean": float(d.mean()), "ci95": [d.mean() - half, d.mean() + half]}
        out[f"{BASELINE}_vs_{other}"] = entry
    return out


# ----------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.graph_seed_spread", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--variants", nargs="+", default=[v.name for v in VARIANTS], choices=list(BY_NAME))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", default=str(RUNS), help="where each run's folder and JSON go")
    parser.add_argument("--out", default=str(RECORD), help="the record")
    parser.add_argument("--summarise-only", action="store_true", help="write the record from the runs already done")
    parser.add_argument("--probe", action="store_true", help="run the 200-step sensitivity probe (plan item 4) too")
    args = parser.parse_args(argv)

    os.environ.setdefault("TASKGRAPH_PROGRESS", "off")
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    names = [BASELINE, *(n for n in args.variants if n != BASELINE)]
    results: dict[str, dict[int, dict[str, Any]]] = {}
    probes: dict[str, dict[int, dict[str, list[float]]]] = {}
    for name in PROBE_VARIANTS:
        for seed in PROBE_SEEDS:
            if args.probe or (runs / "probe" / name / f"seed{seed}.json").is_file():
                probes.setdefault(name, {})[seed] = probe_one(PROBE_BY_NAME[name], seed, runs)
        if name in probes:
            print(f"probe {name}: {summarise_probe({name: probes[name]})[name]}", flush=True)
    for name in names:
        (runs / name).mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            done = (runs / name / f"seed{seed}.json").is_file()
            if args.summarise_only and not done:
                continue
            r = run_one(BY_NAME[name], seed, runs)
            results.setdefault(name, {})[seed] = r
            print(
                f"{name:10s} seed {seed}: val {r['val_accuracy']:.4f} test {r['test_accuracy']:.4f} "
                f"alloc {r['allocation_precision']:.3f} H {r['routing_entropy']:.3f} ({r['train_wall_s']} s)",
                flush=True,
            )
        record = {
            "what": "the graph router's seed spread on the planted walk-through spec and candidate causes (issue 26 item 2)",
            "plan": __doc__,
            "command": "python -m benchmarks.graph_seed_spread --probe",
            "written_by": "python -m benchmarks.graph_seed_spread " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": dt.date.today().isoformat(),
            "threads": args.threads,
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
            "not_run": [v.name for v in VARIANTS if v.name not in results],  # left out for time
            "variants": summarise(results, runs),
            "probe": summarise_probe(probes),
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
