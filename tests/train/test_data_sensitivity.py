"""Data sensitivity: ``training.train_examples`` (a stratified seeded subset) and ``training.label_noise``
(exactly round(share × n) labels moved to another label), on the train split only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from taskgraph.data import TaskData, planted_spec
from taskgraph.errors import CheckpointError
from taskgraph.spec import spec_from_dict
from taskgraph.train import load_task_data, train
from taskgraph.train.batches import noisy_labels, perturb_train, stratified_quotas, stratified_subset


def _spec_dict(**training: Any) -> dict[str, Any]:
    data = planted_spec(skills=4, tasks=4, held_out=0, examples_per_task=100, hidden_size=32, num_heads=2, steps=4)
    data["training"].update({"batch_size": 8, "eval_every": 2, "checkpoint_every": 2, **training})
    return data


def _load(**training: Any) -> dict[str, list[TaskData]]:
    return load_task_data(
        spec_from_dict(_spec_dict(**training)), ".", tokenizer=None, pad_id=0, splits=("train", "val", "test")
    )


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- pure functions
def test_quotas_are_proportional_by_largest_remainder() -> None:
    assert stratified_quotas([50, 30, 20], 10) == [5, 3, 2]
    assert stratified_quotas([5, 5, 5], 10) == [4, 3, 3]  # 3.33 each: the spare row goes to the lowest class
    assert stratified_quotas([1, 9], 5) == [1, 4]  # exact 0.5 / 4.5: tie on the remainder, lower class first
    assert stratified_quotas([7, 0, 3], 100) == [7, 0, 3]  # limit above n: everything
    assert stratified_quotas([97, 2, 1], 10) == [10, 0, 0]  # 9.7 / 0.2 / 0.1: the largest remainder wins
    for counts, limit in (([13, 8, 5, 1], 9), ([40, 40], 3), ([3, 100, 7], 50)):
        quotas = stratified_quotas(counts, limit)
        assert sum(quotas) == min(limit, sum(counts))
        assert all(abs(q - limit * c / sum(counts)) < 1 and q <= c for q, c in zip(quotas, counts))


def test_stratified_subset_counts_rows_and_determinism() -> None:
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)[torch.randperm(100, generator=_gen(1))]  # [100]
    rows = stratified_subset(labels, 20, 3, _gen(0))
    assert rows.numel() == 20 and rows.unique().numel() == 20
    assert torch.equal(rows, rows.sort().values)  # the original order is kept
    assert torch.bincount(labels[rows], minlength=3).tolist() == [12, 6, 2]
    assert torch.equal(rows, stratified_subset(labels, 20, 3, _gen(0)))
    assert not torch.equal(rows, stratified_subset(labels, 20, 3, _gen(1)))
    assert stratified_subset(labels, 500, 3, _gen(0)).tolist() == list(range(100))


@pytest.mark.parametrize(("n", "share", "classes"), [(101, 0.3, 3), (10, 0.25, 2), (64, 0.5, 5), (7, 0.0, 4)])
def test_label_noise_changes_exactly_round_share_n_labels_to_other_labels(n: int, share: float, classes: int) -> None:
    labels = torch.arange(n) % classes  # [n]
    noisy = noisy_labels(labels, classes, share, _gen(3))
    changed = noisy != labels
    assert int(changed.sum()) == round(share * n)  # 101·0.3 → 30; 10·0.25 = 2.5 → 2 (halves to even)
    assert bool(((noisy >= 0) & (noisy < classes)).all())
    assert torch.equal(noisy, noisy_labels(labels, classes, share, _gen(3)))
    assert torch.equal(labels, torch.arange(n) % classes)  # the input is not modified


def test_label_noise_draws_every_other_label_uniformly() -> None:
    labels = torch.zeros(40_000, dtype=torch.long)
    noisy = noisy_labels(labels, 5, 0.5, _gen(0))
    counts = torch.bincount(noisy, minlength=5).tolist()
    assert counts[0] == 20_000  # exactly half changed, none to its own label
    assert all(abs(c - 5_000) < 300 for c in counts[1:])  # the other four: 5,000 each ± 4 sd
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        noisy_labels(labels, 5, 1.0, _gen(0))


def test_perturb_train_without_settings_is_the_same_object() -> None:
    data = TaskData("t", 0, torch.ones(4, 3, dtype=torch.long), torch.full((4,), 3), torch.tensor([0, 1, 0, 1]))
    assert perturb_train(data, 2, limit=None, noise=0.0, seed=0) is data
    assert perturb_train(data, 2, limit=4, noise=0.0, seed=0) is data


def test_subset_trims_ids_to_the_longest_kept_row() -> None:
    ids = torch.arange(1, 41).reshape(4, 10)  # [4, 10]
    data = TaskData("t", 0, ids, torch.tensor([10, 2, 3, 2]), torch.tensor([0, 1, 1, 0]))
    kept = perturb_train(data, 2, limit=2, noise=0.0, seed=0)
    assert len(kept) == 2 and kept.ids.shape[1] == int(kept.lengths.max())
    for row in range(2):
        source = [i for i in range(4) if torch.equal(ids[i, : kept.ids.shape[1]], kept.ids[row])]
        assert source and int(data.lengths[source[0]]) == int(kept.lengths[row])


# ----------------------------------------------------------------------------- through the spec
def test_train_examples_and_noise_touch_the_train_split_only() -> None:
    clean, subset, noisy = _load(), _load(train_examples=30), _load(train_examples=30, label_noise=0.2)
    for c, s, z in zip(clean["train"], subset["train"], noisy["train"]):
        assert (len(c), len(s), len(z)) == (80, 30, 30)
        full = {tuple(row[:n].tolist()) for row, n in zip(c.ids, c.lengths.tolist())}
        assert {tuple(row[:n].tolist()) for row, n in zip(s.ids, s.lengths.tolist())} <= full
        counts_full = torch.bincount(c.labels).tolist()
        counts_kept = torch.bincount(s.labels, minlength=len(counts_full)).tolist()
        assert counts_kept == stratified_quotas(counts_full, 30)  # class-stratified
        assert torch.equal(z.ids, s.ids)  # noise keeps the same rows (its own seed) ...
        assert int((z.labels != s.labels).sum()) == 6  # ... and moves round(0.2 · 30) = 6 labels
    for split in ("val", "test"):
        for c, z in zip(clean[split], noisy[split]):
            assert torch.equal(c.ids, z.ids) and torch.equal(c.labels, z.labels)


def test_sensitivity_is_seeded_by_training_seed_and_changes_the_fingerprint() -> None:
    a, b = _load(train_examples=30, label_noise=0.2), _load(train_examples=30, label_noise=0.2)
    other = _load(train_examples=30, label_noise=0.2, seed=1)
    assert [t.fingerprint() for t in a["train"]] == [t.fingerprint() for t in b["train"]]
    assert all(x.fingerprint() != y.fingerprint() for x, y in zip(a["train"], other["train"]))
    prints = {
        tuple(t.fingerprint() for t in _load(**kw)["train"])
        for kw in ({}, {"train_examples": 30}, {"train_examples": 31}, {"label_noise": 0.1})
    }
    assert len(prints) == 4


def test_resume_with_other_sensitivity_values_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(spec_from_dict(_spec_dict(train_examples=40)), run, max_steps=2)
    for changed in ({"train_examples": 20}, {"train_examples": 40, "label_noise": 0.1}):
        with pytest.raises(CheckpointError, match="training.(train_examples|label_noise)"):
            train(spec_from_dict(_spec_dict(**changed)), run, resume=True)
    result = train(spec_from_dict(_spec_dict(train_examples=40)), run, resume=True)  # the same values go on
    assert result.completed and result.resumed_from == 2
