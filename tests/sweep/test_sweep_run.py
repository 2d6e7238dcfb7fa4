"""A 2 × 2 grid × 2 seeds end to end on a tiny planted spec: every cell trained and evaluated, the table
equal to the mean / std of the cells' eval.json, the plots valid PNGs; a re-run trains nothing; an
interrupted cell resumes to the same result; a changed spec is refused; the CLI's errors exit 2."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import taskgraph.sweep.resumable as resumable
import taskgraph.sweep.run as sweep_run
from taskgraph.cli import main
from taskgraph.run_folder import OutputPathError
from taskgraph.spec import load_spec
from taskgraph.sweep import SweepResult, run_sweep
from tests.sweep.conftest import write_spec

REPO = Path(__file__).resolve().parents[2]
PARAMS = {"router.temperature": ["0.5", "2"], "training.label_noise": ["0", "0.25"]}
CLI_PARAMS = ["--param", "router.temperature=0.5,2", "--param", "training.label_noise=0,0.25"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    folder = tmp_path_factory.mktemp("sweep")
    lines: list[str] = []
    result = run_sweep(write_spec(folder), PARAMS, folder / "out", seeds=2, progress=lines.append)
    assert len(lines) == 8 and lines[0].startswith(
        "[1/8] router.temperature=0.5 training.label_noise=0 seed=0: trained"
    )
    return result


def _files(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` and its modification time (ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_every_cell_is_trained_and_evaluated(sweep: SweepResult) -> None:
    assert sweep.counts() == {"skipped": 0, "evaluated": 0, "resumed": 0, "trained": 8}
    for outcome in sweep.outcomes:
        folder = sweep.out_dir / "cells" / outcome.cell.slug
        record = json.loads((folder / "cell.json").read_text())
        assert record["seed"] == outcome.cell.seed and record["params"] == outcome.cell.params
        evaluation = json.loads((folder / "eval.json").read_text())
        assert evaluation["split"] == "val" and evaluation["timing"] is None  # a sweep does not time
        assert (folder / "run" / "model" / "model.safetensors").is_file()
        assert json.loads((folder / "run" / "train.json").read_text())["steps"] == 4
        trained = load_spec(folder / "run" / "spec.yaml")
        assert (trained.router.temperature, trained.training.label_noise, trained.training.seed) == (
            outcome.cell.params["router.temperature"],
            outcome.cell.params["training.label_noise"],
            outcome.cell.seed,
        )


def _cell_metrics(sweep: SweepResult) -> dict[tuple[Any, ...], dict[str, list[float]]]:
    """From the eval.json files alone: per grid point, each metric's values over the seeds."""
    out: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for folder in sorted((sweep.out_dir / "cells").iterdir()):
        record = json.loads((folder / "cell.json").read_text())
        e = json.loads((folder / "eval.json").read_text())
        point = tuple(record["params"][k] for k in PARAMS)
        values = out.setdefault(
            point, {"accuracy": [], "macro_f1": [], "allocation_precision": [], "relation_auroc": []}
        )
        values["accuracy"].append(e["mean"]["accuracy"])
        values["macro_f1"].append(e["mean"]["macro_f1"])
        values["allocation_precision"].append(e["allocation"]["precision"])
        values["relation_auroc"].append(e["relations"]["auroc"]["learned"])
    return out


def test_table_is_the_mean_and_std_of_the_cells(sweep: SweepResult) -> None:
    expected = _cell_metrics(sweep)
    assert len(expected) == 4 and all(len(v["accuracy"]) == 2 for v in expected.values())
    summary = json.loads((sweep.out_dir / "sweep.json").read_text())
    assert summary["metrics"] == ["accuracy", "macro_f1", "allocation_precision", "relation_auroc"]
    markdown = (sweep.out_dir / "sweep.md").read_text()
    assert (
        "| router.temperature | training.label_noise | accuracy | macro-F1 | allocation precision | "
        "relation AUROC | n |" in markdown
    )
    for row in summary["rows"]:
        values = expected[tuple(row["params"][k] for k in PARAMS)]
        assert row["n"] == 2
        cells = []
        for metric, stat in row["metrics"].items():
            assert stat["mean"] == pytest.approx(statistics.fmean(values[metric]), abs=1e-12)
            assert stat["std"] == pytest.approx(statistics.stdev(values[metric]), abs=1e-12)  # sample std
            cells.append(f"{stat['mean']:.4f} ± {stat['std']:.4f}")
        params = [json.dumps(row["params"][k]) for k in PARAMS]
        assert "| " + " | ".join(params + cells + ["2"]) + " |" in markdown
    assert sweep.table in markdown


def test_plots_are_valid_pngs_one_per_metric_and_param(sweep: SweepResult) -> None:
    names = sorted(p.name for p in (sweep.out_dir / "plots").iterdir())
    assert names == sorted(
        f"{m}-vs-{p}.png" for m in ("accuracy", "macro_f1", "allocation_precision", "relation_auroc") for p in PARAMS
    )
    for path in sweep.plots:
        with Image.open(path) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 400 and image.size[1] > 300


def test_rerun_skips_every_cell_without_training(
    sweep: SweepResult, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a finished cell was trained or evaluated again")

    monkeypatch.setattr(resumable, "train", refuse)
    monkeypatch.setattr(sweep_run, "evaluate_run", refuse)
    before = _files(sweep.out_dir / "cells")
    table = (sweep.out_dir / "sweep.md").read_text()
    args = ["sweep", str(sweep.grid.spec_path), *CLI_PARAMS, "--seeds", "2", "--out", str(sweep.out_dir)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("skipped (finished)") == 8 and "8 cells: 8 skipped" in out
    assert sweep.table in out
    assert _files(sweep.out_dir / "cells") == before  # not a file of any cell was written
    assert (sweep.out_dir / "sweep.md").read_text() == table


def test_a_changed_spec_is_refused_and_nothing_is_touched(
    sweep: SweepResult, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(sweep.out_dir)
    args = [
        "sweep",
        str(sweep.grid.spec_path),
        *CLI_PARAMS,
        "--seeds",
        "2",
        "--max-steps",
        "3",
        "--out",
        str(sweep.out_dir),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "8 cell folder(s)" in err and "differing fields: training.steps" in err and "nothing was run" in err
    assert _files(sweep.out_dir) == before


def test_an_interrupted_cell_resumes_to_the_same_result(
    sweep: SweepResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = [
        "-m",
        "taskgraph",
        "sweep",
        str(sweep.grid.spec_path),
        "--param",
        "router.temperature=0.5",
        "--param",
        "training.label_noise=0.25",
        "--out",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGRAPH_")}
    env.update(OMP_NUM_THREADS="1", CI="true", PYTHONPATH=str(REPO), TASKGRAPH_FAULT_AT_STEP="3")
    proc = subprocess.run([sys.executable, *args], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 86, proc.stderr  # killed hard after step 3; the checkpoint of step 2 is there
    slug = "router.temperature=0.5_training.label_noise=0.25_seed=0"
    cell = out / "cells" / slug
    assert (cell / "cell.json").is_file() and not (cell / "eval.json").exists()
    assert [p.name for p in (cell / "run" / "checkpoints").iterdir()] == ["step-000002"]

    result = run_sweep(sweep.grid.spec_path, {"router.temperature": ["0.5"], "training.label_noise": ["0.25"]}, out)
    (outcome,) = result.outcomes
    assert (outcome.status, outcome.resumed_from) == ("resumed", 2)
    reference = json.loads((sweep.out_dir / "cells" / slug / "eval.json").read_text())
    resumed = json.loads((cell / "eval.json").read_text())
    for key in ("tasks", "mean", "allocation", "relations"):
        assert resumed[key] == reference[key]  # bit-exact resume: the same scores as the uninterrupted cell

    monkeypatch.setattr(resumable, "train", lambda *a, **k: pytest.fail("a finished run was trained again"))
    again = run_sweep(
        sweep.grid.spec_path, {"router.temperature": ["0.5"], "training.label_noise": ["0.25"]}, out, split="test"
    )
    assert again.outcomes[0].status == "evaluated" and again.outcomes[0].evaluation["split"] == "test"
    assert "test split" in (out / "sweep.md").read_text()


def test_cli_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path)
    out = str(tmp_path / "out")
    cases = [
        (["--param", "router.temprature=1"], "did you mean 'temperature'"),
        (["--param", "router.temperature=0.5,-1"], "--param router.temperature=-1: router.temperature: Input should"),
        (["--param", "router.temperature"], "write it as KEY=v1,v2"),
        (["--param", "router.temperature=1", "--param", "router.temperature=2"], "given twice"),
        (["--param", "tasks.*.nope=1"], "--param tasks.*.nope=1: tasks[0].nope: unknown key 'nope'"),
        (["--param", "router.temperature=1", "--seeds", "0"], "--seeds: must be at least 1"),
    ]
    for extra, message in cases:
        assert main(["sweep", str(spec), *extra, "--out", out]) == 2, extra
        assert message in capsys.readouterr().err, extra
    assert main(["sweep", str(tmp_path / "missing.yaml"), "--param", "router.temperature=1", "--out", out]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was written for a bad sweep
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPathError, match="is a regular file"):
        run_sweep(spec, {"router.temperature": ["1"]}, tmp_path / "file")
