"""Tiny transformers built from configs, and specs around them (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from taskgraph.spec.models import Spec

TINY: dict[str, dict[str, Any]] = {
    "bert": dict(
        model_type="bert",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
    ),
    "gpt2": dict(
        model_type="gpt2",
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=100,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    ),
    "llama": dict(
        model_type="llama",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
    ),
    "t5": dict(model_type="t5", num_layers=2, d_model=32, num_heads=2, d_ff=64, d_kv=16, vocab_size=100),
}
TARGETS: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "t5": ["q", "v"],
}
POOLING = {"bert": "mean", "gpt2": "last", "llama": "last", "t5": "mean"}
TASKS = [{"name": "alpha", "num_labels": 2}, {"name": "beta", "num_labels": 3}, {"name": "gamma", "num_labels": 5}]


def _make_spec(
    family: str = "bert", router: str = "poly", heads: int = 1, skills: int = 3, rank: int = 4, **model: Any
) -> Spec:
    """A 3-task spec over a tiny model of ``family`` built from its config."""
    return Spec.model_validate(
        {
            "model": {
                "config": dict(TINY[family]),
                "target_modules": TARGETS[family],
                "pooling": POOLING[family],
                **model,
            },
            "adapters": {"rank": rank, "alpha": 8, "skills": skills, "splits": heads},
            "router": {"kind": router},
            "tasks": TASKS,
        }
    )


def _perturb(model: torch.nn.Module, seed: int = 1) -> None:
    """Give every trainable tensor random values, as if trained (B starts at zero otherwise)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


@pytest.fixture
def perturb() -> Callable[..., None]:
    return _perturb


@pytest.fixture
def spec_for() -> Callable[..., Spec]:
    return _make_spec


@pytest.fixture
def batch() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``batch(n, seq, seed)`` -> right-padded input_ids [n, seq] and attention_mask [n, seq]."""

    def build(n: int = 6, seq: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        ids = torch.randint(3, 100, (n, seq), generator=gen)
        lengths = torch.randint(2, seq + 1, (n,), generator=gen)
        mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
        return ids * mask, mask

    return build


@pytest.fixture
def tiny() -> Callable[[str], dict[str, Any]]:
    """``tiny(family)`` -> a fresh copy of the tiny config dict of ``bert``, ``gpt2``, ``llama`` or ``t5``."""
    return lambda family: dict(TINY[family])
