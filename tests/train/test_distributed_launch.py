"""Refusals and exit codes of data-parallel training: ``taskgraph train --nproc-per-node N``
refuses bad input before it starts a process (exit 2, one paragraph), maps Ctrl-C to 130 and a dead rank to 1 with
taskgraph's messages and no launcher traceback; under plain torchrun a refusal every process reaches alike is printed
by local rank 0 alone and left in torchrun's error file for its failure table."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.run_folder import write_marker
from taskgraph.train.launch import Ended, Verdict, verdict
from taskgraph.train.run_checkpoint import list_checkpoints
from tests.train.conftest import REPO, spec_dict

TIMEOUT = 240
LOG = Path("/tmp/launch/attempt_0/1/stderr.log")


def _spec(folder: Path, **training: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec_dict(folder, **training), sort_keys=False))
    return folder / "spec.yaml"


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "TORCHELASTIC_ERROR_FILE", "TASKGRAPH_DIST_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the launcher's log folder: inside the test's folder


# ----------------------------------------------------------------------------- how a job's end becomes one status
@pytest.mark.parametrize(
    "ended, want",
    [
        ([], Verdict(0)),
        (  # a data error every rank reaches: rank 0 printed it; nothing more
            [Ended(0, 2, "error: data"), Ended(1, 2, "error: data", log=LOG)],
            Verdict(2),
        ),
        (  # rank 1 refused alone; rank 0 was stopped by the launcher (SIGTERM) and said so
            [
                Ended(0, 2, "error: rank 0 of 2: stopped", follows=True),
                Ended(1, 2, "error: its model differs", log=LOG),
            ],
            Verdict(2, ("error: its model differs",)),
        ),
        (  # rank 0 refused before the group started; rank 1 was SIGTERMed while waiting to join
            [Ended(0, 2, "error: --out holds a run"), Ended(1, -signal.SIGTERM, log=LOG)],
            Verdict(2),
        ),
        (  # rank 1 died without a word; rank 0 lost it and named the checkpoint
            [Ended(0, 2, "error: lost", follows=True), Ended(1, 86, log=LOG)],
            Verdict(
                1,
                (
                    "error: rank 1 of 2 ended with exit code 86 and no message of its own (killed from outside, out of "
                    f"memory, or a crash); the other processes stopped with it; its output is in {LOG}",
                ),
                keep_logs=True,
            ),
        ),
        (  # rank 0 killed: the message names the signal
            [Ended(0, -signal.SIGKILL), Ended(1, 2, "error: lost", follows=True, log=LOG)],
            Verdict(
                1,
                (
                    "error: rank 0 of 2 ended with SIGKILL (exit -9) and no message of its own (killed from outside, "
                    "out of memory, or a crash); the other processes stopped with it",
                ),
            ),
        ),
        (  # a bug on rank 1: its traceback is in its log, which is kept
            [Ended(0, 2, "error: stopped", follows=True), Ended(1, 1, "ValueError: boom", log=LOG)],
            Verdict(
                1,
                (f"error: rank 1 of 2 hit an internal error (exit 1): ValueError: boom; its output is in {LOG}",),
                True,
            ),
        ),
        ([Ended(0, 1)], Verdict(1)),  # a bug on rank 0: its traceback is on the terminal already
        ([Ended(0, 130, "interrupted"), Ended(1, 2, "error: lost", follows=True, log=LOG)], Verdict(130)),
    ],
    ids=["none", "same-refusal", "rank-1-refuses", "pre-join", "rank-1-dies", "rank-0-killed", "bug", "bug-0", "int"],
)
def test_how_the_workers_ended_is_one_exit_status(ended: list[Ended], want: Verdict):
    assert verdict(ended, 2) == want


# ----------------------------------------------------------------------------- refused before anything starts
def test_the_launcher_refuses_before_it_starts_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Bad spec, batch below the process count, --out already a run, a second job, --resume with --overwrite,
    --nproc-per-node under torchrun: exit 2, one paragraph, no process started (no launcher line)."""
    _clean_env(monkeypatch, tmp_path)
    spec = _spec(tmp_path, batch_size=8)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrouter: {kind: nope}\n")
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(spec_dict(tmp_path, batch_size=1), sort_keys=False))
    done, busy = tmp_path / "done", tmp_path / "busy"
    for run in (done, busy):
        (run / "model").mkdir(parents=True)  # a finished run
        write_marker(run, "train", "tiny-train")
    holder = subprocess.Popen(  # another taskgraph process holds busy's lock (flock), as a running job would
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
            str(busy / ".taskgraph.lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        cases = [
            (["train", str(bad), "--out", str(tmp_path / "r1")], "router.kind: unknown router 'nope'"),
            (["train", str(small), "--out", str(tmp_path / "r2")], "training.batch_size = 1 is the whole step's batch"),
            (["train", str(spec), "--out", str(done)], "already holds a run"),
            (["train", str(spec), "--out", str(busy), "--overwrite"], "is in use by another taskgraph process (pid"),
            (
                ["train", str(spec), "--out", str(done), "--resume", "--overwrite"],
                "--resume and --overwrite contradict",
            ),
        ]
        for argv, message in cases:
            assert main([*argv, "--nproc-per-node", "2"]) == 2, argv
            err = capsys.readouterr().err
            assert err.count("error: ") == 1 and message in err, (argv, err)
            assert "Traceback" not in err and "processes on this machine" not in err, err
        monkeypatch.setenv("WORLD_SIZE", "2")
        assert main(["train", str(spec), "--out", str(tmp_path / "r3"), "--nproc-per-node", "2"]) == 2
        assert "use either torchrun or --nproc-per-node" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert not any((tmp_path / name).exists() for name in ("r1", "r2", "r3"))


def test_under_torchrun_local_rank_0_alone_prints_a_refusal_and_torchruns_table_gets_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Checks made before the process group starts: rank 1 exits 2 quietly, rank 0 prints the paragraph; both leave
    it in TORCHELASTIC_ERROR_FILE in torch's own layout (torchrun's failure table shows it)."""
    _clean_env(monkeypatch, tmp_path)
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(spec_dict(tmp_path, batch_size=1), sort_keys=False))
    printed = []
    for rank in (1, 0):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(tmp_path / f"error-{rank}.json"))
        assert main(["train", str(small), "--out", str(tmp_path / "run")]) == 2
        printed.append(capsys.readouterr().err)
        record = json.loads((tmp_path / f"error-{rank}.json").read_text())
        assert record["message"]["message"].startswith("error: training.batch_size = 1 is the whole step's batch")
        assert record["taskgraph"] == {"exit": 2, "follows": False}
        assert int(record["message"]["extraInfo"]["timestamp"]) > 0
    assert printed[0] == ""  # rank 1
    assert printed[1].startswith("error: training.batch_size = 1") and "waits up to" not in printed[1]  # rank 0
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- two real processes
@pytest.mark.slow
def test_a_dead_rank_ends_the_launch_with_exit_1_and_taskgraphs_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
):
    """--nproc-per-node 2, rank 1 exits hard after step 3: exit 1, rank 0's message naming the intact checkpoint
    and the launcher's line naming rank 1 and its kept log; no traceback. Then the launcher resumes it to the end."""
    _clean_env(monkeypatch, tmp_path)
    spec = _spec(tmp_path, steps=6, eval_every=3, checkpoint_every=2, batch_size=8)
    run = tmp_path / "run"
    monkeypatch.setenv("TASKGRAPH_FAULT_AT_STEP", "3")
    monkeypatch.setenv("TASKGRAPH_FAULT_RANK", "1")
    assert main(["train", str(spec), "--out", str(run), "--nproc-per-node", "2"]) == 1
    out, err = capfd.readouterr()
    assert "Traceback" not in err and "ChildFailedError" not in err and "torch.distributed" not in err, err
    assert "error: rank 0 of 2: lost the other processes" in err or "error: rank 0 of 2: stopped by the launcher" in err
    assert "step-000002" in err and "error: rank 1 of 2 ended with exit code 86 and no message of its own" in err
    log = Path(err.split("its output is in ")[1].split()[0])
    assert (
        log.is_relative_to(tmp_path) and log.is_file() and log.parts[-3:] == ("attempt_0", "1", "stderr.log")
    )  # kept, since rank 1 said nothing
    assert [p.name for p in list_checkpoints(run)] == ["step-000002"]

    monkeypatch.delenv("TASKGRAPH_FAULT_AT_STEP")
    assert main(["train", "--out", str(run), "--resume", "--nproc-per-node", "2"]) == 0
    out, err = capfd.readouterr()
    assert f"{run}: done;" in out and "Traceback" not in err
    summary = json.loads((run / "train.json").read_text())
    assert summary["steps"] == 6 and summary["resumed_from"] == 2
    logs = Path(err.split("the others to ")[1].split()[0])
    assert not logs.exists()  # removed: the job ended well


@pytest.mark.slow
def test_ctrl_c_to_the_launcher_exits_130_with_the_resume_command(tmp_path: Path, child_env):
    spec = _spec(tmp_path, steps=400, eval_every=400, checkpoint_every=2, batch_size=8)
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "taskgraph", "train", str(spec), "--out", str(run), "--nproc-per-node", "2"],
        cwd=REPO,
        env=child_env(TASKGRAPH_PROGRESS="off", TMPDIR=str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + TIMEOUT
    while not list_checkpoints(run) and launcher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    launcher.send_signal(signal.SIGINT)
    out, err = launcher.communicate(timeout=TIMEOUT)
    assert launcher.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "SignalException" not in err, err
    assert "interrupted; the last checkpoint is" in err and f"taskgraph train --out {run} --resume" in err
    assert err.count("interrupted") == 1  # rank 0 alone says it
