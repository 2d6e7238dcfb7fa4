"""benchmarks/merge_tables.py: a merge suite's result as a committed record, its block and its plot."""

from __future__ import annotations

import json

import pytest

from benchmarks.cli import main as bench_main
from benchmarks.merge_tables import main, merge_block, reduce_merge


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory) -> tuple[dict, str]:
    root = tmp_path_factory.mktemp("merge")
    args = ["merge", "--tiny", "--seeds", "2", "--select-seeds", "1", "--tasks", "2,3", "--subsets", "1"]
    args += ["--routers", "shared", "--methods", "task-arithmetic,average", "--out", str(root / "bench")]
    assert bench_main(args) == 0
    return json.loads((root / "bench" / "planted" / "merge.json").read_text()), str(root / "bench" / "planted")


def test_the_record_keeps_every_figure_and_the_block_shows_them(tiny_result) -> None:
    result, _ = tiny_result
    record = reduce_merge(result, "python -m benchmarks merge --tiny")
    assert "plots" not in record and record["command"] == "python -m benchmarks merge --tiny"
    assert record["rows"] == result["rows"] and record["targets"] == result["targets"]
    text = merge_block(record, "merge-tiny")
    assert text.startswith("`python -m benchmarks merge --tiny` (record: `benchmarks/results/merge-tiny.json`)")
    assert "#### Single-task runs" in text and "# bench merge" not in text and "\n\n\n" not in text
    row = next(r for r in record["rows"] if r["size"] == 3 and r["method"] == "average")
    mean, std = row["lora_absolute"]
    assert f"| 3 | average | {mean:.3f} ± {std:.3f} |" in text
    best = max((r for r in record["rows"] if r["size"] == 3), key=lambda r: r["lora_normalised"][0])
    assert f"At T = 3, the best merge of single-task LoRA runs ({best['method']}) keeps" in text
    shared = next(r for r in record["together"] if r["size"] == 3 and r["name"] == "shared")
    assert f"shared {shared['absolute'][0]:.3f}" in text
    for target in record["targets"]:
        assert f"| {target['target']} | {target['measured']} | {target['verdict']} |" in text


def test_the_command_writes_the_record_and_the_plot(tiny_result, tmp_path, capsys) -> None:
    _, folder = tiny_result
    args = [f"{folder}/merge.json", "--name", "merge-x", "--command", "c", "--png", str(tmp_path / "p.png")]
    assert main([*args, "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "merge-x.json").read_text())
    assert record["command"] == "c" and record["bench"] == "merge"
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "cannot read the python -m benchmarks merge result"),
        ("{not json", "cannot read"),
        ('{"bench": "merge"}', "not a python -m benchmarks merge result (no suite"),
    ],
)
def test_a_missing_or_wrong_result_is_one_paragraph_and_exit_2(tmp_path, capsys, content, needle) -> None:
    path = tmp_path / "merge.json"
    if content is not None:
        path.write_text(content)
    code = main([str(path), "--name", "x", "--command", "c", "--results", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_result_of_another_bench_is_refused(tiny_result, tmp_path, capsys) -> None:
    result, _ = tiny_result
    path = tmp_path / "other.json"
    path.write_text(json.dumps({**result, "bench": "quality"}))
    assert main([str(path), "--name", "x", "--command", "c", "--results", str(tmp_path)]) == 2
    assert "a 'quality' result, not a python -m benchmarks merge one" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
