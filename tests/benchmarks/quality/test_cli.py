"""``python -m benchmarks quality --suite planted --tiny`` end to end: cells, report, plots, and a re-run that skips.

A tiny planted universe (6 seen tasks, 1 held out), 2 routers × 2 learning rates on the selection seeds 0 and 1,
then seed 2 at each router's chosen rate, then every supported adaptation mode at 4 shots.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.quality_tables import main as tables
from benchmarks.quality_tables import quality_block

ARGS = [
    "quality",
    "--suite",
    "planted",
    "--tiny",
    "--seeds",
    "3",
    "--select-seeds",
    "2",
    "--routers",
    "poly,graph",
    "--lrs",
    "1e-3,1e-2",
    "--shots",
    "4",
    "--steps",
    "4",
    "--adapt-steps",
    "2",
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    import contextlib
    import io

    out = tmp_path_factory.mktemp("quality")
    import torch

    stdout, threads = io.StringIO(), torch.get_num_threads()
    with contextlib.redirect_stdout(stdout):
        code = main([*ARGS, "--out", str(out), "--json", str(out / "all.json")])
    assert code == 0
    assert torch.get_num_threads() == threads  # the planted suite runs on one thread, then gives the setting back
    return out, json.loads((out / "all.json").read_text()), stdout.getvalue()


def test_cells_follow_the_lr_selection_rule(bench: tuple[Path, dict, str]):
    out, result, _ = bench
    suite = result["suites"]["planted"]
    train = out / "planted" / "train"
    for router in ("poly", "graph"):
        row = next(r for r in suite["routers"] if r["router"] == router)
        val = row["val_by_lr"]
        assert set(val) == {"0.001", "0.01"}
        for entry in val.values():  # the mean over the selection seeds, each seed's figure beside it
            assert set(entry["seeds"]) == {"0", "1"}
            assert entry["mean"] == pytest.approx(sum(entry["seeds"].values()) / 2)
        best = max(v["mean"] for v in val.values())
        assert row["lr"] == min(float(x) for x, v in val.items() if v["mean"] == best)  # best mean, ties to smaller
        assert suite["chosen_lr"][router] == row["lr"]
        for lr in ("0.001", "0.01"):
            for seed in (0, 1):
                assert (train / router / f"lr{lr}" / f"seed{seed}" / "eval.json").is_file()
            assert (train / router / f"lr{lr}" / "seed2").exists() == (float(lr) == row["lr"])
        assert row["seeds"] == [0, 1, 2] and row["test"]["n"] == 3
        assert row["trainable"]["heads"] == 6 * (16 * 3 + 3)  # 6 heads of 3 labels on hidden 16: same for every router
        assert row["step_ms"]["mean"] > 0
        assert 0.0 <= row["allocation"]["precision"]["mean"] <= 1.0
        assert row["relations"]["random"]["mean"] is not None  # planted truth has unrelated pairs
    graph = next(r for r in suite["routers"] if r["router"] == "graph")
    assert graph["relations"]["learned"]["mean"] is not None
    assert graph["trainable"]["router"] > 0


def test_the_recorded_validation_is_evaluate_run_on_val(bench: tuple[Path, dict, str]):
    from taskgraph.eval import evaluate_run

    out, _, _ = bench
    cell = out / "planted" / "train" / "graph" / "lr0.01" / "seed0"
    record = json.loads((cell / "eval.json").read_text())
    again = evaluate_run(cell, split="val", timing=False, alignment=False)
    assert record["val"]["mean"]["accuracy"] == again["mean"]["accuracy"]
    assert {k: v["accuracy"] for k, v in record["val"]["tasks"].items()} == {
        k: v["accuracy"] for k, v in again["tasks"].items()
    }
    assert record["test"]["split"] == "test" and record["test"]["gradient_alignment"] is not None


def test_adaptation_cells_cover_every_supported_mode(bench: tuple[Path, dict, str]):
    out, result, _ = bench
    suite = result["suites"]["planted"]
    modes = {(r["router"], r["mode"]) for r in suite["few_shot"]}
    assert modes == {
        ("poly", "full"),
        ("poly", "routing"),
        ("poly", "mhr-mu"),
        ("graph", "full"),
        ("graph", "routing"),
        ("graph", "zero-shot"),
    }
    assert all(r["shots"] == 4 and r["n"] == 3 and not r["errors"] for r in suite["few_shot"])
    (held,) = suite["held_out"]
    graph = out / "planted" / "adapt" / "graph" / f"lr{suite['chosen_lr']['graph']:g}"
    record = json.loads((graph / "zero-shot" / "shots4" / "seed1" / held["name"] / "cell.json").read_text())
    assert record["relate"] == held["relate"] and record["test"]["accuracy"] is not None
    assert record["run"].endswith(f"train/graph/lr{suite['chosen_lr']['graph']:g}/seed1")
    full = json.loads((graph / "full" / "shots4" / "seed0" / held["name"] / "cell.json").read_text())
    assert full["relate"] is None  # few-shot modes get no relations: same information for every router


def test_report_files_and_targets(bench: tuple[Path, dict, str]):
    out, result, stdout = bench
    root = out / "planted"
    md = (root / "quality.md").read_text()
    assert stdout.strip().startswith("# benchmarks quality — planted")
    for heading in (
        "## Routers",
        "## Learning-rate selection",
        "## Paired differences",
        "## Few-shot",
        "## Targets",
        "## Time",
    ):
        assert heading in md
    assert "| graph − poly |" in md
    for name in ("accuracy.png", "few_shot.png"):
        assert (root / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    on_disk = json.loads((root / "quality.json").read_text())
    assert on_disk["routers"] == result["suites"]["planted"]["routers"]
    names = [t["name"] for t in on_disk["targets"]]
    assert names[:3] == [
        "graph allocation precision (mean over seeds)",
        "graph relation AUROC vs planted truth (mean over seeds)",
        "zero-shot graph − MHR-μ on held-out tasks, head fit on 4 shots",
    ]
    zero = on_disk["targets"][2]
    assert zero["detail"].startswith("baseline poly/mhr-mu") and zero["met"] in (True, False)
    assert on_disk["budget"]["steps"] == 4 and on_disk["budget"]["lrs"] == [1e-3, 1e-2]
    assert on_disk["timing"]["total"]["ran"] == 10 + 18 + 3 and on_disk["timing"]["total"]["skipped"] == 0  # + oracle
    assert on_disk["oracle"]["seeds"] == [0, 1, 2] and len(on_disk["oracle"]["per_layer_head"]) == 4
    assert "## Oracle-relearn ceiling" in md and "## Allocation precision per adapted layer" in md
    assert on_disk["environment"]["threads"] == 1


def test_the_record_keeps_what_the_block_renders_and_the_block_reads_it(bench: tuple[Path, dict, str], tmp_path: Path):
    out, result, _ = bench
    argv = [str(out / "planted" / "quality.json"), "--name", "q", "--command", "python -m benchmarks quality ..."]
    assert tables([*argv, "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "q.json").read_text())
    suite = result["suites"]["planted"]
    assert record["few_shot"] == suite["few_shot"] and record["few_shot_paired"] == suite["few_shot_paired"]
    assert [h["name"] for h in record["held_out"]] == [h["name"] for h in suite["held_out"]]
    assert all("data" not in h for h in record["held_out"])  # a data path names the measuring machine
    block = quality_block(record, "q")
    graph = next(r for r in suite["routers"] if r["router"] == "graph")
    assert f"| graph | {graph['lr']:g} |" in block and "Record: `benchmarks/results/q.json`" in block
    rows = {(r["router"], r["mode"]): r for r in suite["few_shot"] if r["shots"] == 4}
    columns = block.split("| shots | ")[1].split(" |\n")[0].split(" | ")
    cells = block.split("\n| 4 | ")[1].split(" |\n")[0].split(" | ")
    for column, cell in zip(columns, cells, strict=True):  # each held-out cell sits under its (router, mode)
        row = rows[tuple(column.split(" "))]
        assert cell == (f"{row['mean']:.3f} ± {row['std']:.3f}" if row["std"] is not None else f"{row['mean']:.3f}")
    assert "allocation precision (random)" in block  # planted: the routers' allocation is measured
    assert "zero-shot routes a task from its relations to seen tasks (every seen task sharing a skill" in block
    means = [r["test"]["mean"] for r in suite["routers"]]
    assert f"span {min(means):.3f}" in block and f"to {max(means):.3f}" in block


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the python -m benchmarks quality result"),
        ("[1]", "is a JSON object, got list"),
        ('{"bench": "quality"}', "not a python -m benchmarks quality result (no suite"),
    ],
)
def test_a_record_from_a_bad_result_is_exit_2_and_writes_nothing(tmp_path: Path, capsys, content, message):
    source = tmp_path / "quality.json"
    if content is not None:
        source.write_text(content)
    results = tmp_path / "results"
    results.mkdir()
    assert tables([str(source), "--name", "q", "--command", "c", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not any(results.iterdir())


def test_rerun_skips_every_cell_and_reports_the_same_figures(bench: tuple[Path, dict, str], capsys):
    out, first, _ = bench
    log = out / "planted" / "train" / "graph" / "lr0.001" / "seed0" / "log.jsonl"
    before = log.read_bytes()
    assert main([*ARGS, "--out", str(out)]) == 0
    again = json.loads((out / "planted" / "quality.json").read_text())
    assert again["timing"]["total"]["ran"] == 0 and again["timing"]["total"]["skipped"] == 31
    assert log.read_bytes() == before
    first_suite = first["suites"]["planted"]
    for key in ("routers", "paired", "few_shot", "targets", "chosen_lr", "oracle"):
        assert again[key] == first_suite[key]
    assert "done before, skipped" in capsys.readouterr().err


def test_two_jobs_give_the_figures_of_one_cell_at_a_time(bench: tuple[Path, dict, str], tmp_path: Path):
    _, first, _ = bench
    assert main([*ARGS, "--jobs", "2", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "planted" / "quality.json").read_text())
    serial = first["suites"]["planted"]
    assert again["timing"]["total"]["ran"] == serial["timing"]["total"]["ran"] == 31
    for key in ("paired", "few_shot", "targets", "chosen_lr", "oracle"):
        assert again[key] == serial[key]
    strip = [{k: v for k, v in row.items() if k != "step_ms"} for row in serial["routers"]]  # timing differs
    assert [{k: v for k, v in row.items() if k != "step_ms"} for row in again["routers"]] == strip


def test_a_cell_missing_only_its_evaluation_is_evaluated_not_retrained(bench: tuple[Path, dict, str]):
    out, first, _ = bench
    lr = first["suites"]["planted"]["chosen_lr"]["poly"]
    cell = out / "planted" / "train" / "poly" / f"lr{lr:g}" / "seed2"
    summary = (cell / "train.json").read_bytes()
    (cell / "eval.json").unlink()
    assert main([*ARGS, "--no-adapt", "--out", str(out)]) == 0
    again = json.loads((out / "planted" / "quality.json").read_text())
    assert again["timing"]["train: seed 2 at the chosen lr"]["ran"] == 1
    assert (cell / "train.json").read_bytes() == summary  # not trained again
    row = next(r for r in again["routers"] if r["router"] == "poly")
    assert row["test"] == next(r for r in first["suites"]["planted"]["routers"] if r["router"] == "poly")["test"]


def test_another_budget_in_the_same_folder_is_refused(bench: tuple[Path, dict, str], capsys):
    out, _, _ = bench

    def changed(option: str, value: str) -> list[str]:
        args = list(ARGS)
        args[args.index(option) + 1] = value
        return [*args, "--out", str(out)]

    assert main(changed("--steps", "5")) == 2
    assert "another spec" in capsys.readouterr().err
    assert main(changed("--adapt-steps", "3")) == 2  # every training cell is done; the adaptation cells differ
    assert "adaptation of 2 steps, not 3" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--planted", "tasks"], "expected KEY=VALUE"),
        (["--planted", "depth=3"], "unknown key(s) ['depth']"),
        (["--planted", "tasks=2", "--planted", "held_out=2"], "not a valid planted universe"),
        (["--suite", "real", "--planted", "tasks=9"], "--planted changes the planted universe"),
        (["--suite", "planted-gen", "--planted", "held_out=2"], "holds no task out"),
        (["--suite", "real-few", "--declare"], "--declare declares the planted relations"),
        (["--jobs", "0"], "--jobs"),
    ],
)
def test_bad_planted_universe_is_exit_2_before_any_cell(tmp_path: Path, capsys, extra: list[str], message: str):
    args = [*ARGS, "--out", str(tmp_path / "q"), *extra]
    if "--suite" in extra:
        args = [*ARGS[:1], *ARGS[3:], "--out", str(tmp_path / "q"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q").exists() or not any((tmp_path / "q").rglob("*.json"))


def test_a_tiny_planted_gen_bench_trains_scores_exact_match_and_measures_its_ceiling(tmp_path: Path, capsys):
    args = [*ARGS[:1], "--suite", "planted-gen", *ARGS[3:], "--out", str(tmp_path / "q")]
    assert main(args) == 0
    result = json.loads((tmp_path / "q" / "planted-gen" / "quality.json").read_text())
    assert result["held_out"] == [] and result["few_shot"] == []
    rows = {r["router"]: r for r in result["routers"]}
    assert set(rows) == {"poly", "graph"}
    for row in rows.values():  # exact match is the accuracy; allocation against the planted truth
        assert len(row["test"]["values"]) == 3 and all(v is not None for v in row["test"]["values"])
        assert row["allocation"]["precision"]["mean"] is not None
    assert result["oracle"]["precision"]["n"] == 3  # one oracle-relearn cell per seed
    assert "exact match" in (tmp_path / "q" / "planted-gen" / "quality.md").read_text()
