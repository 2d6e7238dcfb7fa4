"""The quality guard: every router trained on one small planted universe, one thread, three seeds, its figures held
against a committed record (``guard_record.json`` beside this file).

A speed change or a refactor must leave learning where it was. One step's equality does not show that (a changed
summation order passes it and can still flip a seed's outcome hundreds of steps later), and one seed does not either
(the graph router's planted figure once moved ten points on one seed's luck). So CI trains each router of
:data:`ROUTERS` on :data:`UNIVERSE` for :data:`STEPS` steps at seeds 0, 1, 2 on one torch thread and compares the
test accuracy and allocation precision of **every seed** with the record; a seed's figure moved beyond
:data:`TOLERANCE` fails and prints both figures, seed by seed, and both means.

Figures that do not depend on the CPU. One thread is deterministic on one machine, not across machines: torch's
vectorised kernels, MKL and oneDNN pick code paths by the CPU's instruction set (AVX2, AVX-512, AMX), which sum in
other orders. Two things keep such a rounding from reaching a figure:

- :data:`LR` is a rate the routers learn at, not one at the edge of stability. At 0.1 (the guard's rate until
  2026-12-08) training is chaotic: the private router's loss under two kernel paths differed by 1e-15 at step 50,
  1e-10 at step 100 and 0.2 at step 200 — the seed's outcome was the CPU's, not the code's. At 0.03 (the rate the
  planted bench chooses for shared, poly, mhr-μ and graph; 0.01 for private and mhr) the kernel paths' losses stay
  within 4e-4 of each other over 400 steps in float32.
- Training runs in float64 (:data:`DTYPE`): a summation order moves a sum by 1e-16 instead of 1e-7, and the paths
  above stay within 1e-8 at every step (every router, three seeds). ``test_quality_guard.py`` checks that premise
  on the machine it runs on: the graph router's loss curves under the CPU's own and the plainest code paths
  agree to 1e-9 (a float32 step hidden in training — a ``.float()`` where
  :func:`taskgraph.precision.at_least_fp32` belongs — fails it).

An intended change (new numerics, a new default) updates the record in the same commit and says why::

    python -m tests.quality.guard --write --why "fused path: summation order changed; seed 1 of graph flipped"

which retrains every router, rewrites the record and appends the reason, the date and the versions to its history.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RECORD = Path(__file__).with_name("guard_record.json")
ROUTERS = ("shared", "private", "poly", "mhr", "mhr-mu", "graph")
SEEDS = (0, 1, 2)
STEPS = 400
BATCH = 32
LR = 0.03  # adapters and heads (below the chaotic regime: see the module docstring); each router's own group at
# the quality bench's fixed rate per kind
DTYPE = "float64"  # torch's default dtype while the guard trains: the model, adapters, router and loss
# 8 tasks over 6 skills, 2 skills each, 200 examples a task (20 test rows); a 2-layer BERT of hidden 32, LoRA rank 2.
UNIVERSE: dict[str, Any] = {
    "skills": 6,
    "tasks": 8,
    "held_out": 0,
    "skills_per_task": (2, 2),
    "min_tasks_per_skill": 1,
    "seq_len": 12,
    "vocab_size": 128,
    "examples_per_task": 200,
    "hidden_size": 32,
    "num_heads": 2,
    "rank": 2,
}
FIGURES = ("test_accuracy", "allocation_precision")
# Per seed, absolute. The figures do not depend on the CPU or on a summation order (module docstring), so a seed's
# figure moves only when learning does: 0.01 lets one test row of the 160 a seed scores change (0.00625: a prediction
# at a near-tie) and fails two. A check of the three seeds' mean would let two seeds move apart unseen.
TOLERANCE = 0.01
# the training subprocess's environment, set before torch loads: one OpenMP thread, no GPU
ENVIRONMENT = {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
ROOT = Path(__file__).resolve().parents[2]


def train_router(router: str, seed: int, root: Path, steps: int = STEPS) -> dict[str, float | None]:
    """Train ``router`` at ``seed`` on the guard's universe (one thread, :data:`DTYPE`) into ``root/ROUTER-seedS``;
    its test accuracy and allocation precision."""
    import torch

    from benchmarks.quality.planted_suites import planted_suite
    from benchmarks.quality.suites import Budget
    from taskgraph.eval import evaluate_run
    from taskgraph.spec import Spec
    from taskgraph.train import train

    suite = planted_suite(Budget(steps=steps, batch_size=BATCH, lrs=(LR,), shots=(4,), adapt_steps=1), UNIVERSE)
    spec = Spec.model_validate(suite.cell_spec(router, LR, seed))
    before, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(1)
    torch.set_default_dtype(getattr(torch, DTYPE))
    try:
        out = root / f"{router}-seed{seed}"
        train(spec, out)
        result = evaluate_run(out, "test", timing=False, alignment=False)
    finally:
        torch.set_num_threads(before)
        torch.set_default_dtype(dtype)
    allocation = result.get("allocation") or {}
    return {"test_accuracy": result["mean"]["accuracy"], "allocation_precision": allocation.get("precision")}


def measure(router: str, seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """``{"seeds": {seed: figures}, "mean": {figure: mean over seeds}}`` of one router, trained in a subprocess
    (:data:`ENVIRONMENT`)."""
    return _run("--measure", router, "--seeds", *map(str, seeds))


def loss_curve(router: str, seed: int, steps: int, environment: Mapping[str, str] | None = None) -> list[float]:
    """The training loss at every step of ``router`` at ``seed`` for ``steps`` steps, trained as the guard trains in
    a subprocess whose environment adds ``environment`` (e.g. ``{"ATEN_CPU_CAPABILITY": "default"}``)."""
    return _run("--curve", router, "--seeds", str(seed), "--steps", str(steps), environment=environment)


def _run(*args: str, environment: Mapping[str, str] | None = None) -> Any:
    """``python -m tests.quality.guard ARGS`` in a fresh process; the JSON of its last line."""
    command = [sys.executable, "-m", "tests.quality.guard", *args]
    env = {**os.environ, **ENVIRONMENT, **(environment or {})}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_here(router: str, seeds: Sequence[int]) -> dict[str, Any]:
    """:func:`measure` in this process (under whatever numerics it was started with)."""
    with tempfile.TemporaryDirectory(prefix="taskgraph-guard-") as tmp:
        per_seed = {str(s): train_router(router, s, Path(tmp)) for s in seeds}
    return {"seeds": per_seed, "mean": {f: _mean([v[f] for v in per_seed.values()]) for f in FIGURES}}


def curve_here(router: str, seed: int, steps: int) -> list[float]:
    """:func:`loss_curve` in this process: the ``loss`` of every training step of the run's ``log.jsonl``."""
    from benchmarks.numerics_paths import loss_curve as run_loss_curve

    with tempfile.TemporaryDirectory(prefix="taskgraph-guard-") as tmp:
        train_router(router, seed, Path(tmp), steps=steps)
        return run_loss_curve(Path(tmp) / f"{router}-seed{seed}")


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if len(kept) == len(values) and kept else None


def departures(pinned: Mapping[str, Any], now: Mapping[str, Any], tolerance: float = TOLERANCE) -> list[str]:
    """The figures of ``now`` that moved more than ``tolerance`` from ``pinned``'s at some seed (a seed or a figure
    missing on one side moved), each with both figures seed by seed and both means (empty: the router's learning is
    where the record says)."""
    problems = []
    for figure in FIGURES:
        pairs = {
            s: (pinned["seeds"].get(s, {}).get(figure), now["seeds"].get(s, {}).get(figure))
            for s in dict.fromkeys([*pinned["seeds"], *now["seeds"]])
        }
        moved = [
            s for s, (a, b) in pairs.items() if (a is None) != (b is None) or (a is not None and abs(a - b) > tolerance)
        ]
        if moved:
            seeds = ", ".join(f"seed {s}: {_fmt(a)} -> {_fmt(b)}" for s, (a, b) in pairs.items())
            problems.append(
                f"{figure}: seed {', '.join(moved)} moved beyond {tolerance} — {seeds}; mean "
                f"{_fmt(pinned['mean'].get(figure))} in the record, {_fmt(now['mean'].get(figure))} now"
            )
    return problems


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


def write_record(why: str, path: Path = RECORD) -> dict[str, Any]:
    """Retrain every router and rewrite the record, appending ``why`` to its history."""
    import torch
    import transformers

    old = json.loads(path.read_text()) if path.is_file() else {}
    record = {
        "what": "taskgraph quality guard (tests/quality/guard.py): every router, planted universe, one thread",
        "universe": UNIVERSE,
        "steps": STEPS,
        "batch_size": BATCH,
        "lr": LR,
        "dtype": DTYPE,
        "seeds": list(SEEDS),
        "tolerance": TOLERANCE,
        "routers": {router: measure(router) for router in ROUTERS},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "numerics": {"dtype": DTYPE, **ENVIRONMENT},
        },
        "history": [
            *old.get("history", []),
            {"date": dt.date.today().isoformat(), "why": why},
        ],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.quality.guard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="retrain every router and rewrite the record")
    parser.add_argument("--why", default=None, help="why the figures changed (required with --write)")
    parser.add_argument("--measure", metavar="ROUTER", choices=ROUTERS, help="(internal) print one router's figures")
    parser.add_argument("--curve", metavar="ROUTER", choices=ROUTERS, help="(internal) print one run's loss curve")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="(with --measure or --curve)")
    parser.add_argument("--steps", type=int, default=STEPS, help="(with --curve)")
    args = parser.parse_args(argv)
    if args.curve:
        print(json.dumps(curve_here(args.curve, args.seeds[0], args.steps)))
        return 0
    if args.measure:
        print(json.dumps(measure_here(args.measure, args.seeds)))
        return 0
    if not args.write or not args.why:
        parser.error("give --write --why 'the reason the figures changed'")
    record = write_record(args.why)
    for router, row in record["routers"].items():
        print(router, {f: _fmt(v) for f, v in row["mean"].items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
