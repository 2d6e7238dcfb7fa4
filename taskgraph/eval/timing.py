"""Does gating save time? Inference with the router's gates as learned vs with every gate forced open.

    timing = time_gating(model, batches, rounds=5)   # one real batch per task
    timing.ratio                                      # gated / all-open; < 1: gating saves time

Both modes run the same forward passes (eval mode, no gradients) over the same batches. "All open"
is the model with a forward hook on ``model.router`` that replaces the :class:`Routing`'s gates by
ones — the core code is not changed, and the mixture weights are those the router learned. A closed
gate lets an adapted layer skip its adapter for that task's examples
(:func:`~taskgraph.adapters.mixing.add_open_delta`), which is where any saving comes from.

Measurement: one warm-up forward of each mode on every batch, then ``rounds`` rounds. A round
runs every batch in both modes back to back, the order of the two alternating from batch to batch
and round to round (so drift in the machine's speed hits both alike), and adds up each mode's
time: one pass over the batches. Reported: the median over rounds of a pass's wall time, in ms.
On CUDA the device is synchronised before each clock read. On a busy machine the numbers are
noisy; more rounds help.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from taskgraph.data import Batch
from taskgraph.model import TaskGraphModel
from taskgraph.model.modes import inference_mode_of
from taskgraph.routing.base import Routing


@dataclass(frozen=True)
class GatingTiming:
    """Median wall time of one inference pass over the batches, gated and all-open.

    Args:
        gated_ms: with the router's gates as learned.
        all_open_ms: with every gate forced to 1.
        rounds: the timed rounds (each runs both modes once).
        batches: the batches of one pass (one per task).
        examples: the examples of one pass.
    """

    gated_ms: float
    all_open_ms: float
    rounds: int
    batches: int
    examples: int

    @property
    def ratio(self) -> float:
        """``gated_ms / all_open_ms``: below 1 when gating saves time."""
        return self.gated_ms / self.all_open_ms if self.all_open_ms > 0 else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "gated_ms": self.gated_ms,
            "all_open_ms": self.all_open_ms,
            "ratio": self.ratio,
            "rounds": self.rounds,
            "batches": self.batches,
            "examples": self.examples,
        }


def _open_gates(module: torch.nn.Module, args: Any, output: Routing) -> Routing:
    return Routing(torch.ones_like(output.gates), output.weights, output.choice)  # [U, L] ones


@contextmanager
def all_gates_open(model: TaskGraphModel) -> Iterator[None]:
    """Inside the block every gate the router gives is 1 (a forward hook on ``model.router``)."""
    handle = model.router.register_forward_hook(_open_gates)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def _forward_ms(model: TaskGraphModel, batch: Batch, open_all: bool) -> float:
    cuda = model.device.type == "cuda"
    with all_gates_open(model) if open_all else nullcontext():
        if cuda:
            torch.cuda.synchronize(model.device)
        start = time.perf_counter()
        model(batch.input_ids, batch.attention_mask, batch.task_ids, distinct=(batch.tasks, batch.inverse))
        if cuda:
            torch.cuda.synchronize(model.device)
        return (time.perf_counter() - start) * 1000.0


def time_gating(model: TaskGraphModel, batches: Sequence[Batch], rounds: int = 5) -> GatingTiming:
    """Median inference time of a pass over ``batches``, gated vs all gates open (see the module docstring).

    Raises:
        ValueError: ``rounds < 1`` or no batch.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    if not batches:
        raise ValueError("no batch to time")
    on_device = [b.to(model.device) for b in batches]
    totals: dict[bool, list[float]] = {False: [], True: []}
    with inference_mode_of(model):
        for batch in on_device:  # warm-up: allocator, kernels, caches
            for open_all in (False, True):
                _forward_ms(model, batch, open_all)
        for r in range(rounds):
            spent = {False: 0.0, True: 0.0}
            for i, batch in enumerate(on_device):
                for open_all in (False, True) if (r + i) % 2 == 0 else (True, False):
                    spent[open_all] += _forward_ms(model, batch, open_all)
            for open_all, ms in spent.items():
                totals[open_all].append(ms)
    return GatingTiming(
        statistics.median(totals[False]),
        statistics.median(totals[True]),
        rounds,
        len(on_device),
        sum(b.size for b in on_device),
    )
