"""Every example spec validates and opens with a comment saying how to run it."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.cli import main
from taskgraph.spec import load_spec

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_there_are_examples():
    assert len(CONFIGS) >= 3


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_validates_and_says_how_to_run(path):
    spec = load_spec(path)
    assert spec.tasks
    first = path.read_text().splitlines()[0]
    assert first.startswith("#")
    assert "taskgraph " in path.read_text().split("\nname:")[0]


def test_cli_validates_them_all(capsys):
    assert main(["validate", *map(str, CONFIGS)]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(CONFIGS)
