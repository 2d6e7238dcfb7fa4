"""Console transcripts the guides show, run as written and recorded: ``benchmarks/results/transcript-<name>.json``.

    python -m benchmarks.transcripts real-gen-600 merge-ties merge-llora     # about 15 minutes on 2 idle cores
    python -m benchmarks.transcripts --list

A transcript is a named sequence of commands a guide shows with their real output (train a run, merge it, evaluate,
adapt, export). Each runs in a scratch folder with the repository's ``configs`` linked in and the transcript's input
files (:data:`FILES`, e.g. the records a ``predict`` reads) written, exactly as the guide shows it, progress off;
what it printed and its exit status are kept (a step that shows a refusal expects its exit 2). The guide's console
block is rendered from the record by :mod:`benchmarks.render` (renderer ``transcript-<name>``), so the output a guide
shows is the output the command gave, not a copy typed from a terminal.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.record_io import provenance, write_record
from taskgraph.atomic import write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True)
class Step:
    """One command of a transcript: ``tail`` shows only its last lines (after ``...``); ``expect`` its exit status."""

    command: str
    tail: int | None = None
    expect: int = 0


def run(command: str, cwd: Path, expect: int = 0, env: Mapping[str, str] | None = None) -> str:
    """``command`` in ``cwd`` (its environment: ours with ``env`` added), what it printed (stdout and stderr, as a
    terminal shows them, progress off); raises when it exits other than ``expect``."""
    env = {**os.environ, "TASKGRAPH_PROGRESS": "off", **(env or {})}
    done = subprocess.run(
        shlex.split(command), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if done.returncode != expect:
        raise RuntimeError(f"{command!r} exited {done.returncode}, not {expect}:\n{done.stdout}")
    return done.stdout


def _llora(task: int, labels: int, seed: int | None = None, out: str | None = None) -> Step:
    args = f" --set tasks[0].name=planted-{task} --set tasks[0].data.task={task} --set tasks[0].num_labels={labels}"
    seeded = "" if seed is None else f" --set training.seed={seed}"
    return Step(f"taskgraph train configs/merge/llora-task.yaml{args}{seeded} --out {out or f'runs/llora-{task}'}", 1)


TRANSCRIPTS: dict[str, tuple[Step, ...]] = {
    # docs/guide/text-to-text.md: real text cast as text-to-text, trained, evaluated, new records predicted
    "text-gen": (
        Step("taskgraph train configs/text-gen.yaml --out runs/text-gen", 1),
        Step("taskgraph eval runs/text-gen --split test --no-timing --no-alignment"),
        Step("cat new.jsonl"),
        Step("taskgraph predict runs/text-gen --task-field task --input new.jsonl"),
    ),
    # docs/guide/text-to-text.md: the planted generative universe trained, evaluated, a held-out task adapted, exported
    "planted-gen": (
        Step("taskgraph train configs/planted-gen.yaml --out runs/planted-gen"),
        Step("taskgraph eval runs/planted-gen --split test --no-timing"),
        Step(
            'taskgraph adapt runs/planted-gen --task gen-7 --data "{source: planted-gen, task: 7}" --objective generate '
            "--max-new-tokens 4 --shots 32 --mode routing --out runs/planted-gen-7"
        ),
        Step("taskgraph export runs/planted-gen --format peft --task gen-0 --out runs/planted-gen-peft"),
    ),
    # docs/guide/text-to-text.md: the real-gen spec at 5 x the bench's steps, evaluated, adapted, exported
    "real-gen-600": (
        Step(
            "taskgraph train configs/real-gen.yaml --out runs/real-gen-600 --set training.steps=600 "
            "--set training.eval_every=600 --set training.checkpoint_every=600 --set model.max_length=32",
            1,
        ),
        Step("taskgraph eval runs/real-gen-600 --split test --no-timing --no-alignment"),
        Step(
            'taskgraph adapt runs/real-gen-600 --task movies --data "{source: catalog, name: rt-polarity}" '
            '--objective generate --template "review: {text} sentiment:" --choice negative --choice positive '
            "--max-new-tokens 4 --shots 64 --mode routing --out runs/real-gen-600-movies"
        ),
        Step("taskgraph export runs/real-gen-600 --format peft --task news --out runs/real-gen-600-peft"),
    ),
    # docs/guide/merging-and-peft.md: four tasks of a routed run folded and merged with TIES
    "merge-ties": (
        Step("taskgraph train configs/routers/poly.yaml --out runs/planted-poly", 1),
        Step(
            "taskgraph merge runs/planted-poly --method ties --tasks planted-00,planted-01,planted-02,planted-03 "
            "--out runs/merged-ties"
        ),
        Step("taskgraph eval runs/merged-ties --split test --no-timing --no-alignment"),
        Step("taskgraph export runs/merged-ties --format peft --all-tasks --out runs/merged-ties-peft"),
    ),
    # docs/guide/merging-and-peft.md: the L-LoRA protocol, and a run of another seed refused
    "merge-llora": (
        Step("taskgraph train configs/merge/llora-task.yaml --out runs/llora-0", 1),
        _llora(1, 3),
        _llora(2, 4),
        _llora(3, 4),
        Step(
            "taskgraph merge runs/llora-0 runs/llora-1 runs/llora-2 runs/llora-3 --method task-arithmetic "
            "--out runs/llora-merged"
        ),
        _llora(1, 3, seed=1, out="runs/llora-1-seed1"),
        Step("taskgraph merge runs/llora-0 runs/llora-1-seed1 --method ties --out runs/refused", expect=2),
    ),
}

# a transcript's input files, written into its scratch folder before the first command (path: content)
FILES: dict[str, dict[str, str]] = {
    "text-gen": {
        "new.jsonl": '{"task": "movies", "text": "a dull, tiresome film"}\n'
        '{"task": "news", "text": "shares fell after the bank raised interest rates again"}\n'
        '{"task": "news", "text": "the striker scored twice as the club won the cup final"}\n'
    },
}


def record(name: str) -> dict[str, Any]:
    """Run transcript ``name`` in a scratch folder; its record (see the module docstring)."""
    steps = []
    with tempfile.TemporaryDirectory(prefix=f"taskgraph-{name}-") as tmp:
        cwd = Path(tmp)
        (cwd / "configs").symlink_to(ROOT / "configs")
        for path, content in FILES.get(name, {}).items():
            write_text(cwd / path, content)
        for step in TRANSCRIPTS[name]:
            output = run(step.command, cwd, step.expect)
            steps.append({"command": step.command, "tail": step.tail, "exit": step.expect, "output": output})
    return {
        "transcript": name,
        "command": f"python -m benchmarks.transcripts {name}",
        "steps": steps,
        **provenance(),
    }


ABRIDGE_AFTER = 2  # rows of a per-task table shown before "... (N more rows)"
TASK_ROW = re.compile(r"^\s*planted-\d\d\b")


def abridge(output: str, keep_tail: int | None = None) -> list[str]:
    """A command's output as the docs show it: runs of per-task rows cut to the first :data:`ABRIDGE_AFTER`
    (``... (N more rows)``); ``keep_tail``: only the last lines, after ``...``."""
    lines = output.rstrip("\n").split("\n")
    if keep_tail is not None:
        return ["...", *lines[-keep_tail:]]
    shown: list[str] = []
    run: list[str] = []
    for line in [*lines, ""]:
        if TASK_ROW.match(line):
            run.append(line)
            continue
        if run:
            shown += run[:ABRIDGE_AFTER]
            if len(run) > ABRIDGE_AFTER:
                shown.append(f"...  ({len(run) - ABRIDGE_AFTER} more rows)")
            run = []
        shown.append(line)
    return shown[:-1]


def transcript_block(record: Mapping[str, Any], name: str) -> str:
    """The console block of a transcript's record (each output cut by :func:`abridge`) and a line naming the command
    that recorded it."""
    lines = ["```console"]
    for step in record["steps"]:
        lines += [f"$ {step['command']}", *abridge(step["output"], step["tail"]), ""]
    lines[-1] = "```"
    m, v = record["machine"], record["versions"]
    lines += [
        "",
        f"Recorded by `{record['command']}` on {record['date']} ({m['cpus']} CPUs, torch {v['torch']}, transformers "
        f"{v['transformers']}; `benchmarks/results/{name}.json`); wall times depend on the machine's load.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transcripts", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"transcripts to record: {', '.join(TRANSCRIPTS)}")
    parser.add_argument("--list", action="store_true", help="print each transcript's commands and stop")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in TRANSCRIPTS]
    if unknown or not (args.names or args.list):
        parser.error(f"name transcripts of {', '.join(TRANSCRIPTS)} (unknown: {unknown})")
    if args.list:
        for name, steps in TRANSCRIPTS.items():
            print(name, *(f"  $ {s.command}" for s in steps), sep="\n")
        return 0
    for name in args.names:
        print(f"wrote {write_record(args.results, f'transcript-{name}', record(name))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
