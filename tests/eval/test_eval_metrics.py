"""Metrics against numbers computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from taskgraph.metrics import (
    LayerShape,
    accuracy,
    active_adapter_fraction,
    adapter_flops_per_token,
    confusion_matrix,
    layer_shapes,
    macro_f1,
    per_class_scores,
)

PRED = [0, 0, 1, 1, 2, 0]
TRUE = [0, 1, 1, 1, 2, 2]


def test_accuracy_and_confusion():
    assert accuracy(PRED, TRUE) == pytest.approx(4 / 6)
    assert accuracy(torch.tensor(PRED), torch.tensor(TRUE)) == pytest.approx(4 / 6)
    assert accuracy([], []) == 0.0
    cm = confusion_matrix(PRED, TRUE, 4)  # rows: true class, columns: predicted
    assert cm.tolist() == [[1, 0, 0, 0], [1, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_macro_f1_by_hand():
    # class 0: tp 1 fp 2 fn 0 -> F1 2/4; class 1: tp 2 fp 0 fn 1 -> 4/5; class 2: tp 1 fp 0 fn 1 -> 2/3;
    # class 3: neither present nor predicted -> left out of the mean
    scores = per_class_scores(confusion_matrix(PRED, TRUE, 4))
    assert scores.tp == [1, 2, 1, 0] and scores.fp == [2, 0, 0, 0] and scores.fn == [0, 1, 1, 0]
    assert scores.f1[:3] == pytest.approx([0.5, 0.8, 2 / 3]) and scores.counted == [True, True, True, False]
    assert scores.precision[:3] == pytest.approx([1 / 3, 1.0, 1.0]) and scores.recall[:3] == pytest.approx(
        [1, 2 / 3, 0.5]
    )
    assert macro_f1(PRED, TRUE, 4) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(PRED, TRUE, 3) == macro_f1(PRED, TRUE, 4)  # an unused class changes nothing


def test_macro_f1_edge_cases():
    assert macro_f1([0, 0], [0, 1], 3) == pytest.approx((2 / 3 + 0.0) / 2)  # class 1 present, never predicted: 0
    assert macro_f1([1, 1], [0, 0], 2) == 0.0  # all wrong
    assert macro_f1([2, 0, 1], [2, 0, 1], 3) == 1.0
    assert macro_f1([], [], 3) == 0.0
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([3], [0], 3)
    with pytest.raises(ValueError, match="length"):
        accuracy([0, 1], [0])


def test_active_fraction_and_flops_by_hand():
    gates = torch.tensor([[1.0, 0.0], [0.5, 0.25], [0.0, 0.0]])  # [T=3, L=2]
    shapes = [LayerShape(64, 64, 4), LayerShape(64, 32, 2)]  # 2·4·128 = 1024, 2·2·96 = 384
    assert [s.flops_per_token for s in shapes] == [1024, 384]
    assert active_adapter_fraction(gates).tolist() == pytest.approx([0.5, 0.375, 0.0])
    assert adapter_flops_per_token(gates, shapes).tolist() == [1024.0, 1408.0, 0.0]
    with pytest.raises(ValueError, match="layers"):
        adapter_flops_per_token(gates, shapes[:1])


def test_layer_shapes_reads_adapted_layers():
    plain = SimpleNamespace(in_features=32, out_features=16, rank=4, linearized=False)
    linear = SimpleNamespace(in_features=32, out_features=32, rank=4, linearized=True)  # runs rank 2r
    assert layer_shapes([("a", plain), ("b", linear)]) == [LayerShape(32, 16, 4), LayerShape(32, 32, 8)]
