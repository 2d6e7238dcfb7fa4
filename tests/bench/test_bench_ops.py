"""bench speed --ops: the operation counter, and what the fused routed path promises in operations; bench infer."""

from __future__ import annotations

import pytest
import torch

from taskgraph.bench import ops
from taskgraph.bench.inference import InferSettings, render_infer, run_infer_bench
from taskgraph.bench.rows import Shape


def test_the_counter_counts_every_op_and_views_apart():
    x, y = torch.randn(3, 4), torch.randn(4, 5, requires_grad=True)
    with ops.OpCounter() as counter:
        ((x @ y).t() + 1).sum().backward()
    assert counter.ops["aten.mm"] >= 2 and counter.ops["aten.t"] >= 1  # forward and the weight gradient
    assert counter.views >= 1 and counter.kernels == counter.total - counter.views


@pytest.fixture
def four_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ops.MODELS, "tiny-4", dict(ops.MODELS["tiny"], num_hidden_layers=4))
    monkeypatch.setitem(ops.TITLES, "tiny-4", "tiny BERT, 4 layers")


def test_routing_adds_operations_that_grow_with_neither_tasks_nor_layers(four_layers):
    """The fused path: the excess over PEFT LoRA is the same at T = 3 and T = 100 (U = 3) and with 8 adapted modules
    instead of 4 — a routed layer costs no more operations than a PEFT LoRA layer; routing is a fixed cost."""
    torch.set_num_threads(1)
    settings = ops.OpsSettings(
        models=("tiny", "tiny-4"),
        cases=((3, 3), (100, 3)),
        batch=8,
        mhr_heads=2,
        shape=Shape(batch=8, seq=8),
        routers=("poly", "private", "mhr"),
        peft_poly=False,
    )
    result = ops.run_ops_bench(settings)
    excess = {(t["model"], t["row"]): t for t in result["excess"]}
    for router in ("taskgraph poly", "taskgraph private", "taskgraph mhr (H = 2)"):
        small, large = excess[("tiny", router)], excess[("tiny-4", router)]
        assert small["flat"] and large["flat"], (router, small["excess"], large["excess"])
        assert large["excess"][0] <= small["excess"][0], (router, small["excess"], large["excess"])
    markdown = ops.render_ops(result)
    assert "| taskgraph poly |" in markdown and "flat in T and U" in markdown


def test_infer_bench_runs_every_configuration():
    result = run_infer_bench(
        InferSettings(model="tiny", tasks=2, texts=4, seq=8, batch=4, rounds=2, warmup=0, threads=1)
    )
    assert set(result["rows"]) == {"mixed", "per-task", "fold", "prefolded"}
    assert all(row["examples_per_s"] > 0 for row in result["rows"].values())
    assert result["rows"]["mixed"]["time_vs_mixed"]["median"] == pytest.approx(1.0)
    assert "mixed-task batches" in render_infer(result)
