"""kill -9 during ``export`` and ``adapt``: what was there before is intact, and the next run into the same place
leaves no stale temp file or staging folder.

The child process is ``taskgraph`` itself with ``os.replace`` wrapped: it sends itself SIGKILL just before (or
just after) the n-th rename onto a given name, the moments an atomic writer is most exposed. Nothing in the
code under test is changed for this.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taskgraph.model import TaskGraphModel
from taskgraph.run_folder import read_marker
from taskgraph.spec import Spec
from tests.adapt.conftest import small_planted
from tests.hostile import cli

REPO = Path(__file__).resolve().parents[1]
PLANTED = "{source: planted, task: 9}"

CHILD = """
import os, signal, sys
from pathlib import Path
name, nth, when = os.environ["KILL_AT_REPLACE"].split(":")
seen = [0]
real = os.replace
def replace(src, dst, *args, **kwargs):
    hit = Path(dst).name == name and seen[0] + 1 == int(nth)
    seen[0] += Path(dst).name == name
    if hit and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst, *args, **kwargs)
    if hit and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)
os.replace = replace
from taskgraph.cli import main
sys.exit(main(sys.argv[1:]))
"""


def killed(argv: list[str], at: str) -> None:
    """Run ``taskgraph argv`` in a child that SIGKILLs itself at ``at`` (``name:nth:before|after``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGRAPH_")}
    env.update(OMP_NUM_THREADS="1", CI="true", PYTHONPATH=str(REPO), KILL_AT_REPLACE=at)
    proc = subprocess.run([sys.executable, "-c", CHILD, *argv], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"exit {proc.returncode}, not killed at {at}:\n{proc.stderr}"


def leftovers(folder: Path) -> list[str]:
    """Temp files and staging / set-aside folders of the atomic writer anywhere under ``folder``."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob(".*")
        if p.name.endswith(".tmp") or ".stage-" in p.name or ".old-" in p.name
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved planted model (untrained) as a run folder: ``RUN/model``."""
    torch.manual_seed(0)
    model = TaskGraphModel(Spec.model_validate(small_planted("poly")))
    folder = tmp_path_factory.mktemp("killed") / "run"
    model.save_pretrained(folder / "model")
    return folder


def test_kill_9_during_export_keeps_the_old_file_and_the_next_export_cleans_up(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    argv = ["export", str(run), "--format", "json", "--out", str(out)]
    assert cli(argv).code == 0
    old = out.read_bytes()
    killed(argv, f"{out.name}:1:before")
    assert out.read_bytes() == old  # the killed writer never touched the file
    assert len(leftovers(tmp_path)) == 1  # its temp file, complete but never renamed
    assert cli(argv).code == 0
    assert leftovers(tmp_path) == []
    assert json.loads(out.read_text())["graph"] is not None


@pytest.mark.parametrize(
    "at",
    [
        "adapt.json:1:before",  # inside the staging folder: the run is half built
        "new:1:after",  # the claimed, empty --out set aside, the new run not yet in its place
        "new:2:after",  # the new run in place, the set-aside folder not yet removed
    ],
)
def test_kill_9_during_adapt_then_the_next_adapt_leaves_no_stale_files(run: Path, tmp_path: Path, at: str) -> None:
    out = tmp_path / "new"
    argv = [
        "adapt",
        str(run),
        "--task",
        "planted-9",
        "--data",
        PLANTED,
        "--shots",
        "8",
        "--mode",
        "routing",
        "--steps",
        "2",
        "--out",
        str(out),
    ]
    killed(argv, at)
    assert leftovers(tmp_path), "the kill left nothing behind: it did not hit the write"
    outcome = cli([*argv, "--overwrite"])
    assert outcome.code == 0, outcome.err
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    marker = read_marker(out)
    assert marker is not None and marker["kind"] == "adapt"
    assert json.loads((out / "adapt.json").read_text())["task"] == "planted-9"
