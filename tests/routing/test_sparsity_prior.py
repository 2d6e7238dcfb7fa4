"""The graph router's routing sparsity (``router.sparsity``): the normalised routing entropy as a loss term."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch.testing import assert_close

from taskgraph.routing import GraphRouter
from taskgraph.routing.graph_priors import entropy_penalty
from taskgraph.spec.models import RelationsSpec, RouterSpec
from taskgraph.spec.router_kinds import GraphRouterParams


def test_entropy_penalty_on_hand_made_weights():
    uniform = torch.full((2, 3, 1, 4), 0.25)  # [T, L, H, K]
    one_hot = torch.zeros(2, 3, 1, 4)
    one_hot[..., 1] = 1.0
    assert float(entropy_penalty(uniform, 0.3)) == pytest.approx(0.3)  # normalised: uniform is 1
    assert float(entropy_penalty(one_hot, 0.3)) == pytest.approx(0.0)
    half = torch.tensor([0.5, 0.5, 0.0, 0.0]).expand(1, 1, 1, 4)  # two skills: ln 2 / ln 4
    assert float(entropy_penalty(half, 1.0)) == pytest.approx(math.log(2) / math.log(4))
    assert float(entropy_penalty(torch.ones(2, 3, 1, 1), 1.0)) == 0.0  # K = 1: nothing to choose


def test_entropy_penalty_sharpens_the_leading_skill():
    logits = torch.tensor([[0.3, 0.1, 0.0]], requires_grad=True)
    entropy_penalty(torch.softmax(logits, -1)[:, None, None, :], 1.0).backward()
    step = -logits.grad  # gradient descent's direction
    assert step[0, 0] > 0 > step[0, 2]  # the leading skill gains, the last loses


def test_regularizer_adds_the_sparsity_term():
    torch.manual_seed(0)
    declared = RelationsSpec(declared=[("a", "b", 1.0), ("c", "d", 0.0)])
    spec = RouterSpec(kind="graph", gnn={"hidden": 16}, sparsity=0.4, descriptions=False)
    r = GraphRouter(4, 2, 1, 4, spec, relations=declared, task_names=list("abcd")).train()
    r(torch.tensor([0, 2]))
    state = r._state
    with_term = r.regularizer()
    r(torch.tensor([0, 2]))
    r.params = r.params.model_copy(update={"sparsity": 0.0})
    assert_close(with_term, r.regularizer() + entropy_penalty(state.weights, 0.4))


def test_sparsity_is_off_by_default_and_not_negative():
    assert GraphRouterParams().sparsity == 0.0
    with pytest.raises(ValidationError):
        GraphRouterParams(sparsity=-0.1)
