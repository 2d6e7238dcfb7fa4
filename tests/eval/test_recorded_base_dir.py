"""A run folder's recorded ``base_dir`` (train.json) is someone else's word: followed only when it names an existing
folder here, by an absolute path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskgraph.eval.run_eval import recorded_base_dir


@pytest.mark.parametrize(
    "recorded, followed",
    [
        ("HERE", True),  # an existing absolute folder: the data's folder, followed
        ("relative/data", False),  # relative: would resolve wherever the reader happens to be
        ("/no/such/folder/anywhere", False),
        ("FILE", False),  # a file, not a folder
    ],
)
def test_the_recorded_folder_is_followed_only_when_it_exists_here(
    tmp_path: Path, recorded: str, followed: bool
) -> None:
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (tmp_path / "a-file").write_text("x")
    value = {"HERE": str(tmp_path), "FILE": str(tmp_path / "a-file")}.get(recorded, recorded)
    (run / "train.json").write_text(json.dumps({"name": "x", "base_dir": value}))
    assert recorded_base_dir(run, run / "model") == (Path(value) if followed else Path("."))
