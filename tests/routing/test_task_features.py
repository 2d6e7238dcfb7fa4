"""Task node features from side information (taskgraph.routing.task_features, side_features, the graph router)."""

from __future__ import annotations

import pytest
import torch

from taskgraph.errors import ModelError
from taskgraph.routing.side_features import SideFeatures
from taskgraph.routing.task_features import (
    extend_spectral,
    nearest_relations,
    spectral_embedding,
    standardize_blocks,
)
from taskgraph.spec.models import RouterSpec


def test_standardize_blocks_centres_and_scales_each_block_on_the_trained_rows() -> None:
    side = torch.tensor([[1.0, 0.0, 10.0], [3.0, 2.0, 30.0], [5.0, 4.0, 50.0], [9.0, 9.0, 90.0]])  # 3 trained
    out = standardize_blocks(side, 3, [2, 1])
    assert torch.allclose(out[:3].mean(0), torch.zeros(3), atol=1e-6)
    assert torch.allclose(out[:3, :2].norm(dim=1).mean(), torch.tensor(1.0))
    assert torch.allclose(out[:3, 2:].norm(dim=1).mean(), torch.tensor(1.0))
    # the untrained row is read with the trained rows' centre and scale: block 2 is x/10 of block-1's first column
    assert torch.allclose(out[3, 2], (torch.tensor(90.0) - 30.0) / 20 * 1.5)


def test_spectral_embedding_separates_two_communities_and_is_sign_fixed() -> None:
    w = torch.zeros(6, 6)
    for group in ((0, 1, 2), (3, 4, 5)):
        for i in group:
            for j in group:
                if i != j:
                    w[i, j] = 1.0
    emb = spectral_embedding(w, 4)
    assert emb.shape == (6, 4)
    same, other = torch.dist(emb[0], emb[1]), torch.dist(emb[0], emb[3])
    assert same < 1e-5 < other
    assert torch.equal(spectral_embedding(w, 4), emb)  # deterministic
    assert torch.equal(spectral_embedding(w, 8)[:, 6:], torch.zeros(6, 2))  # columns past T are zero
    for col in range(2):  # each vector's largest entry is positive
        assert emb[emb[:, col].abs().argmax(), col] > 0


def test_extend_spectral_is_the_weighted_mean_of_neighbours() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    assert torch.allclose(extend_spectral(emb, {0: 0.75, 1: 0.25}), torch.tensor([0.75, 0.25]))


def test_nearest_relations_keeps_the_k_closest_with_a_positive_cosine() -> None:
    table = torch.tensor([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0], [0.0, 1.0]])
    near = nearest_relations(table, torch.tensor([1.0, 0.0]), 3)
    assert list(near) == [0, 1]  # task 3 has cosine 0, task 2 a negative one
    assert near[0] == pytest.approx(1.0) and near[1] == pytest.approx(0.8)


def test_side_features_fill_relations_and_append_rows() -> None:
    declared = [(0, 1, 1.0), (2, 3, 1.0), (0, 4, 0.5)]  # task 4 attached after training
    side = SideFeatures(["free", "description", "relations"], 5, 4, 3, 2, 8, declared)
    assert side.sizes == [3, 2] and side.values.shape == (5, 5)
    rel = side.block("relations")
    assert torch.allclose(rel[4], rel[0])  # an attached task's row: its neighbours' weighted mean
    side.set_block("description", torch.arange(15.0).reshape(5, 3))
    side.append({}, {1: 1.0})
    assert torch.allclose(side.block("description")[5], side.block("description")[:4].mean(0))  # unknown: the mean
    assert torch.allclose(side.block("relations")[5], rel[1])
    assert side().shape == (6, 8)
    with pytest.raises(ModelError, match="examples"):
        side.set_block("examples", torch.zeros(6, 3))
    with pytest.raises(ModelError, match="expected 3 values"):
        side.append({"description": torch.zeros(4)}, {})


def test_router_features_key_is_checked() -> None:
    from taskgraph.spec.models import Spec
    from tests.conftest import minimal_spec

    for bad in ([], ["free", "free"], ["words"]):
        with pytest.raises(ValueError, match="features"):
            Spec.model_validate(minimal_spec(router={"kind": "graph", "features": bad}))
    spec = RouterSpec.model_validate({"kind": "graph", "features": ["description", "relations"]})
    assert spec.own_fields()["features"] == ["description", "relations"]


def test_side_features_standardise_once_while_the_buffer_is_unchanged() -> None:
    side = SideFeatures(["description"], 4, 3, 2, 1, 5)
    side.set_block("description", torch.arange(8.0).reshape(4, 2))
    first = side.standard_values()
    assert side.standard_values() is first  # the same buffer, the same version: not recomputed
    assert torch.equal(first, standardize_blocks(side.values, 3, [2]))
    side.set_block("description", torch.ones(1, 2), [0])  # an in-place write: recomputed
    assert not torch.equal(side.standard_values(), first)
    assert torch.equal(side.standard_values(), standardize_blocks(side.values, 3, [2]))
    side.append({}, {})  # a new buffer
    assert side.standard_values().shape == (5, 2)
