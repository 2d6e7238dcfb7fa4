"""Model fusion: merge the exact per-task updates of LoRA runs into one model (docs/methods.md, "Merging").

Importing this package registers the built-in merge methods in :data:`taskgraph.registry.MERGES`:
``task-arithmetic``, ``average``, ``ties``, ``dare``, ``dare-ties`` (all on the exact updates
``ΔW_t = s · B_t A_t``) and ``subspace`` (one rank-r LoRA through a shared subspace).

:func:`merge_runs` merges once and writes the merged run; :class:`MergeSession` loads runs once for many in-memory
merges of their tasks (each chosen on validation and scored on test), as a study of merging needs.
"""

from taskgraph.merge.average import Average, AverageParams, average
from taskgraph.merge.dare import Dare, DareParams, dare, drop_and_rescale, drop_mask
from taskgraph.merge.dare_ties import DareTies, DareTiesParams, dare_ties
from taskgraph.merge.lowrank import LowRank, concat, factorize, truncate
from taskgraph.merge.method import ExactMerge, MergeMethod
from taskgraph.merge.params import MergeError, MergeParams, parse_params
from taskgraph.merge.run import MergeResult, merge_runs, write_merge_run  # noqa: E402  (after the methods)
from taskgraph.merge.session import MergeOutcome, MergeSession
from taskgraph.merge.subspace import Subspace, SubspaceParams, shared_bases, subspace_merge
from taskgraph.merge.task_arithmetic import TaskArithmetic, TaskArithmeticParams, task_arithmetic
from taskgraph.merge.ties import Ties, TiesParams, disjoint_mean, elect_sign, ties, trim_magnitude

__all__ = [
    "LowRank",
    "MergeError",
    "MergeMethod",
    "MergeOutcome",
    "MergeParams",
    "MergeResult",
    "MergeSession",
    "average",
    "merge_runs",
    "dare",
    "dare_ties",
    "factorize",
    "parse_params",
    "subspace_merge",
    "task_arithmetic",
    "ties",
]
