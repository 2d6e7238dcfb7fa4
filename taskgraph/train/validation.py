"""Validation inside the training loop: which steps validate, and the validation split's figures at one.

:func:`scheduled_eval` says whether a step validates (and may become the best); :func:`run_validation` scores the
validation split, every process taking part under fsdp (the base's forward is collective), rank 0 reporting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import torch

from taskgraph.data import TaskData
from taskgraph.model import TaskGraphModel
from taskgraph.train.evaluate import EvalResult, evaluate
from taskgraph.train.fsdp import ShardedBase
from taskgraph.train.progress import BatchProgress


def run_validation(
    model: TaskGraphModel,
    val_data: Sequence[TaskData],
    pad_id: int,
    dev: torch.device,
    shards: ShardedBase | None,
    quiet: TextIO | None,
) -> EvalResult:
    """The validation split's figures; under fsdp every process runs it (the base's forward is collective), the
    ranks but 0 without a word."""
    cuda = dev.type == "cuda"
    if shards is None:
        return evaluate(model, val_data, pad_id=pad_id, device=dev, autocast=cuda)
    silent = None if quiet is None else BatchProgress("validation", 1, stream=quiet)
    with shards.together("validating with the sharded base"):
        return evaluate(model, val_data, pad_id=pad_id, device=dev, autocast=cuda, progress=silent)


def scheduled_eval(step: int, every: int, total: int) -> bool:
    """Whether step ``step`` validates (and may become the best): every ``every`` steps and at the last."""
    return step % every == 0 or step == total
