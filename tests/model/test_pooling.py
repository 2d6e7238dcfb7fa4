"""Pooling on hand-made tensors: right and left padding, all-padding rows."""

from __future__ import annotations

import pytest
import torch

from taskgraph.errors import ModelError
from taskgraph.model.pooling import first_token_pool, last_token_pool, mean_pool, pool

# hidden[b, s, :] = [10*b + s, -(10*b + s)]: every position is recognisable
HIDDEN = torch.tensor([[[10.0 * b + s, -(10.0 * b + s)] for s in range(4)] for b in range(2)])  # [2, 4, 2]
RIGHT = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
LEFT = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])


def test_mean_right_and_left_padding() -> None:
    assert torch.equal(mean_pool(HIDDEN, RIGHT), torch.tensor([[1.0, -1.0], [10.5, -10.5]]))
    assert torch.equal(mean_pool(HIDDEN, LEFT), torch.tensor([[2.0, -2.0], [12.5, -12.5]]))


def test_last_token_right_and_left_padding() -> None:
    assert torch.equal(last_token_pool(HIDDEN, RIGHT), torch.tensor([[2.0, -2.0], [11.0, -11.0]]))
    assert torch.equal(last_token_pool(HIDDEN, LEFT), torch.tensor([[3.0, -3.0], [13.0, -13.0]]))


def test_cls_is_first_real_token_right_and_left_padding() -> None:
    assert torch.equal(first_token_pool(HIDDEN, RIGHT), torch.tensor([[0.0, -0.0], [10.0, -10.0]]))
    assert torch.equal(first_token_pool(HIDDEN, LEFT), torch.tensor([[1.0, -1.0], [12.0, -12.0]]))


def test_no_padding_and_all_padding_rows() -> None:
    full = torch.ones(2, 4, dtype=torch.long)
    assert torch.equal(last_token_pool(HIDDEN, full), HIDDEN[:, -1])
    assert torch.equal(first_token_pool(HIDDEN, full), HIDDEN[:, 0])
    assert torch.equal(mean_pool(HIDDEN, full), HIDDEN.mean(dim=1))
    empty = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1]])
    assert torch.equal(mean_pool(HIDDEN, empty)[0], torch.zeros(2))  # no NaN from 0/0


def test_bool_mask_and_half_precision() -> None:
    out = mean_pool(HIDDEN.to(torch.bfloat16), RIGHT.bool())
    assert out.dtype == torch.bfloat16
    assert torch.equal(out.float(), torch.tensor([[1.0, -1.0], [10.5, -10.5]]))
    assert torch.equal(last_token_pool(HIDDEN, LEFT.bool()), last_token_pool(HIDDEN, LEFT))


def test_pool_by_name_and_unknown_kind() -> None:
    assert torch.equal(pool("last", HIDDEN, RIGHT), last_token_pool(HIDDEN, RIGHT))
    with pytest.raises(ModelError, match=r"unknown pooling 'max'.*\['cls', 'last', 'mean'\]"):
        pool("max", HIDDEN, RIGHT)
