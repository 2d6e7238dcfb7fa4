"""The core of few-shot tasks: routers take a learned row, inventories grow, the spec rebuilds the model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.routing import MHRMuRouter, PolyRouter, PrivateRouter, SharedRouter
from taskgraph.spec import Spec
from taskgraph.spec.models import RouterSpec
from tests.adapt.conftest import perturb, small_planted, tokens

OLD = torch.arange(8)  # the 8 trained tasks of small_planted


def model_for(router: str, heads: int = 1, seed: int = 0) -> TaskGraphModel:
    torch.manual_seed(seed)
    model = TaskGraphModel(Spec.model_validate(small_planted(router, heads=heads)))
    perturb(model)
    return model.eval()


def test_poly_new_row_is_drawn_as_at_training_start_and_old_rows_stay():
    torch.manual_seed(0)
    router = PolyRouter(3, 2, 1, 4, RouterSpec(kind="poly")).eval()
    before = router.logits.detach().clone()
    assert router.add_task_to_learn() == 3 and router.num_tasks == 4 and router.skills == 4
    assert torch.equal(router.logits[:3], before)
    row = router.logits[3]
    assert row.abs().max() <= 1e-3 and row.std() > 0  # U(-1e-3, 1e-3)
    assert router.task_parameters(3)[0][2].reshape(-1).tolist() == [False, False, False, True]


def test_poly_own_skill_is_exactly_one_hot_for_its_owner_and_zero_for_everyone_else():
    torch.manual_seed(0)
    router = PolyRouter(3, 2, 1, 4, RouterSpec(kind="poly")).eval()
    old = router(torch.arange(3)).weights
    new = router.add_task_to_learn(own_skill=True)
    assert (new, router.skills, tuple(router.logits.shape)) == (3, 5, (4, 2, 1, 5))
    for training in (False, True):  # relaxed-Bernoulli samples too
        router.train(training)
        w = router(torch.arange(4)).weights  # [4, L, H, 5]
        assert torch.equal(w[3], torch.tensor([0.0, 0, 0, 0, 1]).expand(2, 1, 5))
        assert torch.equal(w[:3, ..., 4], torch.zeros(3, 2, 1))
    router.eval()
    assert_close(router(torch.arange(3)).weights[..., :4], old, rtol=0, atol=1e-7)
    later = router.add_task_to_learn()  # a later task never routes to the owned skill
    assert torch.isneginf(router.logits[later, ..., 4]).all() and bool(
        torch.isfinite(router.logits[later, ..., :4]).all()
    )
    assert float(router(torch.tensor([later])).weights[..., 4].detach().abs().max()) == 0.0
    router.train()
    z = router(torch.arange(5)).weights.sum()
    z.backward()
    assert bool(torch.isfinite(router.logits.grad).all())  # ±inf logits pass no NaN back


def test_routers_without_routing_take_a_task_and_refuse_an_own_skill():
    for cls, k in ((SharedRouter, 1), (MHRMuRouter, 4)):
        router = cls(3, 2, 1, k, RouterSpec(kind="shared" if k == 1 else "mhr-mu"))
        assert router.add_task_to_learn() == 3 and router.num_tasks == 4 and router.task_parameters(3) == []
        with pytest.raises(ModelError, match="own a skill"):
            router.add_task_to_learn(own_skill=True)
    private = PrivateRouter(3, 2, 1, 3, RouterSpec(kind="private"))
    assert private.add_task_to_learn() == 3 and private.skills == 4
    assert private(torch.tensor([3])).choice.flatten().tolist() == [3, 3]


def test_graph_router_refuses_a_learned_row_and_nothing_changes():
    model = model_for("graph")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ModelError, match="add_task_from_relations with relations"):
        model.add_task_to_learn("new", 3)
    assert model.task_names == [f"planted-{t}" for t in range(8)] and state.keys() == model.state_dict().keys()


@pytest.mark.parametrize("init", ["lora", "average"])
def test_private_inventory_grows_by_one_skill_initialised_as_asked(init):
    model = model_for("private")
    before = [(layer.A.detach().clone(), layer.B.detach().clone()) for _, layer in model.adapted]
    old_logits = model(tokens(), None, 2).logits
    index = model.add_task_to_learn("new", 4, skill_init=init)
    assert (
        index == 8
        and model.skills == 9
        and model.spec.adapters.skills == small_planted("private")["adapters"]["skills"]
    )
    for (_, layer), (a, b) in zip(model.adapted, before):
        assert layer.A.shape[1] == 9 and torch.equal(layer.A[:, :8], a) and torch.equal(layer.B[:, :8], b)
        if init == "average":
            assert_close(layer.A[:, 8], a.mean(1))
            assert_close(layer.B[:, 8], b.mean(1))
        else:
            assert torch.equal(layer.B[:, 8], torch.zeros_like(layer.B[:, 8]))
            bound = 1 / math.sqrt(layer.in_features)
            assert float(layer.A[:, 8].detach().abs().max()) <= bound
    assert torch.equal(model(tokens(), None, 2).logits[:, :4], old_logits[:, :4])
    with pytest.raises(ModelError, match="skill_init"):
        model.add_task_to_learn("other", 2, skill_init="zeros")


def test_own_skill_average_is_the_uniform_mixture_and_the_spec_counts_it():
    model = model_for("mhr", heads=2)
    uniform = torch.full((1, 2, 4), 0.25)  # [1, H, K]: what MHR-μ starts from
    expected = [layer._factors(uniform, None) for _, layer in model.adapted]
    model.add_task_to_learn(
        "new",
        3,
        own_skill=True,
        skill_init="average",
        family="counting",
        data={"source": "planted", "task": 9, "tasks": 10, "held_out": 2, "skills": 4},
    )
    assert model.spec.adapters.skills == 5 and model.skills == 5 and model.spec.tasks[-1].family == "counting"
    batch = model.router(torch.tensor([8]))
    for (_, layer), (a, b) in zip(model.adapted, expected):
        a_new, b_new = layer._factors(batch.weights[:, layer.index], None)
        assert_close(a_new, a, rtol=0, atol=1e-7)
        assert_close(b_new, b, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "router, heads, own",
    [
        ("poly", 1, False),
        ("poly", 1, True),
        ("mhr", 2, True),
        ("mhr-mu", 1, False),
        ("shared", 1, False),
        ("private", 1, False),
    ],
)
def test_save_and_from_pretrained_rebuild_an_adapted_model_exactly(tmp_path: Path, router, heads, own):
    model = model_for(router, heads)
    ids = tokens()
    model.add_task_to_learn("new", 3, own_skill=own, skill_init="average" if own else "lora")
    perturb(model, seed=5)  # the new row, skill and head as training would leave them (old ones move too)
    model.save_pretrained(tmp_path / "m")
    loaded = TaskGraphModel.from_pretrained(tmp_path / "m").eval()
    assert loaded.task_names[-1] == "new" and loaded.num_labels[-1] == 3 and loaded.skills == model.skills
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    for task in ("new", 3):
        assert torch.equal(loaded(ids, None, task).logits, model(ids, None, task).logits)


def test_model_features_are_what_the_heads_read():
    model = model_for("poly")
    ids = tokens()
    pooled = model.features(ids, None, 4)  # [B, D]
    assert pooled.shape == (5, 32)
    assert torch.equal(model.heads.heads[4](pooled), model(ids, None, 4).logits[:, : model.num_labels[4]])
