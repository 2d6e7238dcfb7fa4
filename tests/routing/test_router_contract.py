"""The router contract (:mod:`taskgraph.routing.base`), run over every registered kind: build, route, save/load,
fold equals routed, a mixed-task batch equals per-task batches, and the router's own adaptation facts (a task added
after training gets a routing of its own and leaves every trained task's routing as it was).

A new router kind is picked up here by registering it: nothing in this file names the kinds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import ADAPT_MODES, AdaptationPlan, Router, Routing
from tests.model.conftest import _make_spec, _perturb

KINDS = ROUTERS.kinds()
HEADS = 2  # heads every kind is built with, where it takes more than one


def _heads(kind: str) -> int:
    try:
        ROUTERS.get(kind).obj(3, 2, HEADS, 3, _make_spec(router=kind).router)
    except (ModelError, TypeError):
        return 1
    return HEADS


def _model(kind: str) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(_make_spec(router=kind, heads=_heads(kind)))
    _perturb(model)
    return model.eval()


def _batch(n: int = 6, seq: int = 7, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 100, (n, seq), generator=gen)
    lengths = torch.randint(2, seq + 1, (n,), generator=gen)
    return ids, (torch.arange(seq)[None, :] < lengths[:, None]).long()


def test_the_registry_holds_the_built_in_kinds() -> None:
    assert {"shared", "private", "poly", "mhr", "mhr-mu", "graph"} <= set(KINDS)


def test_forward_is_abstract() -> None:
    class Incomplete(Router):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete(1, 1, 1, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_routing_has_the_contract_shapes_and_rows_sum_to_one(kind: str) -> None:
    model = _model(kind)
    router, spec = model.router, model.spec
    assert router.skills == ROUTERS.get(kind).obj.inventory_size(spec.adapters.skills, len(spec.tasks))
    tasks = torch.tensor([2, 0])
    with torch.no_grad():
        out = router(tasks)
    assert isinstance(out, Routing)
    u, layers, heads, skills = 2, model.num_layers, spec.adapters.splits, router.skills
    assert out.gates.shape == (u, layers) and out.weights.shape == (u, layers, heads, skills)
    assert bool(((out.gates >= 0) & (out.gates <= 1)).all()) and bool((out.weights >= 0).all())
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(u, layers, heads))
    assert torch.is_tensor(router.regularizer()) and router.regularizer().dim() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_gives_identical_logits(kind: str, tmp_path: Path) -> None:
    model = _model(kind)
    ids, mask = _batch()
    tasks = [0, 1, 2, 2, 1, 0]
    with torch.no_grad():
        before = model(ids, mask, tasks).logits
    model.save_pretrained(tmp_path / "m")
    loaded = TaskGraphModel.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.equal(loaded(ids, mask, tasks).logits, before)


@pytest.mark.parametrize("kind", KINDS)
def test_a_mixed_batch_equals_per_task_batches(kind: str) -> None:
    model = _model(kind)
    ids, mask = _batch()
    tasks = torch.tensor([0, 2, 1, 2, 0, 1])
    with torch.no_grad():
        mixed = model(ids, mask, tasks).logits
        for t in range(3):
            rows = (tasks == t).nonzero().flatten()
            alone = model(ids[rows], mask[rows], t).logits
            torch.testing.assert_close(mixed[rows], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_folded_equals_routed(kind: str) -> None:
    model = _model(kind)
    ids, mask = _batch(4)
    with torch.no_grad():
        for task, labels in (("alpha", 2), ("gamma", 5)):
            routed = model(ids, mask, task).logits[:, :labels]
            merged = model.merge_task(task)
            torch.testing.assert_close(merged(ids, mask), routed, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_adaptation_facts_live_on_the_router_class(kind: str) -> None:
    cls = ROUTERS.get(kind).obj
    assert cls.adapt_modes and set(cls.adapt_modes) <= set(ADAPT_MODES)
    for mode in cls.adapt_modes:
        assert isinstance(cls.adaptation_plan(mode), AdaptationPlan)
    for mode in set(ADAPT_MODES) - set(cls.adapt_modes):
        with pytest.raises(ModelError, match=f"not '{mode}'"):
            cls.adaptation_plan(mode)


@pytest.mark.parametrize("kind", KINDS)
def test_a_task_added_after_training_routes_on_its_own_and_changes_no_trained_task(kind: str) -> None:
    cls = ROUTERS.get(kind).obj
    for mode in cls.adapt_modes:
        plan = cls.adaptation_plan(mode)
        model = _model(kind)
        with torch.no_grad():
            before = model.router(torch.arange(3))
        if plan.add == "relations":
            index = model.add_task_from_relations("new", 4, relate={"alpha": 1.0, "beta": 0.5})
        else:
            index = model.add_task_to_learn("new", 4, own_skill=plan.own_skill, skill_init=plan.skill_init)
        assert index == 3 and model.task_names[-1] == "new" and model.num_labels[-1] == 4
        with torch.no_grad():
            after = model.router(torch.arange(4))
        k = before.weights.shape[-1]
        torch.testing.assert_close(after.weights[:3, ..., :k], before.weights, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(after.gates[:3], before.gates)
        assert after.weights.shape[0] == 4
        torch.testing.assert_close(after.weights[3].sum(-1), torch.ones(after.weights.shape[1:3]))
        if plan.routing:  # a plan that trains the new task's routing needs the entries that hold it
            assert model.router.task_parameters(3), (kind, mode)
        ids, mask = _batch(2)
        with torch.no_grad():
            assert model(ids, mask, "new").logits[:, :4].shape == (2, 4)
