"""The graph router's contrastive prior (``router.contrast``): pairs with low R are pushed apart in routing."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch.testing import assert_close

from taskgraph.routing import GraphRouter, GraphRouterParams
from taskgraph.routing.graph_priors import contrast_penalty, smoothness_penalty
from taskgraph.spec.models import RelationsSpec, RouterSpec

GROUPS = ("a", "b", "c", "d")  # a, b related; c, d related; a / b unrelated to c / d


def one_hot_weights(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows).view(len(rows), 1, 1, -1)  # [T, L=1, H=1, K]


def test_penalty_on_hand_made_tensors():
    w = one_hot_weights([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    index = torch.tensor([[0, 0, 0], [1, 2, 3]])
    r = torch.tensor([0.0, 0.25, 1.0])
    # ‖Δw‖²: (0,1) = 2 ≥ m: apart enough; (0,2) = 0: short by m; (0,3) = 0.5: but R = 1, so no push
    # mean over the 3 pairs of (1 − R)·max(0, m − d) at m = 1: (0 + 0.75·1 + 0) / 3
    assert float(contrast_penalty(w, index, r, 2.0, 1.0)) == pytest.approx(2.0 * 0.75 / 3)
    assert float(contrast_penalty(w, index[:, :0], r[:0], 2.0, 1.0)) == 0.0
    # the mirror of smoothness: on these pairs smoothness pulls (0,1) and (0,3), contrast pushes (0,2)
    assert float(smoothness_penalty(w, index, r, 1.0)) == pytest.approx((0 * 2 + 0.25 * 0 + 1.0 * 0.5) / 3)


def test_its_gradient_pushes_an_unrelated_pair_apart():
    logits = torch.tensor([[0.1, 0.0], [0.0, 0.1]], requires_grad=True)  # two tasks routing almost alike
    w = logits.softmax(-1).view(2, 1, 1, 2)
    contrast_penalty(w, torch.tensor([[0], [1]]), torch.tensor([0.0]), 1.0, 0.5).backward()
    step = -logits.grad  # gradient descent's direction
    assert step[0, 0] > step[0, 1] and step[1, 1] > step[1, 0]  # each task towards the skill it already leans to


def router(contrast: float, seed: int = 0) -> GraphRouter:
    """Four tasks that start routing almost alike (their embeddings equal up to 1e-3), two declared groups."""
    declared = [("a", "b", 1.0), ("c", "d", 1.0)] + [(x, y, 0.0) for x in "ab" for y in "cd"]
    torch.manual_seed(seed)
    spec = RouterSpec(kind="graph", gnn={"hidden": 16}, smoothness=1.0, contrast=contrast, descriptions=False)
    r = GraphRouter(4, 2, 1, 4, spec, relations=RelationsSpec(declared=declared), task_names=list(GROUPS)).train()
    with torch.no_grad():
        r.task_embedding.copy_(r.task_embedding[:1] + 1e-3 * torch.randn_like(r.task_embedding))
    return r


def routing_distance(r: GraphRouter, i: int, j: int) -> float:
    with torch.no_grad():
        w = r.encode().weights  # [T, L, H, K]
    return float((w[i] - w[j]).pow(2).sum(-1).mean())


def test_regularizer_adds_the_contrast_term():
    r = router(contrast=0.7)
    r(torch.tensor([0, 2]))
    state = r._state
    without = r.regularizer()
    r(torch.tensor([0, 2]))
    state = r._state
    r.params = r.params.model_copy(update={"contrast": 0.0})
    expected = r.regularizer() + contrast_penalty(state.weights, state.relation_index, state.relation_weight, 0.7, 0.5)
    assert_close(without, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unrelated_pairs_are_pushed_to_the_margin(seed: int):
    """Only the routing terms are minimised (no task loss), from four tasks routing almost alike. The centred-cosine
    read-out already separates the declared groups with smoothness alone (between-group ‖Δw‖² 1.26–1.34 of 2 in
    these seeds); with the contrast at margin 1.8 every unrelated pair reaches the margin."""
    between = {}
    for contrast in (0.0, 5.0):
        r = router(contrast, seed)
        r.params = r.params.model_copy(update={"contrast_margin": 1.8})
        opt = torch.optim.Adam(r.parameters(), lr=3e-2)
        for _ in range(150):
            r(torch.arange(4))
            loss = r.regularizer()
            opt.zero_grad()
            loss.backward()
            opt.step()
        between[contrast] = min(routing_distance(r, i, j) for i in (0, 1) for j in (2, 3))
    assert between[5.0] > 1.7 > 1.5 > between[0.0]


def test_spec_bounds():
    assert GraphRouterParams().contrast == 0.0  # off by default: specs and checkpoints as before
    with pytest.raises(ValidationError):
        GraphRouterParams(contrast=-1.0)
    with pytest.raises(ValidationError):
        GraphRouterParams(contrast_margin=3.0)  # ‖Δw‖² never exceeds 2
