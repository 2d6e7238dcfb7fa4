"""Merge every adapted module of the sources with one method at one hyper-parameter point."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from taskgraph.merge.lowrank import LowRank, concat
from taskgraph.merge.method import MergeMethod
from taskgraph.merge.progress import SILENT, MergeProgress
from taskgraph.merge.sources import MergeSources

SEED_STRIDE = 1_000_003  # module i of a merge seeded s draws from generator seed s · SEED_STRIDE + i


def merge_modules(
    sources: MergeSources,
    method: MergeMethod,
    values: Mapping[str, float],
    *,
    rank: int | None,
    seed: int = 0,
    progress: MergeProgress = SILENT,
) -> dict[str, LowRank]:
    """``{module: merged update}`` for every adapted module, in layer order.

    Each module merges the tasks' task vectors with ``method`` (its own seeded generator for random
    draws); where the sources are L-LoRA runs linearised around ``B₀ ≠ 0`` the mean of the tasks' updates
    at φ₀ is added back (exact, rank + r). ``progress`` hears of the modules done (a line every few seconds).
    """
    merged: dict[str, LowRank] = {}
    for index, module in enumerate(sources.shapes):
        generator = torch.Generator().manual_seed(seed * SEED_STRIDE + index)
        update = method.merge(sources.module_updates(module), values, rank=rank, generator=generator)
        init = sources.module_init(module)
        merged[module] = update if init is None else concat([update, init])
        progress.tick(f"merged {index + 1}/{len(sources.shapes)} modules")
    return merged
