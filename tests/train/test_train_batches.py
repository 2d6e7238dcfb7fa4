"""Multi-task batches: encoding, the seeded sampler (probabilities, epochs, state), the collator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from taskgraph.data.examples import Examples
from taskgraph.errors import CheckpointError, DataError
from taskgraph.train.batches import (
    MultiTaskSampler,
    TaskData,
    collate,
    encode_examples,
    sampling_probabilities,
    task_batches,
)


def _task(task_id: int, lengths: list[int], width: int = 6) -> TaskData:
    n = len(lengths)
    ids = torch.zeros(n, width, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.arange(1, length + 1) + 10 * task_id
    return TaskData(f"t{task_id}", task_id, ids, torch.tensor(lengths), torch.arange(n) % 2)


def test_sampling_probabilities_closed_forms() -> None:
    sizes = [10, 40, 90]
    assert sampling_probabilities(sizes, "uniform").tolist() == pytest.approx([1 / 3] * 3)
    assert sampling_probabilities(sizes, "proportional").tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14])
    # p ∝ n^(1/2): sqrt(10) : sqrt(40) : sqrt(90) = 1 : 2 : 3
    assert sampling_probabilities(sizes, "temperature", 2.0).tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6])
    assert sampling_probabilities(sizes, "temperature", 1.0).tolist() == pytest.approx([1 / 14, 4 / 14, 9 / 14])
    with pytest.raises(ValueError, match="choose from"):
        sampling_probabilities(sizes, "square")
    with pytest.raises(ValueError, match="at least one"):
        sampling_probabilities([3, 0], "uniform")


def test_sampler_frequencies_follow_probabilities() -> None:
    sampler = MultiTaskSampler([10, 40, 90], "temperature", 2.0, seed=3)
    draws = [t for t, _ in sampler.sample(6000)]
    freq = torch.bincount(torch.tensor(draws), minlength=3).double() / len(draws)
    assert freq.tolist() == pytest.approx([1 / 6, 2 / 6, 3 / 6], abs=0.02)


def test_every_row_once_per_epoch_and_epochs_differ() -> None:
    sampler = MultiTaskSampler([5, 7], "uniform", 1.0, seed=0)
    rows: dict[int, list[int]] = {0: [], 1: []}
    while len(rows[0]) < 15:
        for task, row in sampler.sample(4):
            rows[task].append(row)
    epochs = [rows[0][i : i + 5] for i in (0, 5, 10)]
    assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 1  # a new order each epoch
    assert sampler.epoch[0] >= 2


def test_sampler_state_roundtrip_through_json_continues_identically() -> None:
    a = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    for _ in range(9):
        a.sample(4)
    state = json.loads(json.dumps(a.state_dict()))
    expected = [a.sample(4) for _ in range(6)]
    b = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    b.load_state_dict(state)
    assert [b.sample(4) for _ in range(6)] == expected
    fresh = MultiTaskSampler([5, 7, 3], "proportional", 1.0, seed=11)
    assert [fresh.sample(4) for _ in range(6)] != expected  # the state, not the seed, decides


def test_sampler_rejects_state_of_other_data() -> None:
    state = MultiTaskSampler([5, 7], "uniform", 1.0, seed=0).state_dict()
    with pytest.raises(CheckpointError, match="data changed"):
        MultiTaskSampler([5, 8], "uniform", 1.0, seed=0).load_state_dict(state)
    with pytest.raises(CheckpointError, match="malformed"):
        MultiTaskSampler([5, 7], "uniform", 1.0, seed=0).load_state_dict({**state, "generator": "not base64!"})


def test_collate_pads_masks_and_computes_distinct_tasks_once() -> None:
    data = [_task(0, [2, 5, 3]), _task(1, [4, 1], width=4), _task(2, [6])]
    items = [(1, 0), (0, 1), (1, 1), (0, 0)]
    batch = collate(items, data, pad_id=99)
    assert batch.input_ids.shape == (4, 5)  # as wide as the longest row (task 0 row 1: 5 tokens)
    assert batch.attention_mask.sum(1).tolist() == [4, 5, 1, 2]
    assert batch.input_ids[0].tolist() == [11, 12, 13, 14, 99]
    assert batch.input_ids[1].tolist() == [1, 2, 3, 4, 5]
    assert batch.input_ids[2].tolist() == [11, 99, 99, 99, 99]
    assert batch.labels.tolist() == [0, 1, 1, 0]
    assert batch.task_ids.tolist() == [1, 0, 1, 0]
    assert batch.tasks.tolist() == [0, 1]
    assert torch.equal(batch.tasks[batch.inverse], batch.task_ids)
    assert batch.task_names(["x", "y", "z"]) == ["x", "y"]


def test_task_batches_cover_a_task_in_order() -> None:
    task = _task(2, [1, 2, 3, 4, 5])
    batches = list(task_batches(task, 2, pad_id=0))
    assert [b.size for b in batches] == [2, 2, 1]
    assert torch.cat([b.labels for b in batches]).tolist() == task.labels.tolist()
    assert all(b.tasks.tolist() == [2] for b in batches)


@pytest.fixture
def tokenizer(tmp_path: Path):  # noqa: ANN201
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "movie"]) + "\n")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    return AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)


def test_encode_texts_with_the_tokenizer_truncating_at_max_length(tokenizer) -> None:  # noqa: ANN001
    examples = Examples("review", [1, 0], texts=["Good movie", "movie movie movie movie movie"])
    data = encode_examples(examples, 4, tokenizer=tokenizer, max_length=5, pad_id=0, vocab_size=6)
    assert data.ids.tolist() == [[2, 4, 5, 3, 0], [2, 5, 5, 5, 3]]
    assert data.lengths.tolist() == [4, 5]
    assert data.labels.tolist() == [1, 0]
    assert data.task_id == 4 and len(data) == 2


def test_encode_token_ids_and_its_errors(tokenizer) -> None:  # noqa: ANN001
    planted = Examples("p", [0, 1], token_ids=[[5, 6, 7], [8, 9, 10]])
    data = encode_examples(planted, 0, tokenizer=None, max_length=3, pad_id=0, vocab_size=11)
    assert data.ids.tolist() == [[5, 6, 7], [8, 9, 10]]
    with pytest.raises(DataError, match="model.max_length is 2"):
        encode_examples(planted, 0, tokenizer=None, max_length=2, pad_id=0)
    with pytest.raises(DataError, match=r"token id 10 is outside the model's vocabulary \[0, 10\)"):
        encode_examples(planted, 0, tokenizer=None, max_length=3, pad_id=0, vocab_size=10)
    with pytest.raises(DataError, match="no tokenizer"):
        encode_examples(Examples("r", [0], texts=["good"]), 0, tokenizer=None, max_length=8, pad_id=0)
