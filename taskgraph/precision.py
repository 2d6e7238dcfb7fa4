"""Precision of the figures that must not lose bits: a loss, a mean of hidden states, a similarity.

``at_least_fp32(x)`` raises a half-precision tensor (bf16, fp16) to float32 and leaves float32 and float64 as they are.
``x.float()`` would also *lower* a float64 computation to float32 halfway through, so a run in double precision
would round like one in single precision at that one step. The quality guard trains in float64 so that its figures
do not depend on which CPU rounded them; one such step would undo that.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["at_least_fp32"]


def at_least_fp32(x: Tensor) -> Tensor:
    """``x`` in float32 if its dtype is narrower (bf16, fp16, an integer or bool), else ``x`` itself (fp32, fp64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
