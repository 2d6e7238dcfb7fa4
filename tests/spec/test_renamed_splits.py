"""``adapters.splits`` (MHR's splits of a module's dimensions) was ``adapters.heads`` in taskgraph 0.1: the old key is
read and said to be renamed, both at once is an error, and spec hashes — what a resume, a sweep cell and a bench cell
compare — are the same under either name."""

from __future__ import annotations

import warnings

import pytest
import yaml

from taskgraph.errors import SpecError, TaskgraphWarning
from taskgraph.spec import load_spec
from taskgraph.train.run_checkpoint import spec_hash
from tests.conftest import minimal_spec


def _write(tmp_path, adapters):  # noqa: ANN001
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(minimal_spec(adapters=adapters), sort_keys=False))
    return path


def test_the_old_key_is_read_and_said_to_be_renamed(tmp_path) -> None:  # noqa: ANN001
    with pytest.warns(TaskgraphWarning, match=r"spec.yaml:\d+: adapters.heads is now adapters.splits"):
        old = load_spec(_write(tmp_path, {"rank": 4, "skills": 4, "heads": 2}))
    assert old.adapters.splits == 2 and "heads" not in old.model_dump()["adapters"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = load_spec(_write(tmp_path, {"rank": 4, "skills": 4, "splits": 2}))
    assert new == old and spec_hash(new) == spec_hash(old)


def test_a_hash_is_what_it_was_before_the_rename(tmp_path) -> None:  # noqa: ANN001
    import hashlib
    import json

    spec = load_spec(_write(tmp_path, {"rank": 4, "skills": 4, "splits": 3}))
    dumped = spec.model_dump(mode="json")
    dumped["adapters"]["heads"] = dumped["adapters"].pop("splits")  # how taskgraph 0.1 dumped and hashed it
    before = hashlib.sha256(json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert spec_hash(spec) == before


def test_both_names_at_once_is_an_error(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(SpecError, match="give adapters.splits only: adapters.heads is its old name"):
        load_spec(_write(tmp_path, {"heads": 2, "splits": 2}))
