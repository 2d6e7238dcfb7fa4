"""The phase-2 head: a deterministic L2 logistic regression that reaches its optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from taskgraph.adapt.head_fit import fit_head, objective


def blobs(n: int = 30, d: int = 6, c: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c  # [N]
    centres = torch.randn(c, d, generator=gen) * 2  # [C, D]
    x = centres[y] + torch.randn(n, d, generator=gen) + torch.tensor([5.0] + [0.0] * (d - 1))  # [N, D], off-centre
    return x * torch.linspace(0.1, 10, d), y  # very different scales per dimension


def test_identical_features_give_an_identical_head():
    x, y = blobs()
    w1, b1 = fit_head(x, y, 3)
    w2, b2 = fit_head(x.clone(), y.clone(), 3)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert w1.shape == (3, 6) and b1.shape == (3,) and w1.dtype == torch.float64


def test_it_reaches_the_optimum_of_its_objective():
    x, y = blobs()
    w, b = fit_head(x, y, 3)
    xd = x.double()

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(theta, requires_grad=True)
        loss = objective(xd, y, t[:18].view(3, 6), t[18:])
        loss.backward()
        return float(loss.detach()), t.grad.numpy()

    ref = minimize(f, np.zeros(21), jac=True, method="L-BFGS-B", options={"maxiter": 5000, "gtol": 1e-10})
    ours = float(objective(xd, y, w, b))
    assert ours == pytest.approx(ref.fun, rel=1e-6, abs=1e-6)
    assert ours <= float(objective(xd, y, w * 1.05, b)) and ours <= float(objective(xd, y, w, b + 0.1))


def test_constant_dimensions_get_zero_weight_and_separable_data_is_fit():
    x, y = blobs(d=4)
    x = torch.cat([x, torch.full((30, 1), 7.0)], dim=1)  # [N, 5], the last dim constant over the shots
    w, b = fit_head(x, y, 3)
    assert torch.equal(w[:, 4], torch.zeros(3, dtype=torch.float64))
    assert float(((x.double() @ w.T + b).argmax(1) == y).float().mean()) == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_head(torch.randn(4, 2), torch.tensor([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="features"):
        fit_head(torch.randn(4, 2), torch.tensor([0, 1]), 2)
