"""Attach a new task to a trained graph router from its description, examples or relations (no gradient step)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from taskgraph.data.planted_comp import held_out_tasks, planted_comp_spec
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel, find_model_dir
from taskgraph.spec import spec_from_dict
from taskgraph.train import train

TINY = {"skills": 6, "seq_len": 12, "seen": 10, "held_out": 3, "examples_per_task": 24, "steps": 6, "batch_size": 8}
FEATURES = ["free", "description", "examples", "relations"]
GEN = {"objective": "generate", "max_new_tokens": 4}


def comp_spec(**router: object) -> dict:
    spec = planted_comp_spec(seed=0, **TINY)
    spec["router"] = {"kind": "graph", **router}
    spec["training"]["eval_every"] = 100
    return spec


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    spec = comp_spec(features=FEATURES)
    run = tmp_path_factory.mktemp("attach") / "run"
    train(spec_from_dict(spec), run)
    return run, spec


def routing(model: TaskGraphModel, tasks: list[int]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.router(torch.tensor(tasks)).weights  # [U, L, H, K]


def test_free_alone_is_todays_router() -> None:
    """features: [free] builds the router of a spec without the key: the same parameters, the same draws."""
    plain, free = comp_spec(), comp_spec(features=["free"])
    torch.manual_seed(0)
    a = TaskGraphModel(spec_from_dict(plain)).router.state_dict()
    torch.manual_seed(0)
    b = TaskGraphModel(spec_from_dict(free)).router.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("side.") for k in a)


def test_training_fills_every_trained_tasks_side_blocks(trained: tuple[Path, dict]) -> None:
    run, _ = trained
    model = TaskGraphModel.from_pretrained(find_model_dir(run))
    side = model.router.side
    for kind in ("description", "examples", "relations"):
        block = side.block(kind)  # [T, F]
        assert block.abs().sum(1).gt(0).all(), kind
    descriptions = side.block("description")
    assert torch.cdist(descriptions, descriptions).fill_diagonal_(1.0).min() > 0  # every task's differs


def test_attached_task_routes_from_its_description_and_survives_save_and_load(
    trained: tuple[Path, dict], tmp_path: Path
) -> None:
    """docs/guide/adaptation.md's attach_task snippet, on a planted run (descriptions as token ids)."""
    run, spec = trained
    model = TaskGraphModel.from_pretrained(find_model_dir(run))
    seen = list(range(len(model.task_names)))
    before = routing(model, seen)
    new = held_out_tasks(spec)[0]
    generation = {"objective": "generate", "max_new_tokens": new["max_new_tokens"]}
    index = model.attach_task(new["name"], description=new["description_ids"], generation=generation, data=new["data"])
    assert index == len(seen)
    assert torch.allclose(routing(model, seen), before, atol=1e-6)  # no trained task's routing moves
    declared = [r for r in model.spec.relations.declared if new["name"] in r[:2]]
    assert declared and all(0 < w <= 1 for *_, w in declared)  # relations computed from the description
    after_attach = routing(model, [index])
    model.save_pretrained(tmp_path / "m")
    loaded = TaskGraphModel.from_pretrained(tmp_path / "m")
    assert torch.equal(routing(loaded, [index]), after_attach)
    assert loaded.spec.router.own_fields()["zero_shot"] == [new["name"]]


def test_a_different_description_routes_differently(trained: tuple[Path, dict]) -> None:
    run, spec = trained
    first, second = held_out_tasks(spec)[:2]
    rows = []
    for new in (first, second):
        model = TaskGraphModel.from_pretrained(find_model_dir(run))
        i = model.attach_task(
            new["name"],
            description=new["description_ids"],
            relations={"comp-00": 0.5},
            generation=GEN,
        )
        rows.append(routing(model, [i]))
    assert not torch.allclose(rows[0], rows[1], atol=1e-4)


def test_attach_refuses_what_the_router_cannot_read(trained: tuple[Path, dict]) -> None:
    run, _ = trained
    model = TaskGraphModel.from_pretrained(find_model_dir(run))
    with pytest.raises(ModelError, match="not a trained task"):
        model.attach_task("x", relations={"nope": 0.5}, generation=GEN)
    with pytest.raises(ModelError, match="nothing to route it from"):
        model.attach_task("x", generation=GEN)
    assert len(model.task_names) == 10  # nothing was added


def test_attach_needs_a_graph_router_and_the_features_it_reads(tmp_path: Path) -> None:
    poly = TaskGraphModel(spec_from_dict({**comp_spec(), "router": {"kind": "poly"}}))
    with pytest.raises(ModelError, match="graph router"):
        poly.attach_task("x", relations={"comp-00": 1.0})
    free = TaskGraphModel(spec_from_dict(comp_spec()))
    with pytest.raises(ModelError, match="reads no description"):
        free.attach_task("x", description=[1, 2, 3], generation=GEN)
    i = free.attach_task("x", relations={"comp-00": 1.0}, generation=GEN)  # today's zero-shot
    assert i == 10


def test_without_task_messages_a_tasks_node_reads_its_own_features_alone() -> None:
    """The no-edge ablation (router.task_messages: false): changing task 1's features leaves task 0's GNN output."""
    moved = {}
    for messages in (True, False):
        torch.manual_seed(0)
        model = TaskGraphModel(spec_from_dict(comp_spec(features=FEATURES, task_messages=messages)))
        with torch.no_grad():
            before = model.router.embed()[0]["task"][0]
            model.router.task_embedding[1] += 5.0
            moved[messages] = float((model.router.embed()[0]["task"][0] - before).abs().max())
    assert moved[False] == 0.0 < moved[True]
