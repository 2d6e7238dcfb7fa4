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


NEEDS_USER_DATA = {"minilm-text.yaml"}  # templates for the user's own files: their data is not shipped


def test_cli_validates_them_all_as_train_would(capsys):
    """Every shipped config passes train's own checks (model built, data read); a template for the user's files
    fails exactly on those files, each named."""
    ready = [p for p in CONFIGS if p.name not in NEEDS_USER_DATA]
    assert main(["validate", *map(str, ready)]) == 0
    assert capsys.readouterr().out.count(": ok (") == len(ready)
    for path in (p for p in CONFIGS if p.name in NEEDS_USER_DATA):
        assert main(["validate", str(path)]) == 2
        err = capsys.readouterr().err
        files = [t.data.own_fields().get("path") for t in load_spec(path).tasks]
        assert all(f"{f!r}" in err and "does not exist" in err for f in files), err
