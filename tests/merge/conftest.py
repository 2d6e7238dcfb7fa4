"""Tiny planted runs to merge: a routed multi-task run and single-task runs from one initialisation.

``make_run(...)`` saves an untrained model whose adapters (and router) are perturbed as if trained — every
task gets its own update — as a run folder (``RUN/model``) in well under a second. The planted source
needs no files, so the merge can score every task's validation split. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.data import tiny_planted_spec
from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec

TASKS = 4  # planted-0 .. planted-3


def planted(
    router: str = "poly",
    tasks: list[int] | None = None,
    *,
    linearized: bool = False,
    seed: int = 0,
    hidden: int = 32,
    heads: int = 1,
) -> dict[str, Any]:
    """A planted spec over a tiny BERT (4 skills, seq 8, rank 2), keeping the planted tasks ``tasks``."""
    spec = tiny_planted_spec(tasks=TASKS, router=router, hidden_size=hidden, num_layers=2, steps=10, batch_size=8)
    if tasks is not None:
        spec["tasks"] = [spec["tasks"][i] for i in tasks]
    spec["adapters"].update({"linearized": linearized, "splits": heads})
    spec["training"]["seed"] = seed
    if router == "graph":
        spec["router"].update({"gnn": {"hidden": 8}, "gate_threshold": 0.0})
    return spec


def perturb(model: TaskGraphModel, seed: int) -> None:
    """Random adapter (and router) values, as if trained; L-LoRA's A0 / B0 buffers are left as drawn."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in [
            *model.router.named_parameters(),
            *((n, p) for n, p in model.named_parameters() if n.endswith((".A", ".B"))),
        ]:
            if name != "relations.theta":
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
        for head in model.heads.heads:
            head.weight.add_(torch.randn(head.weight.shape, generator=gen))


def save_run(spec: dict[str, Any], folder: Path, perturb_seed: int, *, b0: bool = False) -> Path:
    """Build ``spec``'s model under its seed, perturb it, save it as the run folder ``folder``."""
    torch.manual_seed(spec["training"]["seed"])
    model = TaskGraphModel(Spec.model_validate(spec))
    if b0:  # linearise around a non-zero B0 (an L-LoRA started from a trained LoRA)
        gen = torch.Generator().manual_seed(99)
        with torch.no_grad():
            for _, layer in model.adapted:
                layer.B0.copy_(torch.randn(layer.B0.shape, generator=gen) * 0.3)
                layer.B.copy_(layer.B0)
    perturb(model, perturb_seed)
    model.save_pretrained(folder / "model")
    return folder


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """``runs(name)``: cached source runs — ``routed`` (poly, 4 tasks), ``single`` / ``single-llora`` (one run
    per task from one init), ``single-again``, ``graph``, ``mhr``, ``private``, ``llora-b0`` (routed, B0 ≠ 0), ``other-seed``,
    ``other-base``."""
    root = tmp_path_factory.mktemp("merge-sources")
    made: dict[str, Any] = {}

    def build(name: str) -> Any:
        if name in made:
            return made[name]
        if name in ("routed", "graph", "mhr", "private"):
            router = "poly" if name == "routed" else name
            made[name] = save_run(planted(router, heads=2 if name == "mhr" else 1), root / name, 1)
        elif name in ("single", "single-llora"):
            made[name] = [
                save_run(planted("shared", [t], linearized=name.endswith("llora")), root / f"{name}-{t}", 10 + t)
                for t in range(3)
            ]
        elif name == "single-again":  # planted-0 once more, from the same init
            made[name] = save_run(planted("shared", [0]), root / name, 20)
        elif name == "llora-b0":
            made[name] = save_run(planted("poly", linearized=True), root / name, 3, b0=True)
        elif name == "other-seed":
            made[name] = save_run(planted("shared", [3], seed=1), root / name, 13)
        elif name == "other-base":
            made[name] = save_run(planted("shared", [3], hidden=16), root / name, 13)
        else:
            raise KeyError(name)
        return made[name]

    return build
