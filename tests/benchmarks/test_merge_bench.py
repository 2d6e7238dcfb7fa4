"""``python -m benchmarks merge``: the figures' formulas, a tiny resumable run, and bad arguments."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main
from benchmarks.merging.suites import MergeBenchError, task_subsets
from benchmarks.merging.summary import check_same_rows, merge_figures
from taskgraph.merge.params import LAMBDA_GRID


def test_merge_figures_are_normalised_accuracy_and_gain():
    got = merge_figures({"a": 0.6, "b": 0.9}, single={"a": 0.8, "b": 1.0}, heads={"a": 0.4, "b": 0.5})
    assert got["absolute"] == pytest.approx(0.75)
    assert got["normalised"] == pytest.approx((0.6 / 0.8 + 0.9 / 1.0) / 2)
    assert got["gain"] == pytest.approx((0.75 - 0.45) / (0.9 - 0.45))


def test_a_merge_scored_on_other_test_rows_than_its_single_task_run_is_refused():
    record = {"mode": "lora", "seed": 0, "label": "ties", "test_rows": {"a": 300}}
    check_same_rows(record, {("lora", 0, "a"): 300})
    with pytest.raises(MergeBenchError, match="scored 300 test rows of 'a', its single-task run 1000"):
        check_same_rows(record, {("lora", 0, "a"): 1000})


def test_subsets_are_fixed_distinct_and_checked():
    pool = [f"t{i}" for i in range(6)]
    subsets = task_subsets(pool, (2, 4, 6), 3)
    assert [len(subsets[k]) for k in (2, 4, 6)] == [3, 3, 1] and subsets[6] == [tuple(pool)]
    assert all(len(set(s)) == k for k in subsets for s in subsets[k]) and len(set(subsets[2])) == 3
    assert task_subsets(pool, (2, 4, 6), 3) == subsets  # the same subsets for every mode, method and seed
    with pytest.raises(MergeBenchError, match="a merge takes 2 to 6 tasks"):
        task_subsets(pool, (7,), 3)


def test_a_tiny_bench_runs_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "bench"
    args = [
        "merge",
        "--tiny",
        "--seeds",
        "1",
        "--select-seeds",
        "1",
        "--tasks",
        "2",
        "--subsets",
        "1",
        "--routers",
        "shared",
        "--methods",
        "task-arithmetic,ta-svd",
        "--out",
        str(out),
        "--json",
        str(tmp_path / "b.json"),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "# bench merge — planted" in printed and "| 2 | task-arithmetic |" in printed
    result = json.loads((tmp_path / "b.json").read_text())
    assert (out / "planted" / "merge.md").is_file() and (
        out / "planted" / "plots" / "normalised_accuracy.png"
    ).is_file()
    assert result["timing"]["single-task runs"]["ran"] == 2 * 2  # 2 tasks x 2 modes
    # the table's normalised accuracy is mean_t merged_t / single_t of the cell
    cell = json.loads((out / "planted" / "merge" / "lora" / "seed0" / "T2-0" / "task-arithmetic.json").read_text())
    single = {
        t: json.loads((out / "planted" / "single" / "lora" / "lr0.03" / "seed0" / t / "eval.json").read_text())["test"][
            "mean"
        ]["accuracy"]
        for t in ("planted-0", "planted-1")
    }
    want = sum(cell["test"][t] / single[t] for t in cell["test"]) / 2
    rows = {
        t: json.loads((out / "planted" / "single" / "lora" / "lr0.03" / "seed0" / t / "eval.json").read_text())["test"][
            "tasks"
        ][t]["n"]
        for t in ("planted-0", "planted-1")
    }
    assert cell["test_rows"] == rows  # merged and single-task accuracy count the same test rows
    assert cell["chosen"]["lambda"] in LAMBDA_GRID and len(cell["grid"]) == len(LAMBDA_GRID)
    row = next(r for r in result["rows"] if r["method"] == "task-arithmetic")
    assert row["lora_normalised"][0] == pytest.approx(want)
    assert {t["verdict"] for t in result["targets"]} <= {"met", "missed"}
    assert main(args) == 0  # every cell is done: nothing runs again, the same figures
    again = json.loads((tmp_path / "b.json").read_text())
    assert again["timing"]["merges"]["ran"] == 0 and again["timing"]["single-task runs"]["ran"] == 0
    assert again["rows"] == result["rows"]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--tasks", "1"], "distinct task counts of at least 2"),
        (["--methods", "nope"], "unknown method ['nope']"),
        (["--suite", "other"], "invalid choice"),
    ],
)
def test_bad_arguments_are_exit_2(tmp_path, capsys, args, needle):
    assert main(["merge", *args, "--out", str(tmp_path / "b")]) == 2
    assert needle in capsys.readouterr().err
