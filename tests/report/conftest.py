"""A trained-run folder built by hand: a tiny model with known routing, a written log, the spec.

``build_run(root)`` writes ``root/spec.yaml``, ``root/log.jsonl`` and ``root/model/`` exactly as the
training loop lays them out, with the router's logits set to known values (:func:`known_logits`).
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest
import torch
from torch import Tensor

from taskgraph.model import TaskGraphModel
from taskgraph.routing.base import Router, Routing
from taskgraph.spec import dump_spec, spec_from_dict
from tests.conftest import minimal_spec

PNG = b"\x89PNG\r\n\x1a\n"
TASKS = ["a", "b", "c"]  # minimal_spec's tasks; declared relations a–b 0.8, b–c 0.3
LAYERS = 4  # query and value of 2 BERT layers


def known_logits(tasks: int, layers: int, heads: int, skills: int) -> Tensor:
    """Distinct routing logits per (task, layer, head, skill): ``[T, L, H, K]``."""
    t, l, h, k = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float32) for n in (tasks, layers, heads, skills)), indexing="ij"
    )
    return torch.sin(1.0 + t * 1.3 + l * 0.7 + h * 2.1 + k * 0.9) * 3.0  # [T, L, H, K]


def make_model(router: str = "poly", heads: int = 1, **spec: Any) -> TaskGraphModel:
    """A tiny 3-task model; Poly / MHR routers get :func:`known_logits`."""
    data = minimal_spec(router={"kind": router}, **spec)
    data["adapters"]["splits"] = heads
    torch.manual_seed(0)
    model = TaskGraphModel(spec_from_dict(data))
    if router in ("poly", "mhr"):
        with torch.no_grad():
            model.router.logits.copy_(known_logits(*model.router.logits.shape))
    return model.eval()


def log_rows(steps: int = 60, every: int = 20) -> list[dict[str, Any]]:
    """Train rows every step and val rows every ``every`` steps, in the training loop's format."""
    rows: list[dict[str, Any]] = []
    for s in range(1, steps + 1):
        task = 1.5 * math.exp(-s / 20) + 0.2
        rows.append(
            {
                "step": s,
                "split": "train",
                "loss": task + 0.05,
                "task_loss": task,
                "reg_loss": 0.05,
                "lr_adapters": 1e-3,
                "examples_per_s": 250.0,
                "time": 0.1 * s,
            }
        )
        if s % every == 0:
            acc = {"a": min(1.0, s / steps), "b": 0.5 * s / steps, "c": 0.4}
            rows.append(
                {"step": s, "split": "val", "acc": acc, "mean_acc": sum(acc.values()) / 3, "loss": 1.0 - s / 200}
            )
    return rows


def build_run(root: Path, model: TaskGraphModel | None = None, rows: list[dict[str, Any]] | None = None) -> Path:
    """Write a run folder at ``root`` (spec.yaml, log.jsonl, model/); returns ``root``."""
    model = make_model() if model is None else model
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.yaml").write_text(dump_spec(model.spec))
    rows = log_rows() if rows is None else rows
    (root / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model.save_pretrained(root / "model")
    return root


class FixedRouter(Router):
    """A router with given gates ``[T, L]``, weights ``[T, L, H, K]`` and relation weights (a stand-in
    for the graph router: it has ``relation_weights()``)."""

    has_gates = True  # it stands in for the graph router, whose gates can close

    def __init__(self, gates: Tensor, weights: Tensor, index: Tensor, relation: Tensor) -> None:
        t, l, h, k = weights.shape
        super().__init__(t, l, h, k)
        self.register_buffer("gates", gates.float())
        self.register_buffer("weights", weights.float())
        self.index, self.relation = index, relation

    def forward(self, tasks: Tensor) -> Routing:
        return Routing(self.gates.index_select(0, tasks), self.weights.index_select(0, tasks))

    def relation_weights(self) -> tuple[Tensor, Tensor]:
        return self.index, self.relation


def pixels(data: bytes) -> np.ndarray:
    """``[H, W, 4]`` RGBA floats of PNG bytes (and a check that they are a PNG)."""
    assert data[:8] == PNG
    return matplotlib.image.imread(io.BytesIO(data), format="png")


def count_colour(image: np.ndarray, rgb: tuple[float, ...] | str, tol: float = 0.01) -> int:
    """Pixels of ``image`` within ``tol`` of colour ``rgb`` (a tuple in [0, 1] or ``#rrggbb``)."""
    if isinstance(rgb, str):
        rgb = tuple(int(rgb[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return int((np.abs(image[..., :3] - np.asarray(rgb[:3])).max(axis=-1) < tol).sum())


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One hand-built Poly run per test module (read-only: copy it before changing anything)."""
    return build_run(tmp_path_factory.mktemp("run") / "RUN")
