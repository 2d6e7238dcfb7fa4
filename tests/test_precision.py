"""taskgraph.precision: half precision is raised to float32, float32 and float64 are kept."""

from __future__ import annotations

import pytest
import torch

from taskgraph.precision import at_least_fp32


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.int64, torch.bool])
def test_narrower_dtypes_rise_to_float32(dtype: torch.dtype):
    x = torch.ones(3, dtype=dtype)
    assert at_least_fp32(x).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64_are_kept_as_they_are(dtype: torch.dtype):
    x = torch.tensor([1.0 + 1e-12, 2.0], dtype=dtype)
    assert at_least_fp32(x) is x  # no copy, and a float64 loss keeps its bits
