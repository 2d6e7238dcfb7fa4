"""``python -m benchmarks``: bad input is refused before any work (exit 2, one paragraph, no traceback), it runs as a
module from a checkout, and ``taskgraph bench quality|merge|view`` say where the suites went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main as bench_main
from taskgraph.cli import main

ROOT = Path(__file__).resolve().parents[2]


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    code = bench_main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_view_refuses_more_tasks_than_finish_in_reasonable_time(capsys):
    err = refused(["view", "--tasks", "100000"], capsys)
    assert "--tasks" in err and "at most 10,000" in err


def test_view_refuses_endless_repeats(capsys):
    err = refused(["view", "--repeats", "1000000"], capsys)
    assert "--repeats" in err and "at most 100" in err


@pytest.mark.parametrize("lrs", ["inf", "1e-3,inf", "nan", "-1e-3", "0"])
def test_quality_refuses_non_finite_or_non_positive_rates(lrs, tmp_path, capsys):
    err = refused(["quality", "--out", str(tmp_path), f"--lrs={lrs}"], capsys)
    assert "--lrs" in err and "positive finite numbers" in err


@pytest.mark.parametrize(
    "argv", [["quality", "--out", "OUT", "--routers", ","], ["quality", "--out", "OUT", "--held-out", ","]]
)
def test_empty_name_lists_are_refused(argv, capsys):
    assert "expected names separated by commas" in refused(argv, capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["quality", "--out", "OUT", "--routers", "poly, graph,poly"],
        ["quality", "--out", "OUT", "--held-out", "a,a"],
        ["merge", "--out", "OUT", "--routers", "poly,poly"],
        ["merge", "--out", "OUT", "--methods", "ties,ties"],
    ],
)
def test_repeated_names_are_refused(argv, capsys):
    err = refused(argv, capsys)
    assert "given twice" in err and "'" in err


@pytest.mark.parametrize("suite", [["view"], ["quality", "--out", "O"], ["merge", "--out", "O"], ["targets", "r"]])
def test_every_suite_refuses_an_empty_json_path(suite, capsys):
    err = refused([*suite, "--json", ""], capsys)
    assert "--json" in err and "expected a file path" in err


def test_a_suite_is_required(capsys):
    assert "SUITE" in refused([], capsys)


@pytest.mark.parametrize("name", ["quality", "merge", "view"])
@pytest.mark.parametrize("rest", [[], ["--suite", "planted", "--out", "runs/q"], ["-h"]])
def test_taskgraph_bench_of_a_moved_suite_says_where_it_went(name, rest, capsys):
    assert main(["bench", name, *rest]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1  # one paragraph
    assert f"taskgraph bench {name} moved: run `python -m benchmarks {name} ...` from a checkout" in captured.err


def test_python_m_benchmarks_runs_from_a_checkout():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in ("quality", "merge", "view", "targets"))


def test_seeds_are_bounded_with_the_limit_named(tmp_path, capsys):
    assert "--seeds: must be at most 100" in refused(
        ["quality", "--out", str(tmp_path / "q"), "--seeds", "101"], capsys
    )
    assert list(tmp_path.iterdir()) == []


def test_an_out_under_a_regular_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    err = refused(["quality", "--out", str(tmp_path / "file" / "q"), "--seeds", "1"], capsys)
    assert "regular file, not a folder" in err or "a folder on its path is a file" in err
    assert (tmp_path / "file").read_text() == "x"


@pytest.mark.parametrize(
    "tasks, message",
    [("100000", "planted universe: tasks: Input should be less than"), ("300", "8 skills in sets of 2-3 make fewer")],
)
def test_merge_tasks_the_suite_cannot_build_are_one_paragraph(tmp_path, capsys, tasks, message):
    assert message in refused(["merge", "--tasks", tasks, "--out", str(tmp_path / "bench")], capsys)
    assert not (tmp_path / "bench").exists()
