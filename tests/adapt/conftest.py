"""Tiny planted runs for the adaptation tests: a random-init 2-layer BERT over a small planted universe.

``make_run(router)`` saves an untrained model whose adapters and router are perturbed (so every skill and
routing row matters) as a run folder, in well under a second; ``trained_planted`` is one real training
run (shared by the CLI tests). Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.data.planted import planted_spec
from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec

HELD_OUT = 9  # the planted task the tests adapt to (held out of every run)


def small_planted(router: str = "poly", *, heads: int = 1, steps: int = 40, **extra: Any) -> dict[str, Any]:
    """A planted spec: 8 seen tasks (planted-0..7) of 10, 4 skills, seq_len 8, hidden 32, rank 2."""
    spec = planted_spec(
        skills=4,
        tasks=10,
        held_out=2,
        seq_len=8,
        vocab_size=64,
        examples_per_task=120,
        router=router,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        rank=2,
        steps=steps,
        batch_size=16,
    )
    spec["adapters"]["splits"] = heads
    if router == "graph":
        spec["router"].update({"gnn": {"hidden": 16}, "gate_threshold": 0.1})
    spec["training"].update(
        {
            "eval_every": steps,
            "checkpoint_every": steps,
            "seed": 0,
            "lr": {"adapters": 1e-2, "router": 5e-2, "heads": 1e-2},
            **extra,
        }
    )
    return spec


def perturb(model: TaskGraphModel, seed: int = 1) -> None:
    """Give every adapter and router parameter random values (B = 0 would make the adapters vanish)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in [
            *model.router.named_parameters(),
            *((n, p) for n, p in model.named_parameters() if n.endswith((".A", ".B"))),
        ]:
            if name == "relations.theta":
                continue  # relation weights stay at their declared / neutral values
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.fixture(scope="session")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_run(router, heads=1)``: a run folder (``RUN/model``) holding a perturbed, untrained model."""
    made: dict[tuple[str, int], Path] = {}

    def build(router: str, heads: int = 1) -> Path:
        key = (router, heads)
        if key not in made:
            torch.manual_seed(0)
            model = TaskGraphModel(Spec.model_validate(small_planted(router, heads=heads)))
            perturb(model)
            run = tmp_path_factory.mktemp(f"run-{router}-{heads}")
            model.save_pretrained(run / "model")
            made[key] = run
        return made[key]

    return build


def tokens(batch: int = 5, seq: int = 8, seed: int = 0) -> torch.Tensor:
    """Random planted-vocabulary token ids ``[batch, seq]``."""
    return torch.randint(1, 64, (batch, seq), generator=torch.Generator().manual_seed(seed))
