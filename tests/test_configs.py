"""Every example spec validates and opens with a comment saying how to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.cli import main
from taskgraph.spec import load_spec

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_examples():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_validates_and_says_how_to_run(path):
    spec = load_spec(path)
    assert spec.tasks
    first = path.read_text().splitlines()[0]
    assert first.startswith("#")
    assert "taskgraph " in path.read_text().split("\nname:")[0]


NEEDS_USER_DATA = {"minilm-text.yaml"}  # templates for the user's own files: their data is not shipped


def test_cli_validates_them_all_as_train_would(capsys):
    """Every shipped config passes train's own checks (model built, data read); a template for the user's files
    fails exactly on those files, each named."""
    ready = [p for p in CONFIGS if p.name not in NEEDS_USER_DATA]
    assert main(["validate", *map(str, ready)]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(ready)
    for path in (p for p in CONFIGS if p.name in NEEDS_USER_DATA):
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        files = [t.data.own_fields().get("path") for t in load_spec(path).tasks]
        assert all(f"{f!r}" in err and "does not exist" in err for f in files), err


ROUTER_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "routers").glob("*.yaml"))


@pytest.mark.parametrize("path", ROUTER_CONFIGS, ids=[p.stem for p in ROUTER_CONFIGS])
def test_router_configs_train_exactly_the_planted_bench_cell(path):
    """configs/routers/<kind>.yaml is the bench's seed-0 cell for that router at the lr written in it: the same
    data, model, adapters, router and optimisation (only how often it validates / checkpoints may differ)."""
    from benchmarks.quality.planted_suites import planted_suite
    from benchmarks.quality.suites import PLANTED_BUDGET
    from taskgraph.spec import Spec

    config = load_spec(path)
    assert config.router.kind == path.stem
    cell = Spec.model_validate(planted_suite(PLANTED_BUDGET).cell_spec(path.stem, config.training.lr.adapters, 0))
    for section in ("model", "adapters", "router", "relations", "tasks"):
        assert getattr(config, section) == getattr(cell, section), section
    keep = {"eval_every", "checkpoint_every", "keep_checkpoints"}
    mine, theirs = (s.training.model_dump(exclude=keep) for s in (config, cell))
    assert mine == theirs


@pytest.mark.parametrize("path", ROUTER_CONFIGS, ids=[p.stem for p in ROUTER_CONFIGS])
def test_router_configs_train_at_the_rate_the_committed_planted_record_chose(path):
    """The lr in configs/routers/<kind>.yaml is the one the planted suite's committed record chose for the router
    (mean validation over the selection seeds): re-measure, then update the record and the config together."""
    import json

    record = json.loads((Path(__file__).resolve().parents[1] / "benchmarks/results/quality-planted.json").read_text())
    config = load_spec(path)
    assert config.training.lr.adapters == config.training.lr.heads == record["chosen_lr"][path.stem]
