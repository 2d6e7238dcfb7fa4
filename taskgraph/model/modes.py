"""Running a module in inference mode for a while: eval (inference routing, no sampling, no dropout), then
back to whatever mode each submodule was in."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def inference_mode_of(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode (inference routing: no sampling) and restore its mode after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
