"""Tiny training runs: three text tasks in JSONL files, a WordPiece tokenizer built from a vocab
file, a 2-layer BERT from a config. Nothing is downloaded."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]


POSITIVE, NEGATIVE = ["good", "great", "fine"], ["bad", "awful", "poor"]
COLORS = ["red", "blue", "green"]
ANIMALS = ["cat", "dog"]
FILLER = ["the", "a", "big", "small", "old", "new", "very", "and", "is", "was"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POSITIVE + NEGATIVE + COLORS + ANIMALS + FILLER


def _rows(task: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows whose label is carried by one word among fillers: sentiment (2), color (3), animal (2)."""
    rows = []
    for i in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        if task == "sentiment":
            label = i % 2
            key = rng.choice(POSITIVE if label else NEGATIVE)
        elif task == "color":
            label = i % 3
            key = COLORS[label]
        else:
            label = i % 2
            key = ANIMALS[label]
        words.insert(rng.randint(0, len(words)), key)
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_tasks(folder: Path, n: int = 80, seed: int = 0) -> dict[str, int]:
    """``folder/<task>.jsonl`` for the three tasks; returns ``{task: num_labels}``."""
    rng = random.Random(seed)
    labels = {"sentiment": 2, "color": 3, "animal": 2}
    for task in labels:
        lines = [json.dumps(r) for r in _rows(task, n, rng)]
        (folder / f"{task}.jsonl").write_text("\n".join(lines) + "\n")
    return labels


def write_tokenizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"})
    )
    return folder


def spec_dict(folder: Path, **training: Any) -> dict[str, Any]:
    """A three-task spec over a tiny BERT and the JSONL tasks in ``folder`` (written if absent)."""
    if not (folder / "sentiment.jsonl").exists():
        write_tasks(folder)
    tokenizer = write_tokenizer(folder / "tokenizer")
    labels = {"sentiment": 2, "color": 3, "animal": 2}
    return {
        "name": "tiny-train",
        "model": {
            "config": {
                "model_type": "bert",
                "hidden_size": 32,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "intermediate_size": 64,
                "vocab_size": len(VOCAB),
                "max_position_embeddings": 32,
            },
            "tokenizer": str(tokenizer),
            "max_length": 16,
        },
        "adapters": {"rank": 4, "alpha": 8, "skills": 3, "splits": 1, "dropout": 0.1},
        "router": {"kind": "poly"},
        "tasks": [
            {"name": t, "num_labels": c, "data": {"source": "jsonl", "path": f"{t}.jsonl"}} for t, c in labels.items()
        ],
        "training": {
            "steps": 24,
            "batch_size": 16,
            "lr": {"adapters": 3e-2, "router": 1e-1, "heads": 1e-1},
            "warmup_steps": 2,
            "eval_every": 4,
            "checkpoint_every": 4,
            "keep_checkpoints": 2,
            "sampling": "temperature",
            "seed": 0,
            **training,
        },
    }


@pytest.fixture
def child_env() -> Callable[..., dict[str, str]]:
    """``child_env(**extra)``: the environment of a ``python -m taskgraph`` child process (one thread,
    no progress bar, this checkout importable, no fault variables unless given)."""

    def build(**extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGRAPH_")}
        env.update(OMP_NUM_THREADS="1", CI="true", PYTHONPATH=str(REPO), **extra)
        return env

    return build


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run of ``spec`` into ``run`` (shared by every test that compares with it)."""

    spec: Path
    run: Path


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The 24-step reference run, trained once in-process through the CLI."""
    from taskgraph.cli import main

    folder = tmp_path_factory.mktemp("reference")
    spec = folder / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(folder), sort_keys=False))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", str(spec), "--out", str(folder / "run")]) == 0
    finally:
        torch.set_num_threads(before)
    return Reference(spec, folder / "run")


@pytest.fixture
def make_spec(tmp_path: Path) -> Callable[..., Path]:
    """``make_spec(**training)`` writes ``tmp_path/spec.yaml`` (+ data, tokenizer) and returns its path."""

    def build(name: str = "spec.yaml", **training: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec_dict(tmp_path, **training), sort_keys=False))
        return path

    return build


@pytest.fixture
def same_weights() -> Callable[[Path, Path], None]:
    """``same_weights(a, b)``: torch.equal on every tensor of two saved model folders."""
    return assert_same_weights


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """``snapshot(folder)``: every file under it and its bytes (to check nothing changed)."""
    return take_snapshot


def weights(run_model_dir: Path) -> dict[str, Any]:
    """Every tensor of a saved model folder."""
    from safetensors.torch import load_file

    return load_file(str(run_model_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    """torch.equal on every tensor of two saved model folders."""
    import torch

    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def take_snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (to check nothing changed; the run's lock file records who
    locked it last, which is not content)."""
    from taskgraph.run_folder import LOCK

    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != LOCK
    }
