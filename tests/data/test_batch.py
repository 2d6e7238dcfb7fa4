"""The collator: a mixed-task batch padded and masked, its distinct tasks computed once; one task's batches in order."""

from __future__ import annotations

import torch

from taskgraph.data import TaskData, collate, task_batches


def _task(task_id: int, lengths: list[int], width: int = 6) -> TaskData:
    n = len(lengths)
    ids = torch.zeros(n, width, dtype=torch.long)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.arange(1, length + 1) + 10 * task_id
    return TaskData(f"t{task_id}", task_id, ids, torch.tensor(lengths), torch.arange(n) % 2)


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
