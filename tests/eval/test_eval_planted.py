"""``evaluate_run`` end to end on tiny trained runs: planted (graph and poly routers) and family truth.

Each run trains a few dozen steps of a 1-layer BERT (seconds); the numbers checked are the
equivalences (the result equals the metric functions applied to the model's own routing and
relations), the conventions, and the CLI's sections and errors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from taskgraph.cli import main
from taskgraph.data import planted_spec, planted_universe
from taskgraph.data.planted import PlantedConfig
from taskgraph.eval import all_gates_open, evaluate_run, learned_relation_matrix
from taskgraph.metrics import allocation_precision, pair_auroc, random_allocation_precision, routing_cosine
from taskgraph.model import TaskGraphModel
from taskgraph.report.run_graph import learned_relations, learned_routing
from taskgraph.spec import Spec
from taskgraph.train import train
from tests.train.conftest import spec_dict

UNIVERSE = dict(
    seed=0,
    skills=6,
    tasks=6,
    held_out=0,
    skills_per_task=(2, 2),
    min_tasks_per_skill=2,
    seq_len=12,
    vocab_size=64,
    examples_per_task=60,
)
NEW_KEYS = {"ground_truth", "allocation", "relations", "gradient_alignment", "timing"}


def train_planted(folder: Path, router: str, steps: int = 40) -> Path:
    data = planted_spec(
        **UNIVERSE, hidden_size=32, num_layers=1, num_heads=2, rank=2, steps=steps, batch_size=16, router=router
    )
    if router == "graph":
        data["router"]["gate_threshold"] = 0.0  # gates stay open (else they may all close in 40 steps: no gradient)
    data["training"].update(
        {"eval_every": steps, "checkpoint_every": steps, "lr": {"adapters": 1e-2, "router": 1e-1, "heads": 1e-2}}
    )
    train(Spec.model_validate(data), folder / router)
    return folder / router


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("planted-eval")
    return {kind: train_planted(folder, kind) for kind in ("graph", "poly")}


@pytest.fixture(scope="module")
def graph_result(runs) -> dict:
    return evaluate_run(runs["graph"], timing_rounds=2)


def test_graph_run_has_every_section(runs, graph_result):
    r = graph_result
    assert set(r) >= NEW_KEYS | {
        "run",
        "model_dir",
        "which",
        "split",
        "router",
        "layers",
        "adapter_flops_per_token_all_open",
        "tasks",
        "mean",
    }
    assert r["ground_truth"] == "planted" and r["router"] == "graph" and len(r["tasks"]) == 6
    json.dumps(r, allow_nan=False)  # plain JSON

    model = TaskGraphModel.from_pretrained(runs["graph"] / "model")
    universe = planted_universe(PlantedConfig(**UNIVERSE))
    rows = [t.data.params.task for t in model.spec.tasks]
    incidence, related = universe.incidence[rows], universe.relations()[np.ix_(rows, rows)]
    routing = learned_routing(model)

    alloc = allocation_precision(routing.weights, incidence)  # K = 6 adapters, S = 6 skills
    assert r["allocation"] == {
        "precision": alloc.precision,
        "random": alloc.random,
        "per_layer_head": alloc.per_layer_head,
    }
    assert r["allocation"]["random"] == pytest.approx(2 / 6) == random_allocation_precision(incidence, 6)
    assert len(r["allocation"]["per_layer_head"]) == 2 and 0 <= r["allocation"]["precision"] <= 1  # query, value

    rel = r["relations"]
    assert rel["pairs"] == 15 and rel["positives"] == int(np.triu(related, 1).sum())
    dense = np.zeros((6, 6))
    names = model.task_names
    for x in learned_relations(model):
        dense[names.index(x.a), names.index(x.b)] = dense[names.index(x.b), names.index(x.a)] = x.weight
    assert rel["auroc"]["learned"] == pytest.approx(pair_auroc(dense, related))
    assert rel["auroc"]["routing_cosine"] == pytest.approx(
        pair_auroc(routing_cosine(routing.weights, routing.gates), related)
    )
    assert 0.3 < rel["auroc"]["random"] < 0.7
    assert len(rel["learned"]) == 15 and [x["weight"] for x in rel["learned"]] == sorted(
        (x["weight"] for x in rel["learned"]), reverse=True
    )
    assert np.array_equal(learned_relation_matrix(model)[0], dense)

    align = r["gradient_alignment"]
    cos = np.array(align["matrix"])
    assert align["tasks"] == names and cos.shape == (6, 6)
    assert np.allclose(cos, cos.T) and np.allclose(cos.diagonal(), 1.0) and (np.abs(cos) <= 1).all()
    assert rel["auroc"]["gradient_cosine"] == pytest.approx(pair_auroc(cos, related))
    assert align["mean_related"] == pytest.approx(cos[np.triu(related, 1)].mean())
    assert align["mean_unrelated"] == pytest.approx(cos[np.triu(~related, 1)].mean())

    timing = r["timing"]
    assert timing["rounds"] == 2 and timing["batches"] == 6 and timing["examples"] == 36  # 6 test rows per task
    assert timing["gated_ms"] > 0 and timing["ratio"] == pytest.approx(timing["gated_ms"] / timing["all_open_ms"])


def test_eval_is_deterministic_apart_from_timing(runs, graph_result):
    again = evaluate_run(runs["graph"], timing=False)
    for key in ("tasks", "allocation", "relations", "gradient_alignment"):
        assert again[key] == graph_result[key]
    assert again["timing"] is None


def test_task_filter_and_switches(runs, graph_result):
    r = evaluate_run(runs["graph"], tasks=["planted-3", "planted-1"], timing_rounds=1, alignment=False)
    assert list(r["tasks"]) == ["planted-1", "planted-3"]  # the run's task order
    assert r["tasks"]["planted-1"] == graph_result["tasks"]["planted-1"]
    assert r["mean"]["accuracy"] == pytest.approx(
        (r["tasks"]["planted-1"]["accuracy"] + r["tasks"]["planted-3"]["accuracy"]) / 2
    )
    assert r["allocation"] == graph_result["allocation"]  # the whole graph, whatever the filter
    assert r["relations"]["auroc"]["learned"] == graph_result["relations"]["auroc"]["learned"]
    assert r["gradient_alignment"] is None and r["relations"]["auroc"]["gradient_cosine"] is None
    assert r["timing"]["batches"] == 2


def test_poly_run_learns_no_relations(runs):
    r = evaluate_run(runs["poly"], timing=False, alignment=False)
    assert r["ground_truth"] == "planted"
    assert r["relations"]["learned"] is None and r["relations"]["auroc"]["learned"] is None
    assert r["relations"]["auroc"]["routing_cosine"] is not None
    assert 0 <= r["allocation"]["precision"] <= 1


def test_all_gates_open_replaces_gates_only(runs):
    model = TaskGraphModel.from_pretrained(runs["graph"] / "model").eval()
    model.router.threshold = 0.5  # trained with θ = 0 (never closed)
    with torch.no_grad():
        model.router.gate_out.bias.fill_(-50.0)  # every gate closed: the adapters are off
        ids, tasks = torch.randint(1, 64, (3, 12)), torch.tensor([0, 1, 2])
        closed = model(ids, None, tasks)
        with all_gates_open(model):
            opened = model(ids, None, tasks)
        after = model(ids, None, tasks)
    assert closed.routing.gates.sum() == 0 and torch.equal(opened.routing.gates, torch.ones_like(closed.routing.gates))
    assert torch.equal(opened.routing.weights, closed.routing.weights)
    assert not torch.equal(opened.logits, closed.logits) and torch.equal(after.logits, closed.logits)


def test_cli_sections_json_and_unknown_task(runs, tmp_path, capsys):
    from taskgraph.cli import eval_cmd
    from taskgraph.eval import TIMING_ROUNDS

    assert eval_cmd.TIMING_ROUNDS == TIMING_ROUNDS  # the CLI's default is the API's
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "eval",
                str(runs["graph"]),
                "--task",
                "planted-2",
                "--task",
                "planted-0",
                "--timing-rounds",
                "1",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    for piece in (
        "allocation precision:",
        "random routing",
        "relation AUROC vs planted truth",
        "learned R",
        "routing cosine",
        "gradient cosine",
        "random R",
        "top learned relations (10 of 15)",
        "gradient alignment",
        "related pairs",
        "timing (one batch per task, median of 1 rounds)",
    ):
        assert piece in text, piece
    result = json.loads(out.read_text())
    assert list(result["tasks"]) == ["planted-0", "planted-2"] and set(result) >= NEW_KEYS

    assert main(["eval", str(runs["poly"]), "--no-timing", "--no-alignment"]) == 0
    text = capsys.readouterr().out
    assert "timing: skipped" in text and "gradient alignment: skipped" in text
    assert "router poly learns no R" in text and "(gradient alignment skipped)" in text

    assert main(["eval", str(runs["graph"]), "--task", "planted-9"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'planted-9'" in err and "planted-5" in err and "Traceback" not in err


def test_family_truth_run(tmp_path, capsys):
    """Text tasks with families, graph router: relation AUROCs against same-family truth, no allocation."""
    data = spec_dict(tmp_path, steps=6, eval_every=6, checkpoint_every=6)
    data["router"] = {"kind": "graph"}
    for task, family in zip(data["tasks"], ("a", "b", "a")):  # sentiment, color, animal
        task["family"] = family
    data["relations"] = {"declared": [["color", "animal", 0.5]]}
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0
    r = evaluate_run(tmp_path / "run", timing_rounds=1)
    assert r["ground_truth"] == "family" and r["allocation"] is None
    rel = r["relations"]
    assert rel["pairs"] == 2 and rel["positives"] == 1  # color–animal declared: left out; sentiment–animal related
    weight = {(x["a"], x["b"]): x["weight"] for x in rel["learned"]}
    expected = 1.0 if weight[("sentiment", "animal")] > weight[("sentiment", "color")] else 0.0
    assert rel["auroc"]["learned"] == expected  # one positive, one negative pair
    assert [x["declared"] for x in rel["learned"] if (x["a"], x["b"]) == ("color", "animal")] == [True]
    assert r["gradient_alignment"]["mean_related"] == pytest.approx(r["gradient_alignment"]["matrix"][0][2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_eval_matches_cpu(runs, graph_result):
    """Every section on CUDA (gradient alignment once handed a CUDA tensor to numpy); scores equal the CPU's."""
    result = evaluate_run(runs["graph"], device="cuda", timing=False)
    assert result["tasks"].keys() == graph_result["tasks"].keys()
    for name, row in graph_result["tasks"].items():
        assert abs(result["tasks"][name]["accuracy"] - row["accuracy"]) <= 0.02
    np.testing.assert_allclose(
        result["gradient_alignment"]["matrix"], graph_result["gradient_alignment"]["matrix"], atol=1e-3
    )
