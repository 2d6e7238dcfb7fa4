"""Every writer keeps out of runs it did not create, away from its own sources, and writes regular files only:
``eval --json``, ``export --out``, ``predict --out``, ``adapt --out``, ``sweep --out``, ``bench --json``."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.run_folder import LOCK, read_marker
from tests.adapt.conftest import small_planted
from tests.hostile import cli
from tests.test_kill_export_adapt import killed, leftovers

PLANTED = (
    "{source: planted, task: 9, seed: 0, skills: 4, tasks: 10, seq_len: 8, vocab_size: 64, examples_per_task: 120}"
)


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec file, run folder) of a 4-step planted poly run, trained through the CLI."""
    root = tmp_path_factory.mktemp("safety")
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump(small_planted("poly", steps=4)))
    assert main(["train", str(spec), "--out", str(root / "run")]) == 0
    return spec, root / "run"


def test_train_marks_its_run(trained):  # noqa: ANN001
    marker = read_marker(trained[1])
    assert marker is not None and marker["kind"] == "train" and len(marker["id"]) == 32


@pytest.mark.parametrize(
    "argv, target",
    [
        (
            ["eval", "RUN", "--json", "RUN/model/manifest.json", "--no-timing", "--no-alignment"],
            "RUN/model/manifest.json",
        ),
        (["eval", "RUN", "--json", "RUN/train.json", "--no-timing", "--no-alignment"], "RUN/train.json"),
        (["export", "RUN", "--format", "json", "--out", "RUN/model/model.safetensors"], "RUN/model/model.safetensors"),
        (["export", "RUN", "--format", "json", "--out", "RUN/spec.yaml"], "RUN/spec.yaml"),
        (["export", "RUN", "--format", "json", "--out", "RUN/checkpoints/x.json"], None),
        (["export", "SPEC", "--format", "dot", "--out", "SPEC"], "SPEC"),
        (["predict", "RUN", "--task", "planted-0", "--input", "IN", "--out", "IN"], "IN"),
        (["predict", "RUN", "--task", "planted-0", "--input", "IN", "--out", "RUN/best/manifest.json"], None),
        (["adapt", "RUN", "--task", "new", "--data", PLANTED, "--shots", "8", "--mode", "full", "--out", "RUN"], None),
        (
            [
                "adapt",
                "RUN",
                "--task",
                "new",
                "--data",
                PLANTED,
                "--shots",
                "8",
                "--mode",
                "full",
                "--out",
                "RUN/model/x",
            ],
            None,
        ),
        (["sweep", "SPEC", "--param", "router.temperature=1", "--out", "RUN"], None),
        (["sweep", "SPEC", "--param", "router.temperature=1", "--out", "RUN/cells"], None),
        (["bench", "scale", "--tasks", "10", "--json", "RUN/model/manifest.json"], None),
    ],
)
def test_no_command_writes_into_a_run_or_over_its_source(trained, tmp_path, capsys, argv, target):  # noqa: ANN001
    spec, run = trained
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"text": "a b c"}) + "\n")
    swap = {"RUN": str(run), "SPEC": str(spec), "IN": str(inputs)}
    args = [next((a.replace(k, v) for k, v in swap.items() if a.startswith(k)), a) for a in argv]
    run_before, spec_before, in_before = _tree(run), spec.read_bytes(), inputs.read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert any(
        word in err
        for word in (
            "belongs to the taskgraph train run",
            "which this command reads",
            "inside the taskgraph train run",
            "holds a taskgraph train run",
        )
    ), err
    assert _tree(run) == run_before and spec.read_bytes() == spec_before and inputs.read_bytes() == in_before


def test_a_new_file_beside_the_run_files_is_fine(trained, capsys):  # noqa: ANN001
    _, run = trained
    assert main(["export", str(run), "--format", "json", "--out", str(run / "graph.json")]) == 0
    assert main(["eval", str(run), "--json", str(run / "eval.json"), "--no-timing", "--no-alignment"]) == 0
    assert json.loads((run / "eval.json").read_text())["router"] == "poly"


def test_adapt_overwrite_replaces_only_an_adapt_run(trained, tmp_path, capsys):  # noqa: ANN001
    spec, run = trained
    other = tmp_path / "other-run"
    assert main(["train", str(spec), "--out", str(other)]) == 0
    before = _tree(other)
    args = ["adapt", str(run), "--task", "new", "--data", PLANTED, "--shots", "8", "--mode", "full", "--steps", "1"]
    assert main([*args, "--out", str(other), "--overwrite"]) == 2
    assert "holds a taskgraph train run, which a adapt never replaces" in capsys.readouterr().err
    assert _tree(other) == before
    adapted = tmp_path / "adapted"
    assert main([*args, "--out", str(adapted)]) == 0
    first = read_marker(adapted)
    assert first is not None and first["kind"] == "adapt" and first["task"] == "new"
    assert main([*args, "--out", str(adapted), "--overwrite"]) == 0
    assert read_marker(adapted)["id"] != first["id"]  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted", "other-run"]  # no staging left behind


def test_adapt_into_a_locked_folder_is_refused_naming_the_holder(trained, tmp_path, capsys):  # noqa: ANN001
    import subprocess
    import sys

    _, run = trained
    out = tmp_path / "adapted"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from taskgraph.run_folder import run_lock\n"
                f"with run_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert (
            main(
                [
                    "adapt",
                    str(run),
                    "--task",
                    "new",
                    "--data",
                    PLANTED,
                    "--shots",
                    "8",
                    "--mode",
                    "full",
                    "--steps",
                    "1",
                    "--out",
                    str(out),
                ]
            )
            == 2
        )
        assert f"pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in out.iterdir()] == [LOCK]


def test_special_files_are_refused_and_symlinks_written_through(trained, tmp_path, capsys):  # noqa: ANN001
    _, run = trained
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = threading.Event()

    def export_to_fifo() -> None:
        assert main(["export", str(run), "--format", "json", "--out", str(fifo)]) == 2
        done.set()

    worker = threading.Thread(target=export_to_fifo, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done.is_set(), "writing to a FIFO blocked"
    assert "FIFO" in capsys.readouterr().err and fifo.exists() and not fifo.is_file()
    assert main(["export", str(run), "--format", "json", "--out", "/dev/null"]) == 2
    assert "character device" in capsys.readouterr().err
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert main(["export", str(run), "--format", "json", "--out", str(link)]) == 0
    assert link.is_symlink() and json.loads(real.read_text())["graph"]["router"] == "poly"
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    assert main(["export", str(run), "--format", "json", "--out", str(loop)]) == 2
    assert "symlink loop" in capsys.readouterr().err


ADAPT = ["--task", "new", "--data", PLANTED, "--shots", "8", "--mode", "full", "--steps", "1"]


def test_adapt_overwrite_keeps_and_names_what_taskgraph_did_not_write(trained, tmp_path, capsys):  # noqa: ANN001
    _, run = trained
    adapted = tmp_path / "adapted"
    assert main(["adapt", str(run), *ADAPT, "--out", str(adapted)]) == 0
    assert main(["export", str(adapted), "--format", "html", "--out", str(adapted / "graph.html")]) == 0
    (adapted / "notes").mkdir()
    (adapted / "notes" / "todo.txt").write_text("mine")
    mine = {name: _tree(adapted)[name] for name in ("graph.html", "notes/todo.txt")}
    first = read_marker(adapted)
    capsys.readouterr()
    assert main(["adapt", str(run), *ADAPT, "--out", str(adapted), "--overwrite"]) == 0
    assert f"kept 2 files taskgraph did not write in {adapted}: graph.html, notes" in capsys.readouterr().out
    assert {name: _tree(adapted)[name] for name in mine} == mine
    assert read_marker(adapted)["id"] != first["id"]  # type: ignore[index]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapted"]  # no staging or set-aside folder left


@pytest.mark.parametrize(
    "at",
    [
        "adapted:1:after",  # the old run set aside, the new one not yet in its place
        "adapted:2:after",  # the new run in place, the old one not yet removed
    ],
)
def test_kill_9_during_adapt_overwrite_loses_no_file_taskgraph_did_not_write(trained, tmp_path, at):  # noqa: ANN001
    _, run = trained
    adapted = tmp_path / "adapted"
    argv = ["adapt", str(run), *ADAPT, "--out", str(adapted)]
    assert main(argv) == 0
    (adapted / "graph.html").write_text("<html>mine</html>")
    killed([*argv, "--overwrite"], at)
    assert leftovers(tmp_path), "the kill left nothing behind: it did not hit the swap"
    outcome = cli([*argv, "--overwrite"])  # puts back or removes what the kill left, then replaces the run
    assert outcome.code == 0, outcome.err
    assert (adapted / "graph.html").read_text() == "<html>mine</html>"
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["adapted"]


def test_merge_overwrite_keeps_and_names_what_taskgraph_did_not_write(trained, tmp_path, capsys):  # noqa: ANN001
    _, run = trained
    merged = tmp_path / "merged"
    argv = ["merge", str(run), "--method", "average", "--out", str(merged)]
    assert main([*argv, "--fold-into-base"]) == 0
    (merged / "graph.html").write_text("<html>mine</html>")
    capsys.readouterr()
    assert main([*argv, "--overwrite"]) == 0
    assert f"kept 1 file taskgraph did not write in {merged}: graph.html (" in capsys.readouterr().out
    assert (merged / "graph.html").read_text() == "<html>mine</html>" and (merged / "merge.json").is_file()
    assert not (merged / "plain").exists()  # the old run's folded base is taskgraph's: replaced, not kept
