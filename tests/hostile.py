"""Helpers of the hostile-input tests: a tiny text run trained once, copies of it, and one CLI call that
reports its exit code, its stderr and whether it printed a traceback. Nothing is downloaded."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from taskgraph.cli import main
from taskgraph.run_folder import LOCK
from tests.train.conftest import spec_dict


@dataclass(frozen=True)
class TinyRun:
    """A 4-step spec over three JSONL text tasks and its run, stopped at step 2 (a checkpoint to resume)."""

    folder: Path  # the spec, the data files and the tokenizer
    spec: Path
    run: Path


@dataclass(frozen=True)
class Outcome:
    code: int
    err: str

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.err


def train_tiny_run(folder: Path) -> TinyRun:
    """Train the tiny run into ``folder/run`` (4 steps, stopped after 2: ``checkpoints/step-000002``)."""
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(folder, steps=4, eval_every=2, checkpoint_every=2), sort_keys=False))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        outcome = cli(["train", str(spec), "--out", str(folder / "run"), "--max-steps", "2"])
    finally:
        torch.set_num_threads(before)
    assert outcome.code == 0, outcome.err
    return TinyRun(folder, spec, folder / "run")


def cli(argv: list[str]) -> Outcome:
    """``taskgraph argv`` in this process: exit code and stderr (stdout is dropped)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return Outcome(code, err.getvalue())


def cli_within(argv: list[str], seconds: float = 120.0) -> Outcome:
    """:func:`cli` that fails the test instead of hanging (a FIFO opened for reading waits for a writer forever;
    the blocked call is left in a daemon thread)."""
    result: dict[str, Outcome] = {}
    thread = threading.Thread(target=lambda: result.setdefault("out", cli(argv)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"taskgraph {' '.join(argv)} blocked"
    return result["out"]


def copy_run(run: Path, to: Path) -> Path:
    """A copy of ``run`` at ``to`` (replacing what is there), without the lock file."""
    if to.exists() or to.is_symlink():
        shutil.rmtree(to)
    shutil.copytree(run, to, symlinks=True)
    (to / LOCK).unlink(missing_ok=True)
    return to


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``: a file's bytes, or what else it is (the lock file is not content; links
    are not followed)."""
    out: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            p = Path(root) / name
            key = str(p.relative_to(folder))
            if name == LOCK:
                continue
            if p.is_symlink():
                out[key] = f"symlink -> {os.readlink(p)}"
            elif p.is_dir():
                out[key] = "folder"
            elif p.is_file():
                out[key] = p.read_bytes()
            else:
                out[key] = "special file"
    return out
