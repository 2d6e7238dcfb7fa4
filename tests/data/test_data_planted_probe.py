"""Heads-only on the planted benchmark: a linear probe on a frozen random encoder stays at chance.

The probe is fitted to convergence (full-batch L-BFGS), a stronger heads-only than any training
budget gives; the same probe on the true skill bits is perfect, so the fit itself works.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from taskgraph.data import planted_spec
from taskgraph.data.planted import PlantedConfig, build_universe

transformers = pytest.importorskip("transformers")


def probe_accuracy(
    train_x: torch.Tensor, train_y: np.ndarray, test_x: torch.Tensor, test_y: np.ndarray, num_labels: int
) -> float:
    """Test accuracy of a multinomial logistic regression fitted with L-BFGS (small L2)."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
    torch.manual_seed(0)
    head = nn.Linear(train_x.shape[1], num_labels)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=100)
    y = torch.as_tensor(train_y)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(head(train_x), y) + 1e-3 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((head(test_x).argmax(-1).numpy() == test_y).mean())


def test_linear_probe_on_frozen_random_encoder_is_at_chance() -> None:
    universe = build_universe(PlantedConfig(examples_per_task=800, split=(0.5, 0.0, 0.5)))  # 400 / 400
    model_config = planted_spec()["model"]["config"]
    torch.manual_seed(0)
    encoder = transformers.BertModel(transformers.BertConfig(**model_config), add_pooling_layer=False).eval()

    def pooled(ids: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return encoder(input_ids=torch.as_tensor(ids)).last_hidden_state.mean(1)  # [n, hidden]

    frozen, truth, chance = [], [], []
    for task in (0, 1, 2):
        (xtr, ytr, btr), (xte, yte, bte) = universe.examples(task, "train"), universe.examples(task, "test")
        k = universe.num_labels(task)
        frozen.append(probe_accuracy(pooled(xtr), ytr, pooled(xte), yte, k))
        truth.append(
            probe_accuracy(
                torch.as_tensor(btr, dtype=torch.float32), ytr, torch.as_tensor(bte, dtype=torch.float32), yte, k
            )
        )
        chance.append(1.0 / k)
    assert min(truth) == 1.0
    assert np.mean(frozen) < np.mean(chance) + 0.06, (frozen, chance)
