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


POLY_0_1 = """\
name: planted-poly
model:
  config: {model_type: bert, vocab_size: 512, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 64, hidden_dropout_prob: 0.0, attention_probs_dropout_prob: 0.0}
  max_length: 16
  pooling: mean
  target_modules: [query, value]
adapters: {rank: 4, alpha: 8.0, skills: 8, heads: 1}
router: {kind: poly}
tasks:
  - {name: planted-00, num_labels: 4, data: {source: planted, task: 0, seed: 0}}
  - {name: planted-01, num_labels: 3, data: {source: planted, task: 1, seed: 0}}
  - {name: planted-02, num_labels: 4, data: {source: planted, task: 2, seed: 0}}
  - {name: planted-03, num_labels: 4, data: {source: planted, task: 3, seed: 0}}
  - {name: planted-04, num_labels: 4, data: {source: planted, task: 4, seed: 0}}
  - {name: planted-05, num_labels: 4, data: {source: planted, task: 5, seed: 0}}
  - {name: planted-06, num_labels: 3, data: {source: planted, task: 6, seed: 0}}
  - {name: planted-07, num_labels: 3, data: {source: planted, task: 7, seed: 0}}
  - {name: planted-08, num_labels: 3, data: {source: planted, task: 8, seed: 0}}
  - {name: planted-09, num_labels: 4, data: {source: planted, task: 9, seed: 0}}
  - {name: planted-10, num_labels: 3, data: {source: planted, task: 10, seed: 0}}
  - {name: planted-11, num_labels: 3, data: {source: planted, task: 11, seed: 0}}
  - {name: planted-12, num_labels: 4, data: {source: planted, task: 12, seed: 0}}
  - {name: planted-13, num_labels: 4, data: {source: planted, task: 13, seed: 0}}
  - {name: planted-14, num_labels: 3, data: {source: planted, task: 14, seed: 0}}
  - {name: planted-15, num_labels: 3, data: {source: planted, task: 15, seed: 0}}
  - {name: planted-16, num_labels: 4, data: {source: planted, task: 16, seed: 0}}
  - {name: planted-17, num_labels: 4, data: {source: planted, task: 17, seed: 0}}
  - {name: planted-18, num_labels: 3, data: {source: planted, task: 18, seed: 0}}
  - {name: planted-19, num_labels: 3, data: {source: planted, task: 19, seed: 0}}
training:
  steps: 1500
  batch_size: 32
  lr: {adapters: 0.03, router: 0.1, heads: 0.03}
  warmup_steps: 0
  sampling: uniform
  seed: 0
  eval_every: 250
  checkpoint_every: 500
  keep_checkpoints: 2
"""  # configs/routers/poly.yaml as taskgraph 0.1 shipped it (comments dropped: they are not hashed)


def test_the_hash_of_a_0_1_spec_is_pinned(tmp_path) -> None:  # noqa: ANN001
    """A spec written for taskgraph 0.1 hashes as 0.1 hashed it: a field added since (imports, report_to, compile,
    the splits rename) must not change the hash of a spec that does not use it, or every run, sweep cell and bench
    cell made before could no longer resume."""
    old = tmp_path / "poly-0.1.yaml"
    old.write_text(POLY_0_1)
    with pytest.warns(TaskgraphWarning):
        spec = load_spec(old)
    assert spec_hash(spec) == "ce51d393ba2774545cf8457a3526e865a688e80ee3eaf28b6228ed806de43408"
