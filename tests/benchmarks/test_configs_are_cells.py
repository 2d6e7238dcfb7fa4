"""The example configs that are benchmark cells: configs/routers/<kind>.yaml is the planted quality suite's seed-0
cell of its router, at the rate the committed record chose; configs/merge/llora-task.yaml a merge-bench cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.spec import load_spec

ROUTER_CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "routers").glob("*.yaml"))


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

    record = json.loads((Path(__file__).resolve().parents[2] / "benchmarks/results/quality-planted.json").read_text())
    config = load_spec(path)
    assert config.training.lr.adapters == config.training.lr.heads == record["chosen_lr"][path.stem]


def test_the_llora_config_is_the_merge_bench_cell():
    """configs/merge/llora-task.yaml trains exactly the planted merge bench's seed-0 L-LoRA cell of planted-0."""
    from benchmarks.merging.suites import planted_merge_suite
    from taskgraph.spec import Spec, load_spec

    config = load_spec(Path(__file__).resolve().parents[2] / "configs" / "merge" / "llora-task.yaml")
    cell = Spec.model_validate(planted_merge_suite().single_spec("planted-0", "llora", config.training.lr.adapters, 0))
    assert config == cell
