"""One training step's forward and backward (:func:`step_gradients`), alone or as one rank of a data-parallel run,
eager or through ``torch.compile`` (``training.compile``); the optimizer's step is the loop's
(:mod:`taskgraph.train.loop`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import torch

from taskgraph.data import Batch
from taskgraph.model import TaskGraphModel, TaskGraphOutput, forward_batch
from taskgraph.train.distributed import DataParallel

COMPILE_BACKEND = "TASKGRAPH_COMPILE_BACKEND"  # torch.compile's backend under training.compile (default inductor)


def step_gradients(
    model: TaskGraphModel,
    batch: Batch,
    trainable: list[torch.nn.Parameter],
    dev: torch.device,
    step: int,
    seed: int,
    parallel: DataParallel | None = None,
    forward: Callable[..., TaskGraphOutput] | None = None,
) -> tuple[float, float, float]:
    """Forward and backward of one training step; returns ``(loss, task loss, regularizer)`` of the whole batch.

    ``forward`` is the model's forward to call (``torch.compile(model)`` under ``training.compile``; default: the
    model itself).

    With ``parallel`` this process takes its share of ``batch`` (every rank holds the same batch), the router's
    random draws come from the step's shared seed and dropout from this rank's, and the gradients — summed over
    the processes — equal one process's on the whole batch (:mod:`taskgraph.train.distributed`).
    """
    shard = (batch if parallel is None else batch.rows(parallel.shard(batch.size))).to(dev)
    model.train()
    if parallel is not None:  # routing noise shared by every rank, dropout drawn per rank
        model.routing_seed, rank_seed = parallel.step_seeds(seed, step)
        torch.manual_seed(rank_seed)
    # a sharded base (training.parallel: fsdp) all-gathers its weights in the forward and backward: a lost peer there
    # is a DistributedError, as in the all-reduce below
    running = contextlib.nullcontext() if parallel is None else parallel.together("running the forward and backward")
    share = shard.size / batch.size  # the ranks' gradients sum to the whole batch's
    with running:
        with autocast(dev.type == "cuda"):
            call = model if forward is None else forward
            out = forward_batch(call, shard)
            reg_loss = model.router.regularizer()
        loss = out.loss + reg_loss if parallel is None else out.loss * share + reg_loss / parallel.world
        loss.backward()
    loss_value, task_value, reg_value = (float(x.detach()) for x in (loss, out.loss, reg_loss))
    if parallel is None:
        return loss_value, task_value, reg_value
    task_value, reg_value = parallel.reduce_gradients(trainable, [task_value * share, reg_value / parallel.world])
    return task_value + reg_value, task_value, reg_value


def compiled_forward(model: TaskGraphModel) -> Callable[..., TaskGraphOutput]:
    """``torch.compile`` of the model's forward (``training.compile: true``): the same numbers as eager (tests), the
    host reads (task ids checked, one head per distinct task) left as graph breaks. The backend is inductor, or
    ``TASKGRAPH_COMPILE_BACKEND`` (the tests use ``aot_eager``: the tracing without inductor's code generation)."""
    backend = os.environ.get(COMPILE_BACKEND, "").strip() or "inductor"
    return torch.compile(model, backend=backend)  # type: ignore[return-value]


def autocast(cuda: bool) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
