"""Does a run's figure depend on the CPU that trained it? A spec trained at several seeds under this CPU's own code
paths and under the plainest ones, side by side: ``benchmarks/results/numerics-<name>.json``.

    python -m benchmarks.numerics_paths configs/routers/graph.yaml --name walkthrough --seeds 0 1 2   # ~8 min, 2 cores

Two CPUs differ in the instruction sets that torch's kernels, MKL and oneDNN dispatch to (AVX2, AVX-512, AMX), and
those sum in other orders. One machine can run both sides of that difference: its own paths, and the plainest ones
(:data:`PLAINEST`: torch unvectorised, MKL's SSE2-compatible path, oneDNN at SSE4.1). Each seed trains twice on one
torch thread (``--set training.seed=K``), the two sides at once; kept per seed: the largest difference of the two
loss curves and the first step where it exceeds :data:`APART`, and each side's validation and test accuracy and
allocation precision (both evaluated on this machine's own paths, so only training differs). Equal figures say the
recorded ones would hold on another CPU; different ones say how far a CPU alone moves them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.record_io import RESULTS, provenance, write_record
from benchmarks.transcripts import ROOT, run
from benchmarks.walkthrough import figures
from taskgraph.bench import device_name

PLAINEST = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}
SIDES: dict[str, dict[str, str]] = {"own": {}, "plainest": PLAINEST}
APART = 1e-3  # loss curves this far apart: the two trainings have parted ways
FIGURES = ("val_accuracy", "test_accuracy", "allocation_precision")


def loss_curve(run_dir: Path) -> list[float]:
    """The training loss at every step of a run folder's ``log.jsonl``."""
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text(encoding="utf-8").splitlines()]
    return [row["loss"] for row in rows if row.get("split") == "train"]


def parting(a: Sequence[float], b: Sequence[float], apart: float = APART) -> dict[str, Any]:
    """How two loss curves part: their largest difference, and the first step (1-based) where it exceeds ``apart``
    (None: never)."""
    gaps = [abs(x - y) for x, y in zip(a, b, strict=True)]
    first = next((step for step, gap in enumerate(gaps, start=1) if gap > apart), None)
    return {"largest": max(gaps, default=0.0), "first_apart": first, "steps": len(gaps)}


def measure_seed(spec: str, seed: int, cwd: Path) -> dict[str, Any]:
    """Train ``spec`` at ``seed`` on both sides at once; the parting of the curves and each side's figures."""
    outs = {side: f"runs/{side}-seed{seed}" for side in SIDES}
    with ThreadPoolExecutor(len(SIDES)) as pool:
        done = [
            pool.submit(
                run, f"taskgraph train {spec} --out {outs[side]} --threads 1 --set training.seed={seed}", cwd, 0, env
            )
            for side, env in SIDES.items()
        ]
        for future in done:
            future.result()
    curves = {side: loss_curve(cwd / out) for side, out in outs.items()}
    return {
        "curves": parting(curves["own"], curves["plainest"]),
        **{side: figures(out, cwd) for side, out in outs.items()},
    }


def record(spec: str, seeds: Sequence[int]) -> dict[str, Any]:
    """Every seed of ``seeds`` measured in a scratch folder; the record (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="taskgraph-numerics-") as tmp:
        cwd = Path(tmp)
        (cwd / "configs").symlink_to(ROOT / "configs")
        per_seed = {str(seed): measure_seed(spec, seed, cwd) for seed in seeds}
    return {
        "what": "a spec trained under this CPU's own and the plainest code paths (benchmarks/numerics_paths.py)",
        "spec": spec,
        "sides": SIDES,
        "apart": APART,
        "seeds": per_seed,
        "cpu": device_name("cpu"),
        **provenance(),
        "threads": 1,
    }


def numerics_block(record: Mapping[str, Any], name: str) -> str:
    """The record's table (a row per seed: each figure on the own / plainest paths, how the loss curves part) and a
    summary line computed from it."""
    lines = [
        f"`{record['spec']}` trained under this CPU's own code paths ({record['cpu']}) and under the plainest ones "
        "(torch unvectorised, MKL's SSE2-compatible path, oneDNN at SSE4.1), one thread, the same seed; both sides "
        "evaluated on the CPU's own paths:",
        "",
        "| seed | validation accuracy (own / plainest) | test accuracy | allocation precision | largest loss "
        f"difference | first step apart by > {record['apart']:g} |",
        "|---:|---|---|---|---:|---:|",
    ]
    moved = []
    for seed, s in record["seeds"].items():
        cells = [f"{_fmt(s['own'][f])} / {_fmt(s['plainest'][f])}" for f in FIGURES]
        c = s["curves"]
        first = "never" if c["first_apart"] is None else f"{c['first_apart']} of {c['steps']}"
        lines.append(f"| {seed} | " + " | ".join(cells) + f" | {c['largest']:.1e} | {first} |")
        moved.append(abs(s["own"]["test_accuracy"] - s["plainest"]["test_accuracy"]))
    same = sum(1 for m in moved if m == 0)
    lines += [
        "",
        f"{same} of {len(moved)} seeds end with the same test accuracy on both sides; the largest test difference a "
        f"CPU's code paths alone made is {max(moved):.4f}. Measured {record['date']}, torch {record['versions']['torch']}"
        f" (`python -m benchmarks.numerics_paths`, `benchmarks/results/{name}.json`).",
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.numerics_paths", description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="the spec, relative to the repository (e.g. configs/routers/graph.yaml)")
    parser.add_argument("--name", required=True, help="the record: benchmarks/results/numerics-<name>.json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (ROOT / args.spec).is_file():
        parser.error(f"{args.spec}: no such spec (a path relative to the repository, or an absolute one)")
    print(f"wrote {write_record(args.results, f'numerics-{args.name}', record(args.spec, args.seeds))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
