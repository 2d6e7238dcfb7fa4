"""A tiny planted spec for sweeps: 6 tasks over 6 skills (so related and unrelated pairs exist), a
2-layer BERT of width 32, the graph router (learned relations), 4 steps. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from taskgraph.data import planted_spec


def tiny_spec_dict(**training: Any) -> dict[str, Any]:
    data = planted_spec(
        skills=6,
        tasks=6,
        held_out=0,
        min_tasks_per_skill=2,
        examples_per_task=40,
        hidden_size=32,
        num_heads=2,
        steps=4,
        router="graph",
    )
    data["training"].update({"batch_size": 8, "eval_every": 2, "checkpoint_every": 2, **training})
    return data


def write_spec(folder: Path, name: str = "spec.yaml", **training: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(tiny_spec_dict(**training), sort_keys=False))
    return path
