"""When an exact merge's rank explodes: what the merged LoRA costs, and a rank that keeps most of it.

An exact merge keeps the merged update's numerical rank. Task arithmetic of T rank-r updates is at most rank T·r,
but TIES and DARE trim or drop *entries* of the dense ``ΔW`` and a sparse matrix is nearly full rank: the merged
LoRA can be many times the size and adapter FLOPs per token of a task's own. taskgraph keeps the exact merge by
default (truncating is lossy, and what it costs in accuracy depends on the tasks: only their validation scores
tell), and says so when the merged rank ``R`` passes :data:`RANK_GROWTH_FACTOR` times the largest rank of a task's
update, with the rank that keeps :data:`KEEP_SHARE` of the update's energy (squared Frobenius norm over every
module) as the ``--rank`` to try.

Sizes are the merged run's: one rank-``R`` LoRA per module (smaller ranks padded, as the run saves them) against a
task's LoRA in the sources; FLOPs per token are ``Σ_l 2·r_l·(d_in,l + d_out,l)`` (:mod:`taskgraph.metrics.compute`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

from taskgraph.merge.lowrank import LowRank, singular_values
from taskgraph.metrics.compute import LayerShape

RANK_GROWTH_FACTOR = 2  # a note when the merged rank is more than this many times a task's
KEEP_SHARE = 0.9  # the suggested rank keeps at least this share of the merged update's energy


@dataclass(frozen=True)
class RankGrowth:
    """An exact merge whose rank grew well past the tasks' (the ``rank_growth`` entry of ``merge.json``).

    Args:
        rank: R, the merged LoRA's rank. task_rank: the largest rank of a task's update (the sources' LoRA).
        suggested_rank: the smallest rank keeping ``kept_share`` >= :data:`KEEP_SHARE` of the update's energy.
        bytes / task_bytes: the merged LoRA's size, and a task's in the sources.
        flops_per_token / task_flops_per_token: their adapter FLOPs per token.
    """

    rank: int
    task_rank: int
    suggested_rank: int
    kept_share: float
    bytes: int
    task_bytes: int
    flops_per_token: int
    task_flops_per_token: int

    def note(self) -> str:
        """One paragraph for the terminal: the rank reached, what it costs, the ``--rank`` to try."""
        if self.suggested_rank < self.rank:
            advice = (
                f"--rank {self.suggested_rank} keeps {100 * self.kept_share:.0f}% of the update's energy (a "
                "truncated SVD: compare the validation scores it prints)"
            )
        else:
            advice = f"every rank below {self.rank} loses more than {100 * (1 - KEEP_SHARE):.0f}% of its energy"
        return (
            f"note: the exact merge reached rank {self.rank}, where a task's LoRA has rank {self.task_rank}: the merged "
            f"LoRA holds {_size(self.bytes)} (a task's: {_size(self.task_bytes)}) and costs "
            f"{_count(self.flops_per_token)} adapter FLOPs per token (a task's: {_count(self.task_flops_per_token)}); "
            f"{advice} — merge with --rank R for a LoRA of rank R"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "note": self.note()}


def rank_growth(
    merged: Mapping[str, LowRank], task_ranks: Mapping[str, int], factor: float = RANK_GROWTH_FACTOR
) -> RankGrowth | None:
    """The growth of an exact merge, or None when its rank ``R`` is at most ``factor`` times a task's.

    Args:
        merged: module -> the merged update (the run saves every module at the largest rank ``R``).
        task_ranks: module -> the largest rank of a task's update there.
    """
    if not merged:
        return None
    rank = max(u.rank for u in merged.values())
    task_rank = max([1, *task_ranks.values()])
    if rank <= factor * task_rank:
        return None
    first = next(iter(merged.values()))
    width = first.A.element_size()
    shapes = {name: u.shape for name, u in merged.items()}  # (d_out, d_in)
    suggested, kept = rank_for_share([singular_values(u) for u in merged.values()], KEEP_SHARE)
    return RankGrowth(
        rank=rank,
        task_rank=task_rank,
        suggested_rank=suggested,
        kept_share=kept,
        bytes=sum(rank * (d_in + d_out) for d_out, d_in in shapes.values()) * width,
        task_bytes=sum(task_ranks.get(n, 0) * (d_in + d_out) for n, (d_out, d_in) in shapes.items()) * width,
        flops_per_token=sum(LayerShape(d_in, d_out, rank).flops_per_token for d_out, d_in in shapes.values()),
        task_flops_per_token=sum(
            LayerShape(d_in, d_out, task_ranks.get(n, 0)).flops_per_token for n, (d_out, d_in) in shapes.items()
        ),
    )


def rank_for_share(spectra: list[torch.Tensor], share: float) -> tuple[int, float]:
    """``(k, kept)``: the smallest rank ``k`` at which truncating every module keeps ``kept >= share`` of the summed
    energy ``Σ_l Σ_i s_{l,i}²`` (``spectra``: each module's singular values, descending); ``(1, 1.0)`` for zero."""
    width = max(s.numel() for s in spectra)
    kept = torch.zeros(width, dtype=torch.float64)  # [R]: energy kept at rank 1 .. R
    for s in spectra:
        cumulative = (s.double() ** 2).cumsum(0)  # [r_l]
        kept += torch.cat([cumulative, cumulative[-1:].expand(width - s.numel())]) if s.numel() else 0.0
    total = float(kept[-1])
    if total <= 0.0:
        return 1, 1.0
    k = int((kept < share * total).sum()) + 1  # the first rank reaching the share
    k = min(k, width)
    return k, float(kept[k - 1]) / total


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def _count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n}"
