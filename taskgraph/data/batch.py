"""A mixed-task batch (:class:`Batch`) and the collator that stacks encoded rows into one.

The training loop collates the ``(task id, row)`` pairs its sampler draws; evaluation reads one task in order::

    batch = collate(items, data, pad_id)  # data[t]: the TaskData of task t
    batches = task_batches(task_data, 32, pad_id)

Rows are right-padded with ``pad_id`` to the longest row of the batch; a batch holding generative rows is laid out
for the model's base (:mod:`taskgraph.data.text2text_encoding`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from taskgraph.adapters.context import distinct_tasks
from taskgraph.data.task_data import TaskData
from taskgraph.data.text2text_encoding import text2text_rows


@dataclass
class Batch:
    """A mixed-task batch, with its distinct tasks and example → task row computed once.

    Shapes:
        input_ids, attention_mask ``[B, S]``; labels, task_ids, inverse ``[B]``; tasks ``[U]``; targets (a batch with
        generative rows, :mod:`taskgraph.data.text2text_encoding`) ``[B, S]`` (causal) or ``[B, T]`` (seq2seq), else None.
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    task_ids: Tensor
    tasks: Tensor
    inverse: Tensor
    targets: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        """This batch on ``device``, but ``tasks`` (``[U]``) stays on the host: the model moves it for the router and
        reads its ids for the heads there, without waiting for the device."""
        moved = (
            None if t is None else t.to(device, non_blocking=True)
            for t in (self.input_ids, self.attention_mask, self.labels, self.task_ids)
        )
        return Batch(
            *moved,
            self.tasks,
            self.inverse.to(device, non_blocking=True),
            None if self.targets is None else self.targets.to(device, non_blocking=True),
        )

    def rows(self, part: slice) -> Batch:
        """Examples ``part`` of this batch, as wide as the whole batch, keeping the whole batch's distinct
        tasks (``inverse`` still points into them): one process's share of a data-parallel step."""
        return Batch(
            self.input_ids[part],
            self.attention_mask[part],
            self.labels[part],
            self.task_ids[part],
            self.tasks,
            self.inverse[part],
            None if self.targets is None else self.targets[part],
        )

    def task_names(self, names: Sequence[str]) -> list[str]:
        """The names of the distinct tasks of the batch."""
        return [names[int(t)] for t in self.tasks.tolist()]

    def __repr__(self) -> str:
        return f"Batch(size={self.size}, width={self.input_ids.shape[1]}, tasks={self.tasks.tolist()})"


def collate(items: Sequence[tuple[int, int]], data: Sequence[TaskData] | Mapping[int, TaskData], pad_id: int) -> Batch:
    """Stack ``(task id, row)`` pairs into a right-padded batch as wide as its longest row.

    ``data[t]`` is the :class:`TaskData` of task id ``t`` (a list in task order, or a dict).
    """
    task_ids = torch.tensor([t for t, _ in items], dtype=torch.long)  # [B]
    rows = torch.tensor([r for _, r in items], dtype=torch.long)  # [B]
    lengths = torch.empty(len(items), dtype=torch.long)  # [B]
    labels = torch.empty(len(items), dtype=torch.long)  # [B]
    tasks, inverse = distinct_tasks(task_ids)  # [U], [B]
    groups = [(data[t], (task_ids == t).nonzero().squeeze(1)) for t in tasks.tolist()]  # rows of each task
    for task_data, where in groups:
        lengths[where] = task_data.lengths[rows[where]]
        labels[where] = task_data.labels[rows[where]]
    if any(task_data.targets is not None for task_data, _ in groups):  # generative rows: laid out for the LM
        input_ids, attention_mask, target = text2text_rows(items, data, pad_id, tasks)
        return Batch(input_ids, attention_mask, labels, task_ids, tasks, inverse, target)
    width = int(lengths.max())
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # [B, S]
    for task_data, where in groups:
        cols = min(width, task_data.ids.shape[1])
        input_ids[where, :cols] = task_data.ids[rows[where], :cols]
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()  # [B, S]
    input_ids.masked_fill_(attention_mask == 0, pad_id)  # whatever a task padded with, the batch pads with pad_id
    return Batch(input_ids, attention_mask, labels, task_ids, tasks, inverse)


def task_batches(data: TaskData, batch_size: int, pad_id: int) -> Iterator[Batch]:
    """One task's examples in order, in batches of ``batch_size`` (for evaluation)."""
    for start in range(0, len(data), batch_size):
        rows = range(start, min(len(data), start + batch_size))
        yield collate([(data.task_id, r) for r in rows], {data.task_id: data}, pad_id)
