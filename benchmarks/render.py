"""Figures in the docs, rendered from the committed results records — never typed by hand.

A rendered block in a Markdown file sits between two comments naming its renderer::

    <!-- rendered: walkthrough -->
    ...what the renderer wrote...
    <!-- /rendered -->

``python -m benchmarks.render`` rewrites every block of :data:`FILES` from the records in ``benchmarks/results``;
``--check`` only compares and exits 1 naming each stale block. A test runs the check, so a figure cannot go stale
silently: re-measure, write the record, render, commit the three together.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.numerics_paths import numerics_block
from benchmarks.quality_tables import quality_block
from benchmarks.screenshots import PICTURES, picture_block
from benchmarks.transcripts import TRANSCRIPTS, abridge, transcript_block
from benchmarks.verdicts import spread_line

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = (
    ROOT / "docs" / "graph-prior.md",
    ROOT / "docs" / "results.md",
    ROOT / "docs" / "benchmarks.md",
    ROOT / "docs" / "guide" / "walkthrough.md",
    ROOT / "docs" / "guide" / "text-to-text.md",
    ROOT / "docs" / "guide" / "graph-view.md",
    ROOT / "docs" / "guide" / "merging-and-peft.md",
    ROOT / "docs" / "new-tasks.md",
)
BLOCK = re.compile(r"(<!-- rendered: (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /rendered -->)", re.DOTALL)
Renderer = Callable[[], str]
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register a block's renderer under ``name`` (one name, one renderer)."""

    def register(fn: Renderer) -> Renderer:
        if name in RENDERERS:
            raise ValueError(f"renderer {name!r} registered twice")
        RENDERERS[name] = fn
        return fn

    return register


def load(name: str) -> dict[str, Any]:
    """The record ``benchmarks/results/<name>.json``."""
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def record_block(name: str, block: Callable[[dict[str, Any], str], str]) -> str:
    """``block(record, name)`` of the record ``name``, or a line saying it is not measured yet (no record)."""
    if not (RESULTS / f"{name}.json").is_file():
        return f"Not measured yet: no record `benchmarks/results/{name}.json`.\n"
    return block(load(name), name)


def record_renderers(names: Iterable[str], block: Callable[[dict[str, Any], str], str]) -> None:
    """A renderer per record of ``names``: :func:`record_block` with ``block``."""
    for name in names:
        renderer(name)(partial(record_block, name, block))


# ----------------------------------------------------------------------------- the walk-through
@renderer("walkthrough")
def walkthrough() -> str:
    record = load("walkthrough")
    commands = record["commands"]
    lines = ["```console"]
    for name, tail in (("train", 1), ("eval", None), ("adapt-zero-shot", None), ("eval-held-out", None)):
        lines += [f"$ {commands[name]['command']}", *abridge(commands[name]["output"], tail), ""]
    lines += [f"$ {commands['export']['command']}", *abridge(commands["export"]["output"]), "```", ""]
    seeds = record["seeds"]
    lines.append(
        f"The same command at seeds 0–{len(seeds) - 1} (`--set training.seed=K`, one thread; "
        "`python -m benchmarks.walkthrough` re-measures, `benchmarks/results/walkthrough.json`): "
        + "; ".join(
            spread_line(label, [s[key] for s in seeds.values()])
            for label, key in (
                ("validation accuracy", "val_accuracy"),
                ("test accuracy", "test_accuracy"),
                ("allocation precision", "allocation_precision"),
            )
        )
        + f". Seed 0 is the run shown. Measured {record['date']}, torch {record['versions']['torch']}."
    )
    f = record["shown"]
    lines += [
        "",
        f"What the figures say, honestly: the run shown reaches {f['test_accuracy']:.3f} test accuracy, but its "
        f"routing is only partly the planted one — allocation precision {f['allocation_precision']:.3f} against "
        f"{f['allocation_random']:.3f} for random routing — and its learned relations recover the planted ones with "
        f"AUROC {f['auroc_learned']:.3f} (0.5 is chance; the cosine of the tasks' routing weights "
        f"{f['auroc_routing_cosine']:.3f}). On the held-out task, `--mode routing` (MHR-z: only the new task's "
        f"routing trains, 100 steps on the same 64 shots) reached {f['held_out_routing']:.3f} test accuracy and "
        f"zero-shot routing from the four relations {f['held_out_zero_shot']:.3f}. No compute budget is set, so every "
        "gate stays open and gating saves nothing (the timing lines depend on the machine's load).",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the guides' console transcripts
record_renderers((f"transcript-{name}" for name in TRANSCRIPTS), transcript_block)


# ----------------------------------------------------------------------------- figures under another CPU's code paths
record_renderers(("numerics-walkthrough", "numerics-poly"), numerics_block)


# ----------------------------------------------------------------------------- what the view's screenshots show
record_renderers((f"screenshot-{name}" for name in PICTURES), picture_block)


# ----------------------------------------------------------------------------- the quality suites' tables
QUALITY_RECORDS = (
    "quality-real-gen",
    "quality-planted",
    "quality-planted-few",
    "quality-real",
    "quality-real-few-256",
    "quality-planted-gen-declared",
)

record_renderers(QUALITY_RECORDS, quality_block)


# ----------------------------------------------------------------------------- declared decisions
@renderer("graph-slow-decision")
def graph_slow_decision() -> str:
    from benchmarks.decisions import graph_slow

    return graph_slow(
        {
            name: load(name)
            for name in ("quality-planted", "quality-planted-few")
            if (RESULTS / f"{name}.json").is_file()
        }
    )


# ----------------------------------------------------------------------------- the re-measurement (three-seed selection)
@renderer("remeasured-verdicts")
def remeasured_verdicts() -> str:
    from benchmarks.remeasured import RECORDS, change_rows, changes_table

    records = {suite: load(name) for suite, name in RECORDS.items() if (RESULTS / f"{name}.json").is_file()}
    rows = [r for r in change_rows(records) if r["now_verdict"] is not None]
    moved = [
        f"{r['suite']} {r['comparison']} ({r['metric']}): {r['published_verdict']} → {r['now_verdict']}"
        for r in rows
        if r["changed"]
    ]
    summary = f"Of {len(rows)} published comparisons re-measured, {len(moved)} changed verdict" + (
        ": " + "; ".join(moved) + "." if moved else "."
    )
    return "\n".join([*changes_table(records), "", summary]) + "\n"


# ----------------------------------------------------------------------------- tasks never trained (issue 28)
@renderer("compositional-planted")
def compositional_planted() -> str:
    from benchmarks.quality.compositional import compositional_block

    return record_block("compositional-planted", compositional_block)


# ----------------------------------------------------------------------------- merging
def merge_block(record: dict[str, Any], name: str) -> str:
    from benchmarks.merge_tables import merge_block as block  # matplotlib: imported when a merge block renders

    return block(record, name)


record_renderers(("merge-planted", "merge-real"), merge_block)


# ----------------------------------------------------------------------------- speed
SPEED_COMMANDS = {
    "ops-cpu": "taskgraph bench speed --ops --json benchmarks/results/ops-cpu.json",
    "scale-cpu": "taskgraph bench scale --json benchmarks/results/scale-cpu.json",
    "lm-cpu": "taskgraph bench lm --rounds 20 --threads 2 --json benchmarks/results/lm-cpu.json",
    "speed-cpu": "taskgraph bench speed --rounds 30 --threads 2",
    "speed-int8-cpu": "taskgraph bench speed --model minilm-shape --quantize int8 --rounds 30 --warmup 2 --no-memory "
    "--batch 16 --seq 64 --threads 1",
    "speed-llama-int8-cpu": "taskgraph bench speed --model tiny-llama --quantize int8 --gradient-checkpointing "
    "--routers shared poly graph --batch 4 --seq 512 --tasks 8 --rounds 5 --warmup 1 --threads 1",
    # written by .ci/gpu-check on a lent GPU (its $OUT/<name>.json copied here as it is)
    "speed-minilm-cuda": "taskgraph bench speed --device cuda --model minilm-shape --no-memory --rounds 20",
    "speed-768-cuda": "taskgraph bench speed --device cuda --model encoder-768 --batch 64 --seq 256 --no-memory "
    "--rounds 12",
    "speed-llama1b-nf4-cuda": "taskgraph bench speed --device cuda --model llama-1b --quantize nf4 --base-dtype "
    "bfloat16 --gradient-checkpointing --routers shared poly graph --batch 8 --seq 512 --rounds 10 --warmup 2",
}
SPEED_RECORDS = tuple(name for name in SPEED_COMMANDS if name.startswith("speed-"))  # taskgraph bench speed's own


def speed_block(record: dict[str, Any], name: str) -> str:
    """A ``taskgraph bench speed`` record (``benchmarks/results/<name>.json``) as the bench's own report renders it
    (its title dropped, its sections one level down), under the command that measured it."""
    from benchmarks.targets import evaluate, render_targets
    from taskgraph.bench import render_markdown

    report = render_markdown(record) + "\n" + render_targets(record["bench"], evaluate(record))
    body = "\n".join(line for line in report.rstrip("\n").split("\n") if not line.startswith("# "))
    return (
        f"`{SPEED_COMMANDS[name]}` (record: `benchmarks/results/{name}.json`)\n"
        + _sections_down(body).strip("\n")
        + "\n"
    )


@renderer("real-descriptions")
def real_descriptions() -> str:
    from benchmarks.quality.real_descriptions import real_descriptions_block

    return record_block("real-descriptions", real_descriptions_block)


@renderer("infer-cpu")
def infer_cpu() -> str:
    """``taskgraph bench infer`` over five configurations (:mod:`benchmarks.infer_table`)."""
    from benchmarks.infer_table import infer_block

    return infer_block(load("infer-cpu"))


@renderer("view-cpu")
def view_cpu() -> str:
    """``python -m benchmarks view``: the HTML view's time to interactive against T."""
    from benchmarks.view import render_view_markdown

    command = "python -m benchmarks view --json benchmarks/results/view-cpu.json"
    return f"`{command}`\n\n" + render_view_markdown(load("view-cpu"))


@renderer("ops-cpu")
def ops_cpu() -> str:
    """The op counts of ``taskgraph bench speed --ops`` and their targets (graph ≤ 1.2 × PEFT LoRA: issue 28)."""
    from taskgraph.bench import render_ops

    return bench_block("ops-cpu", lambda record: _bold_titles(render_ops(record)))


def bench_block(name: str, render: Callable[[dict[str, Any]], str]) -> str:
    """A bench record as its own report renders it, under its command, then its targets one heading level down."""
    from benchmarks.targets import evaluate, render_targets

    record = load(name)
    targets = _sections_down(render_targets(record["bench"], evaluate(record)).strip("\n"))
    return f"`{SPEED_COMMANDS[name]}`\n\n{render(record)}\n\n{targets}\n"


def _sections_down(text: str) -> str:
    """A bench report's ``## section`` lines two levels down (``####``), under the page's own headings."""
    return "\n".join("##" + line if line.startswith("## ") else line for line in text.split("\n"))


@renderer("scale-cpu")
def scale_cpu() -> str:
    """``taskgraph bench scale``: the graph router's step and attach time against T, and their targets."""
    from taskgraph.bench import render_scale

    return bench_block("scale-cpu", render_scale)


@renderer("lm-cpu")
def lm_cpu() -> str:
    """``taskgraph bench lm``: a routed causal-LM step and routed generation beside PEFT, and their targets."""
    from taskgraph.bench import render_lm

    return bench_block("lm-cpu", render_lm)


def _bold_titles(text: str) -> str:
    """``#### title`` lines as bold paragraphs (the page's headings stay its own)."""
    return "\n".join(f"**{line[5:]}**" if line.startswith("#### ") else line for line in text.split("\n"))


record_renderers(SPEED_RECORDS, speed_block)


# ----------------------------------------------------------------------------- gradient checkpointing
def grad_checkpointing_block(record: dict[str, Any], name: str) -> str:
    """``python -m benchmarks.grad_checkpointing``'s record: per family and router, off → on and the ratio."""
    s, env = record["settings"], record["environment"]
    lines = [
        f"`{record['command']}` (record: `benchmarks/results/{name}.json`): sequence {s['seq']}, "
        f"batch {s['batch']}, fp32, {env['device_name']}, median of {s['rounds']} steps; torch {env['torch']}, "
        f"transformers {env['transformers']}; measured {record['date']}.",
        "",
        "| family | router | forward keeps for the backward (MiB), off → on | × | the step's peak (MiB), off → on "
        "| × | step (s), off → on | × | max \\|Δ gradient\\| |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in record["rows"]:
        off, on = r["off"], r["on"]
        lines.append(
            f"| {r['family']} | {r['router']} | {off['held_mib']:.1f} → {on['held_mib']:.1f} | {r['held_ratio']:.2f} "
            f"| {off['peak_mib']:.1f} → {on['peak_mib']:.1f} | {r['peak_ratio']:.2f} "
            f"| {off['step_s']:.2f} → {on['step_s']:.2f} | {r['time_ratio']:.2f} | {r['max_grad_diff']:.1e} |"
        )
    return "\n".join(lines) + "\n"


# the second: .ci/gpu-check's, on a lent GPU
record_renderers(("grad-checkpointing-cpu", "grad-checkpointing-cuda"), grad_checkpointing_block)


# ----------------------------------------------------------------------------- the files
def render_text(text: str, renderers: Mapping[str, Renderer] = RENDERERS) -> tuple[str, list[str]]:
    """``text`` with every rendered block rewritten; the names of the blocks whose body changed."""
    changed: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in renderers:
            raise KeyError(f"no renderer {name!r}; known: {sorted(renderers)}")
        body = renderers[name]()
        if body != match.group("body"):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(rewrite, text), changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 naming each stale block")
    args = parser.parse_args(argv)
    stale = []
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        new, changed = render_text(text)
        stale += [f"{path.relative_to(ROOT)}: {name}" for name in changed]
        if changed and not args.check:
            path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("stale rendered blocks (run python -m benchmarks.render): " + ", ".join(stale))
        return 1
    print(("rewrote " if stale else "up to date: ") + (", ".join(stale) or ", ".join(str(f.name) for f in FILES)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
