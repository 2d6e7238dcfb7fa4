"""The walk-through (docs/guide/walkthrough.md), run as written and recorded: ``benchmarks/results/walkthrough.json``.

    python -m benchmarks.walkthrough            # about 4 minutes on one idle core

Runs the walk-through's commands (train the graph router on the planted universe, evaluate it, adapt a held-out task
zero-shot and by routing only, export the view) in a scratch folder exactly as the walk-through shows them, on one torch
thread, and keeps what each printed. Then trains the same spec at seeds 1 … 6 (``--set training.seed=K``) and keeps
each seed's validation and test figures, so the docs state the walk-through's seed spread and not one draw.
The walk-through's block is rendered from this record by :mod:`benchmarks.render`; a test holds the two together.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.transcripts import run

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "walkthrough.json"
SPEC = "configs/routers/graph.yaml"
SEEDS = tuple(range(7))
HELD_OUT = '"{source: planted, task: 20, seed: 0}"'
RELATE = "--relate planted-08=1 --relate planted-13=1 --relate planted-06=0.5 --relate planted-18=0.5"
COMMANDS = (  # (name, command): what the walk-through shows, in order
    ("train", f"taskgraph train {SPEC} --out runs/planted-graph --threads 1"),
    ("eval", "taskgraph eval runs/planted-graph --split test --threads 1"),
    (
        "adapt-zero-shot",
        f"taskgraph adapt runs/planted-graph --task held-out-20 --data {HELD_OUT} --shots 64 --mode zero-shot "
        f"{RELATE} --out runs/held-out-20 --threads 1",
    ),
    (
        "adapt-routing",
        f"taskgraph adapt runs/planted-graph --task held-out-20 --data {HELD_OUT} --shots 64 --mode routing "
        "--out runs/held-out-20-routing --threads 1",
    ),
    ("eval-held-out", "taskgraph eval runs/held-out-20 --task held-out-20 --no-alignment --threads 1"),
    ("export", "taskgraph export runs/held-out-20 --format html --out runs/held-out-20/graph.html"),
)


def figures(run_dir: str, cwd: Path) -> dict[str, float | None]:
    """Validation and test mean accuracy and test allocation precision of one trained run."""
    scores = {}
    for split in ("val", "test"):
        out = f"{run_dir}/{split}.json"
        run(f"taskgraph eval {run_dir} --split {split} --no-timing --no-alignment --threads 1 --json {out}", cwd)
        scores[split] = json.loads((cwd / out).read_text())
    return {
        "val_accuracy": scores["val"]["mean"]["accuracy"],
        "test_accuracy": scores["test"]["mean"]["accuracy"],
        "allocation_precision": (scores["test"].get("allocation") or {}).get("precision"),
    }


def shown_figures(cwd: Path) -> dict[str, float | None]:
    """The figures the README's prose quotes of the run shown (seed 0): the test split's accuracy, allocation
    precision, relation AUROCs and gating ratio, and the held-out task's test accuracy zero-shot and by routing."""
    run("taskgraph eval runs/planted-graph --split test --threads 1 --json runs/planted-graph/test-full.json", cwd)
    test = json.loads((cwd / "runs/planted-graph/test-full.json").read_text())
    auroc = (test.get("relations") or {}).get("auroc") or {}
    adapted = {
        mode: json.loads((cwd / folder / "adapt.json").read_text())["test"]["accuracy"]
        for mode, folder in (("zero_shot", "runs/held-out-20"), ("routing", "runs/held-out-20-routing"))
    }
    return {
        "test_accuracy": test["mean"]["accuracy"],
        "allocation_precision": test["allocation"]["precision"],
        "allocation_random": test["allocation"]["random"],
        "auroc_learned": auroc.get("learned"),
        "auroc_routing_cosine": auroc.get("routing_cosine"),
        "gating_ratio": (test.get("timing") or {}).get("ratio"),
        "held_out_zero_shot": adapted["zero_shot"],
        "held_out_routing": adapted["routing"],
    }


def record(seeds: Sequence[int] = SEEDS) -> dict[str, Any]:
    """Run the walk-through and the other seeds in a scratch folder; the record (see the module docstring)."""
    import torch
    import transformers

    with tempfile.TemporaryDirectory(prefix="taskgraph-walkthrough-") as tmp:
        cwd = Path(tmp)
        (cwd / "configs").symlink_to(ROOT / "configs")
        outputs = {name: {"command": command, "output": run(command, cwd)} for name, command in COMMANDS}
        shown = shown_figures(cwd)
        per_seed = {"0": figures("runs/planted-graph", cwd)}
        for seed in seeds[1:]:
            out = f"runs/seed{seed}"
            run(f"taskgraph train {SPEC} --out {out} --threads 1 --set training.seed={seed}", cwd)
            per_seed[str(seed)] = figures(out, cwd)
    return {
        "what": "the README's walk-through run as written (benchmarks/walkthrough.py), and its spec at other seeds",
        "spec": SPEC,
        "commands": outputs,
        "shown": shown,
        "seeds": per_seed,
        "date": dt.date.today().isoformat(),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "threads": 1,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.walkthrough", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(RECORD), help=f"the record (default: {RECORD.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    result = record()
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
