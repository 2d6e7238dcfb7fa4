"""Phase 2 of every adaptation mode: the new task's head, refit from scratch on frozen features.

Every mode (full, routing, mhr-mu, zero-shot) ends the same way, so modes differ only in routing and
adapters: the shots go through the adapted model in eval mode (inference routing, no dropout), their
pooled vectors are the features, and :func:`fit_head` fits an L2-regularised multinomial logistic
regression on them with one fixed, deterministic procedure:

- standardise the features with the shots' mean and standard deviation (a dimension that is constant
  over the shots is dropped: its weight is 0);
- minimise ``Σ_n CE(W x̃_n + b, y_n) + ½ λ ‖W‖²`` (λ = 1: scikit-learn's ``LogisticRegression(C=1)``
  objective; the bias is not penalised) from ``W = 0, b = 0`` with L-BFGS (strong-Wolfe line search,
  at most ``iterations`` iterations), in float64 on the CPU, whatever device the model is on;
- map the weights back to the raw features: ``W_raw = W / σ``, ``b_raw = b − W_raw μ``.

Identical features and labels give an identical head, bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from taskgraph.data import TaskData, task_batches
from taskgraph.model import TaskGraphModel
from taskgraph.model.modes import inference_mode_of

L2 = 1.0  # λ: the ½‖W‖² weight against the summed cross-entropy (scikit-learn's C = 1)
ITERATIONS = 100  # L-BFGS iterations at most
CONSTANT = 1e-6  # a dimension whose std is below this share of the largest std is constant over the shots


def fit_head(
    features: Tensor, labels: Tensor, num_labels: int, *, l2: float = L2, iterations: int = ITERATIONS
) -> tuple[Tensor, Tensor]:
    """L2-regularised multinomial logistic regression on standardised features (module docstring).

    Args:
        features: ``[N, D]`` pooled vectors of the shots.
        labels: ``[N]`` long labels in ``[0, num_labels)``.
        num_labels: C.
        l2: λ, the weight of ``½‖W‖²`` against the summed cross-entropy. (default: ``1.0``)
        iterations: L-BFGS iterations at most. (default: ``100``)

    Returns:
        ``(weight [C, D], bias [C])`` in float64 on the CPU, for the raw (unstandardised) features.
    """
    x = features.detach().to("cpu", torch.float64)  # [N, D]
    y = labels.detach().to("cpu", torch.long).reshape(-1)  # [N]
    if x.dim() != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"fit_head: features [N, D] and labels [N] with N ≥ 1, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if int(y.min()) < 0 or int(y.max()) >= num_labels:
        raise ValueError(f"fit_head: labels must lie in [0, {num_labels}), got {int(y.min())}..{int(y.max())}")
    mean = x.mean(0)  # [D]
    std = x.std(0, unbiased=False)  # [D]
    keep = std > CONSTANT * std.max().clamp_min(torch.finfo(torch.float64).tiny)  # [D]
    scale = torch.where(keep, std, torch.ones_like(std))  # [D]
    z = torch.where(keep, (x - mean) / scale, torch.zeros_like(x))  # [N, D] standardised
    weight = torch.zeros(num_labels, x.shape[1], dtype=torch.float64, requires_grad=True)  # [C, D]
    bias = torch.zeros(num_labels, dtype=torch.float64, requires_grad=True)  # [C]
    n = x.shape[0]
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=iterations,
        history_size=20,
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = (F.cross_entropy(z @ weight.T + bias, y, reduction="sum") + 0.5 * l2 * weight.pow(2).sum()) / n
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    w = (weight.detach() / scale) * keep  # [C, D] on the raw features
    b = bias.detach() - w @ mean  # [C]
    return w, b


def objective(features: Tensor, labels: Tensor, weight: Tensor, bias: Tensor, *, l2: float = L2) -> Tensor:
    """``Σ_n CE(W x_n + b, y_n) + ½ λ ‖W σ‖²``: the loss :func:`fit_head` minimises, in raw coordinates."""
    x = features.to(torch.float64)
    std = x.std(0, unbiased=False)  # [D]
    loss = F.cross_entropy(x @ weight.T + bias, labels.long(), reduction="sum")
    return loss + 0.5 * l2 * (weight * std).pow(2).sum()


@torch.no_grad()
def pooled_features(model: TaskGraphModel, data: TaskData, *, pad_id: int, batch_size: int = 64) -> Tensor:
    """``[N, D]`` the pooled vectors of one task's examples, in eval mode (inference routing, no dropout)."""
    out = []
    with inference_mode_of(model):
        for batch in task_batches(data, batch_size, pad_id):
            batch = batch.to(model.device)
            out.append(
                model.features(
                    batch.input_ids, batch.attention_mask, batch.task_ids, distinct=(batch.tasks, batch.inverse)
                )
                .float()
                .cpu()
            )  # [b, D]
    return torch.cat(out)  # [N, D]


def set_head(model: TaskGraphModel, task: int, weight: Tensor, bias: Tensor) -> None:
    """Copy a fitted ``(weight [C, D], bias [C])`` into the task's head (its dtype and device)."""
    head = model.heads.heads[task]
    if tuple(head.weight.shape) != tuple(weight.shape):
        raise ValueError(f"head of task {task} is {tuple(head.weight.shape)}, the fit is {tuple(weight.shape)}")
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight))
        head.bias.copy_(bias.to(head.bias))
