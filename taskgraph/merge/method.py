"""What a merge method is: a registered class that merges the T task updates of one module.

    @MERGES.register("ties", params=TiesParams)
    class TiesMerge(ExactMerge):
        def combine(self, deltas, values, generator):           # [T, d_out, d_in] -> [d_out, d_in]
            return ties(deltas, density=values["density"], lam=values["lambda"])

Two kinds (docs/methods.md, "Merging"):

* :class:`ExactMerge` — works on every task's **exact** update ``ΔW_t = s · B_t A_t`` (dense, per
  module), never on A and B separately: the per-factor sum ``(Σ B_t)(Σ A_t)`` has cross terms
  ``B_i A_j`` that no task learned. The merged dense update is re-factored by SVD: at its exact
  numerical rank, or truncated at ``rank`` (merge-then-SVD).
* a LoRA-aware method that works on the factors themselves (``subspace``) overrides :meth:`MergeMethod.merge`.

A method declares the hyper-parameter names its :meth:`combine` reads in ``hyper`` (the grid's names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import Tensor

from taskgraph.merge.lowrank import LowRank, factorize
from taskgraph.merge.params import MergeParams


class MergeMethod:
    """A merge method: :meth:`merge` turns the T updates of one module into one.

    Attributes:
        hyper: the hyper-parameter names :meth:`merge` reads from ``values`` (besides ``rank``).
        description: one line for tables and ``--help``.
    """

    hyper: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    @classmethod
    def from_params(cls, params: MergeParams) -> MergeMethod:
        """The method set up by its validated parameters (most methods read them only through ``values``)."""
        return cls()

    def merge(
        self, updates: Sequence[LowRank], values: Mapping[str, float], *, rank: int | None, generator: torch.Generator
    ) -> LowRank:
        """The merged update of one module.

        Args:
            updates: one task vector per task (``ΔW_t = B_t @ A_t``), same ``(d_out, d_in)``.
            values: the hyper-parameters (``lambda``, ``density``, ...), every name of :attr:`hyper`.
            rank: truncate the result at this rank (None: exact).
            generator: the module's own seeded generator (DARE's drops).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hyper={list(self.hyper)})"


class ExactMerge(MergeMethod):
    """A merge over the dense exact updates: subclasses write :meth:`combine` only."""

    def combine(self, deltas: Tensor, values: Mapping[str, float], generator: torch.Generator) -> Tensor:
        """``[T, d_out, d_in]`` task updates -> the merged ``[d_out, d_in]`` update."""
        raise NotImplementedError

    def merge(
        self, updates: Sequence[LowRank], values: Mapping[str, float], *, rank: int | None, generator: torch.Generator
    ) -> LowRank:
        deltas = torch.stack([u.dense() for u in updates])  # [T, d_out, d_in]
        return factorize(self.combine(deltas, values, generator), rank)
