"""The static routers: shared, private, poly, mhr, mhr-mu."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing import MHRMuRouter, MHRRouter, PolyRouter, PrivateRouter, SharedRouter, poly_weights
from taskgraph.spec.models import RouterSpec

T, L = 5, 3
TASKS = torch.tensor([0, 2, 4])


def build(kind: str, heads: int = 1, skills: int = 4, temperature: float = 1.0):
    cls = ROUTERS.get(kind).obj
    k = cls.inventory_size(skills, T)
    return cls(T, L, heads, k, RouterSpec(kind=kind, temperature=temperature))


def test_builtin_kinds_are_registered_with_their_own_parameters():
    from taskgraph.routing.poly import PolyRouterParams

    for kind, cls, params in [
        ("shared", SharedRouter, None),
        ("private", PrivateRouter, None),
        ("poly", PolyRouter, PolyRouterParams),
        ("mhr", MHRRouter, PolyRouterParams),
        ("mhr-mu", MHRMuRouter, None),
    ]:
        entry = ROUTERS.get(kind)
        assert entry.obj is cls
        assert entry.params is params


def test_inventory_size_decides_k():
    assert SharedRouter.inventory_size(8, T) == 1
    assert PrivateRouter.inventory_size(8, T) == T
    assert PolyRouter.inventory_size(8, T) == 8
    assert MHRRouter.inventory_size(8, T) == 8
    assert MHRMuRouter.inventory_size(8, T) == 8


def test_shared_routes_every_task_to_its_single_skill():
    routing = build("shared", heads=2)(TASKS)
    assert routing.weights.shape == (3, L, 2, 1)
    assert torch.equal(routing.weights, torch.ones(3, L, 2, 1))
    assert torch.equal(routing.gates, torch.ones(3, L))
    assert routing.choice is None
    assert list(build("shared").parameters()) == []


def test_private_is_identity_routing_with_choice():
    routing = build("private", heads=2)(TASKS)
    assert routing.weights.shape == (3, L, 2, T)
    assert torch.equal(routing.choice, TASKS[:, None, None].expand(3, L, 2))
    expected = torch.zeros(3, L, 2, T)
    for row, t in enumerate(TASKS.tolist()):
        expected[row, :, :, t] = 1.0
    assert torch.equal(routing.weights, expected)
    assert torch.equal(routing.gates, torch.ones(3, L))
    assert list(build("private").parameters()) == []


def test_mhr_mu_is_the_uniform_mix():
    routing = build("mhr-mu", heads=2, skills=4)(TASKS)
    assert torch.equal(routing.weights, torch.full((3, L, 2, 4), 0.25))
    assert torch.equal(routing.gates, torch.ones(3, L))
    assert list(build("mhr-mu").parameters()) == []


def test_static_routers_check_their_inventory_size():
    with pytest.raises(ModelError, match="one skill per layer"):
        SharedRouter(T, L, 1, 4, RouterSpec(kind="shared"))
    with pytest.raises(ModelError, match="one skill per task"):
        PrivateRouter(T, L, 1, 4, RouterSpec(kind="private"))


def test_poly_logits_init_and_eval_weights_are_the_normalised_sigmoid():
    torch.manual_seed(0)
    router = build("poly", skills=4).eval()
    assert router.logits.shape == (T, L, 1, 4)
    assert router.logits.abs().max() <= 1e-3 and router.logits.std() > 0
    routing = router(TASKS)
    z = torch.sigmoid(router.logits[TASKS])
    assert_close(routing.weights, z / z.sum(-1, keepdim=True))
    assert_close(routing.weights.sum(-1), torch.ones(3, L, 1))
    assert torch.equal(routing.gates, torch.ones(3, L))


def test_poly_training_sample_differs_from_eval_and_is_seeded():
    torch.manual_seed(0)
    router = build("poly", skills=4)
    with torch.no_grad():
        router.logits.normal_()
    router.eval()
    eval_w = router(TASKS).weights
    assert torch.equal(eval_w, router(TASKS).weights)  # inference is deterministic
    router.train()
    torch.manual_seed(1)
    sample_a = router(TASKS).weights
    torch.manual_seed(1)
    sample_b = router(TASKS).weights
    sample_c = router(TASKS).weights
    assert torch.equal(sample_a, sample_b)
    assert not torch.allclose(sample_a, sample_c)
    assert (sample_a - eval_w).abs().max() > 0.05
    assert_close(sample_a.sum(-1), torch.ones(3, L, 1))
    assert (sample_a >= 0).all()


def test_poly_weights_sample_matches_torch_relaxed_bernoulli():
    logits = torch.randn(4, 6)
    torch.manual_seed(3)
    ours = poly_weights(logits, temperature=0.5, sample=True)
    torch.manual_seed(3)
    z = torch.distributions.RelaxedBernoulli(torch.tensor(0.5), logits=logits).rsample()
    assert_close(ours, z / (z.sum(-1, keepdim=True) + 1e-12))


def test_poly_temperature_sharpens_the_sample():
    logits = torch.zeros(2000, 4)
    torch.manual_seed(0)
    hot = poly_weights(logits, temperature=5.0, sample=True)
    cold = poly_weights(logits, temperature=0.1, sample=True)
    assert cold.max(-1).values.mean() > hot.max(-1).values.mean() + 0.2


def test_poly_refuses_heads_and_mhr_takes_them():
    with pytest.raises(ModelError, match="use kind: mhr"):
        build("poly", heads=4)
    routing = build("mhr", heads=4, skills=3).eval()(TASKS)
    assert routing.weights.shape == (3, L, 4, 3)


def test_mhr_with_one_head_equals_poly():
    torch.manual_seed(7)
    poly = build("poly", skills=4)
    torch.manual_seed(7)
    mhr = build("mhr", heads=1, skills=4)
    assert torch.equal(poly.logits, mhr.logits)
    for mode in ("train", "eval"):
        getattr(poly, mode)(), getattr(mhr, mode)()
        torch.manual_seed(11)
        a = poly(TASKS)
        torch.manual_seed(11)
        b = mhr(TASKS)
        assert torch.equal(a.weights, b.weights) and torch.equal(a.gates, b.gates)


def test_mhr_heads_route_independently():
    torch.manual_seed(0)
    router = build("mhr", heads=2, skills=4).eval()
    with torch.no_grad():
        router.logits[:, :, 0] = torch.tensor([5.0, -5.0, -5.0, -5.0])
        router.logits[:, :, 1] = torch.tensor([-5.0, -5.0, -5.0, 5.0])
    w = router(TASKS).weights
    assert (w[..., 0, 0] > 0.95).all() and (w[..., 1, 3] > 0.95).all()


def test_poly_gradient_reaches_only_the_routed_rows():
    router = build("poly", skills=4)
    weights = router(TASKS).weights
    (weights * torch.randn_like(weights)).sum().backward()
    grad = router.logits.grad
    assert grad[TASKS].abs().sum() > 0
    assert grad[[1, 3]].abs().sum() == 0


def test_repr_names_the_sizes():
    text = repr(build("poly", skills=4, temperature=0.5))
    assert "tasks=5" in text and "layers=3" in text and "skills=4" in text and "temperature=0.5" in text
    assert "skills=5" in repr(build("private"))
