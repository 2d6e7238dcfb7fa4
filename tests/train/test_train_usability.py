"""What a person sees around a run: progress lines off a terminal, Ctrl-C naming the resume command, ``--resume``
without repeating SPEC or ``--set``, and the CPU-thread default that does not collapse on a busy machine."""

from __future__ import annotations

import json

import pytest

from taskgraph.cli import main
from taskgraph.cli.threads import default_threads


def test_progress_lines_when_stderr_is_not_a_terminal(make_spec, tmp_path, capsys, monkeypatch):  # noqa: ANN001
    monkeypatch.delenv("TASKGRAPH_PROGRESS", raising=False)
    spec = make_spec(steps=8, eval_every=4, checkpoint_every=4)
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if ": step " in line]
    assert [line.split(": step ")[1].split()[0] for line in lines] == ["4/8", "8/8"]
    assert all("loss " in line and "examples/s" in line and "ETA " in line for line in lines)
    assert lines[-1].startswith("tiny-train: step 8/8 (100%)")


def test_ctrl_c_names_the_last_checkpoint_and_the_resume_command_that_works(
    make_spec,
    tmp_path,
    capsys,  # noqa: ANN001
    monkeypatch,
):
    import taskgraph.train.loop as loop

    spec = make_spec(steps=8, eval_every=4, checkpoint_every=4)
    run = tmp_path / "run"

    def interrupt(variable: str, step: int) -> None:
        if step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "fault_point", interrupt)
    assert main(["train", str(spec), "--out", str(run)]) == 130
    err = capsys.readouterr().err
    assert f"the last checkpoint is {run / 'checkpoints' / 'step-000004'}" in err
    command = err.strip().splitlines()[-1].split()
    assert command == ["taskgraph", "train", "--out", str(run), "--resume"]
    monkeypatch.undo()
    assert main(command[1:]) == 0
    assert json.loads((run / "train.json").read_text())["steps"] == 8


def test_resume_needs_neither_the_spec_nor_the_set_values_again(make_spec, tmp_path, capsys, monkeypatch):  # noqa: ANN001
    spec = make_spec(steps=8, eval_every=4, checkpoint_every=2)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "--set", "training.steps=6", "--max-steps", "2"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the spec's relative data paths resolve from the folder the run recorded
    assert main(["train", "--out", str(run), "--resume"]) == 0
    assert json.loads((run / "train.json").read_text())["steps"] == 6
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(run), "--resume"]) == 0  # SPEC without the --set values: a note
    assert "resuming with the recorded spec" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "nothing")]) == 2
    assert "give a SPEC file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "cores, load, torch_default, want",
    [
        (2, 0.05, 2, 2),  # idle: every core
        (2, 1.2, 2, 1),  # a neighbour on one core: one thread
        (2, 5.0, 2, 1),  # overloaded: never fewer than one
        (16, 3.4, 8, 8),  # never more than torch's own default
        (4, None, 4, 4),  # load unknown (no getloadavg): the cores
    ],
)
def test_the_default_thread_count_leaves_the_loaded_cores(cores, load, torch_default, want):  # noqa: ANN001
    assert default_threads(cores, load, torch_default) == want
