"""``taskgraph train --out``: nothing but a marked run is ever replaced, never before the new run was checked,
never the folder you work in; one writer at a time; a start that never reached step 1 is not a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.run_folder import LOCK, MARKER, read_marker
from tests.train.conftest import take_snapshot as _tree


def test_overwrite_never_removes_a_folder_taskgraph_did_not_mark(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2)
    project = tmp_path / "project"
    (project / "model").mkdir(parents=True)  # looks like a run to a name-based check: it is not one
    (project / "model" / "notes.txt").write_text("mine")
    (project / "main.py").write_text("print('hi')")
    before = _tree(project)
    assert main(["train", str(spec), "--out", str(project), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "not a folder taskgraph marked as a run" in err and "nothing was removed" in err
    assert _tree(project) == before


def test_overwrite_replaces_a_marked_run_only_after_the_new_spec_and_data_check(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    first = read_marker(run)
    assert first is not None and first["kind"] == "train" and first["name"] == "tiny-train"
    before = _tree(run)
    broken = yaml.safe_load(spec.read_text())
    broken["tasks"][0]["data"]["path"] = "missing.jsonl"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken))
    assert main(["train", str(bad), "--out", str(run), "--overwrite"]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert _tree(run) == before  # the failed check came before anything was removed
    assert main(["train", str(spec), "--out", str(run), "--overwrite", "--set", "training.steps=3"]) == 0
    second = read_marker(run)
    assert second is not None and second["id"] != first["id"]
    assert json.loads((run / "train.json").read_text())["steps"] == 3


@pytest.mark.parametrize("out", ["", ".", "..", "SPECDIR", "SPECDIR/.."])
def test_out_may_not_be_the_working_folder_the_spec_folder_or_above(
    make_spec,
    tmp_path,
    monkeypatch,
    capsys,  # noqa: ANN001
    out,
):
    spec = make_spec(steps=2)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    target = out.replace("SPECDIR", str(spec.parent))
    before = _tree(tmp_path)
    assert main(["train", str(spec), "--out", target, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and ("current directory" in err or "which this command reads" in err or "empty" in err)
    assert _tree(tmp_path) == before


def test_out_inside_another_run_or_under_a_file_is_refused(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    assert main(["train", str(spec), "--out", str(run / "model" / "again")]) == 2
    assert "lies inside the taskgraph train run" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("x")
    assert main(["train", str(spec), "--out", str(tmp_path / "file.txt" / "run")]) == 2
    assert "which is a regular file, not a folder" in capsys.readouterr().err


def test_a_start_that_never_reached_step_one_is_not_a_run(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.yaml").write_text("name: left over\n")  # what a start that failed before step 1 left
    (run / "log.jsonl").write_bytes(b"")
    assert main(["train", str(spec), "--out", str(run)]) == 0
    assert (run / "model" / "manifest.json").is_file()
    assert yaml.safe_load((run / "spec.yaml").read_text())["name"] == "tiny-train"


def test_a_run_that_stopped_before_its_first_checkpoint_says_so(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2)
    run = tmp_path / "run"
    run.mkdir()
    (run / MARKER).write_text(json.dumps({"format": "taskgraph-run", "version": 1, "kind": "train", "id": "x"}))
    (run / "spec.yaml").write_text("name: x\n")
    (run / "log.jsonl").write_text('{"step": 1, "split": "train"}\n')
    assert main(["train", str(spec), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint" in err and "--overwrite" in err


def test_stale_temps_of_a_killed_writer_are_removed_by_the_next_run(make_spec, tmp_path):  # noqa: ANN001
    from taskgraph.atomic import HOST

    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    ).stdout.strip()
    stale = [run / f".train.json.{HOST}-{dead}-abcdefgh.tmp", run / f".model.stage-{HOST}-{dead}-abcdefgh"]
    stale[0].write_text("half")
    stale[1].mkdir()
    live = run / f".train.json.{HOST}-{os.getppid()}-abcdefgh.tmp"  # a live writer's temp stays
    live.write_text("being written")
    assert main(["train", str(spec), "--out", str(run), "--resume", "--set", "training.steps=2"]) == 0
    assert not any(p.exists() for p in stale)
    assert live.exists()


def test_two_trains_into_one_folder_the_second_is_refused_naming_the_first(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=100000, eval_every=100000, checkpoint_every=100000)
    run = tmp_path / "run"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TASKGRAPH_")},
        "OMP_NUM_THREADS": "1",
        "CI": "true",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    first = subprocess.Popen(
        [sys.executable, "-m", "taskgraph", "train", str(spec), "--out", str(run)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ((run / "log.jsonl").is_file() and (run / "log.jsonl").stat().st_size > 0):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the first train did not start"
            time.sleep(0.2)
        log_before = (run / "log.jsonl").stat().st_size
        assert main(["train", str(spec), "--out", str(run), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "in use by another taskgraph process" in err
        assert main(["train", str(spec), "--out", str(run), "--resume"]) == 2
        assert f"pid {first.pid}" in capsys.readouterr().err
        assert first.poll() is None and (run / "log.jsonl").stat().st_size >= log_before
    finally:
        first.kill()
        first.wait(timeout=30)
    assert (run / LOCK).exists()  # the lock file stays; the OS dropped the lock with the process
    assert main(["train", str(spec), "--out", str(run), "--overwrite", "--set", "training.steps=2"]) == 0


def test_python_callers_read_python_options_and_the_cli_reads_flags(make_spec, tmp_path, capsys):  # noqa: ANN001
    from taskgraph.spec import load_spec
    from taskgraph.train import TrainingError, train

    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    with pytest.raises(TrainingError) as info:
        train(load_spec(spec), run, base_dir=tmp_path)
    text = str(info.value)
    assert "out_dir" in text and "pass resume=True" in text and "overwrite=True to replace it" in text
    assert "--" not in text  # no command-line flag told to a Python caller
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "pass --resume" in err and "--overwrite to replace it" in err and "resume=True" not in err


def test_overwrite_keeps_and_names_what_taskgraph_did_not_write_in_the_run(make_spec, tmp_path, capsys):  # noqa: ANN001
    spec = make_spec(steps=2, eval_every=2, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run)]) == 0
    assert main(["export", str(run), "--format", "html", "--out", str(run / "graph.html")]) == 0  # the README's demo
    (run / "notes").mkdir()
    (run / "notes" / "todo.txt").write_text("compare with poly")
    (run / "latest").symlink_to(run / "model")
    mine = {name: _tree(run)[name] for name in ("graph.html", "notes/todo.txt")}
    first = read_marker(run)
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run), "--overwrite", "--set", "training.steps=3"]) == 0
    out = capsys.readouterr().out
    assert f"kept 3 files taskgraph did not write in {run}: graph.html, latest, notes (left as they were" in out
    assert {name: _tree(run)[name] for name in mine} == mine
    assert (run / "latest").is_symlink() and (run / "latest" / "manifest.json").is_file()
    second = read_marker(run)
    assert second is not None and first is not None and second["id"] != first["id"]
    assert json.loads((run / "train.json").read_text())["steps"] == 3
    assert main(["train", str(spec), "--out", str(run), "--overwrite"]) == 0  # still there the next time
    assert "kept 3 files" in capsys.readouterr().out and (run / "graph.html").read_bytes() == mine["graph.html"]
