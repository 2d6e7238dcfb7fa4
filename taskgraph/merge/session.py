"""Many merges of the same runs' tasks, each chosen on validation and scored on test, in memory.

    session = MergeSession(["runs/a", "runs/b", "runs/c"])          # loaded and encoded once
    outcome = session.merge(["a", "b"], "ties", {"lambda": "auto"})  # λ chosen on val, then scored on test
    outcome.test                                                      # {"a": 0.91, "b": 0.88}

:func:`~taskgraph.merge.merge_runs` merges once and builds (and writes) the merged model. A study of merging — every
method over many task subsets — merges hundreds of times, so a session reads the sources
(:func:`~taskgraph.merge.sources.load_sources`: each task folded exactly into its task vector), encodes every task's
validation and test splits once, and each :meth:`MergeSession.merge` only merges the chosen tasks' updates at every
point of the method's grid, keeps the point with the best mean validation accuracy
(:func:`~taskgraph.merge.select.search`, as ``merge_runs`` chooses) and scores the test split with each task's own
head (:class:`~taskgraph.merge.evaluate.MergedScorer`). Nothing is built or written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from taskgraph.data import TaskData, tokenizer_pad_id
from taskgraph.merge.build import scoring_model, task_heads
from taskgraph.merge.evaluate import MergedScorer
from taskgraph.merge.params import MergeError
from taskgraph.merge.run import resolve_method
from taskgraph.merge.select import search
from taskgraph.merge.sources import MergeSources, encode_split, load_sources
from taskgraph.model.device import resolve_device


@dataclass(frozen=True)
class MergeOutcome:
    """One merge of a :class:`MergeSession`.

    Args:
        chosen: the values merged (those given as ``auto`` chosen on the validation split).
        val_mean: the chosen point's mean validation accuracy; val: its accuracy per task.
        grid: every grid point scored, ``{"values", "val_accuracy", "val_mean"}`` each.
        test: each task's test accuracy under the chosen merge; test_rows: the test rows each task scored.
        rank: the largest rank of the merged updates.
    """

    chosen: dict[str, Any]
    val_mean: float
    val: dict[str, float]
    grid: list[dict[str, Any]]
    test: dict[str, float]
    test_rows: dict[str, int]
    rank: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, the fields by name."""
        return {
            "chosen": self.chosen,
            "val_mean": self.val_mean,
            "val": self.val,
            "grid": self.grid,
            "test": self.test,
            "test_rows": self.test_rows,
            "rank": self.rank,
        }


class MergeSession:
    """The tasks of ``runs``, loaded once, for any number of in-memory merges of any of them.

    Args:
        runs: one routed multi-task run, or several runs from one shared initialisation (as ``merge_runs`` takes).
        val_examples: the validation rows scored per task while choosing the ``auto`` values (default: all). The
            test split is always scored whole.
        device: ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        MergeError, CheckpointError: the sources (see ``merge_runs``). DataError: a task's validation or test
            split cannot be read.
    """

    def __init__(
        self, runs: Sequence[str | os.PathLike[str]], *, val_examples: int | None = None, device: str = "cpu"
    ) -> None:
        self.sources = load_sources(runs, device=resolve_device(device))
        self.pad_id = tokenizer_pad_id(self.sources.model.tokenizer)
        self.val: dict[str, TaskData] = {}
        self.test: dict[str, TaskData] = {}
        for index, name in enumerate(self.sources.task_names):
            self.val[name] = encode_split(self.sources, index, "val", self.pad_id, val_examples)
            self.test[name] = encode_split(self.sources, index, "test", self.pad_id)

    @property
    def task_names(self) -> list[str]:
        return self.sources.task_names

    def heads_only(self) -> dict[str, float]:
        """Every task's test accuracy with its own head on the bare base (ΔW = 0): the floor a merge lifts."""
        names = self.task_names
        scorer = self._scorer(self.sources)
        scorer.apply({})
        return {n: s["accuracy"] for n, s in zip(names, scorer.score_all([self.test[n] for n in names]))}

    def merge(self, tasks: Sequence[str], method: str, params: Mapping[str, Any] | None = None) -> MergeOutcome:
        """Merge ``tasks`` with ``method`` (a kind of :data:`taskgraph.registry.MERGES`; ``params`` as
        ``merge_runs`` takes them, ``auto`` values chosen on validation) and score the test split.

        Raises:
            MergeError: an unknown method or task, or bad parameters.
        """
        merger, parsed = resolve_method(method, params)
        unknown = [t for t in tasks if t not in self.val]
        if unknown or len(set(tasks)) != len(tasks) or not tasks:
            raise MergeError(
                f"merge of tasks {list(tasks)}: give distinct tasks of the session, one or more; it holds "
                f"{self.task_names}" + (f" (unknown: {unknown})" if unknown else "")
            )
        sources = self.sources.subset(tasks)
        scorer = self._scorer(sources)
        best, points, merged = search(sources, merger, parsed, scorer, [self.val[t] for t in tasks])
        scorer.apply(merged)
        scores = scorer.score_all([self.test[t] for t in tasks])
        return MergeOutcome(
            chosen=points[best].values,
            val_mean=points[best].mean,
            val=points[best].accuracy,
            grid=[p.as_dict() for p in points],
            test={t: s["accuracy"] for t, s in zip(tasks, scores)},
            test_rows={t: int(s["n"]) for t, s in zip(tasks, scores)},
            rank=max(u.rank for u in merged.values()),
        )

    def _scorer(self, sources: MergeSources) -> MergedScorer:
        lm = scoring_model(sources) if any(t.spec.generative for t in sources.tasks) else None
        return MergedScorer(sources.model, task_heads(sources), pad_id=self.pad_id, lm=lm)

    def __repr__(self) -> str:
        return f"MergeSession(runs={len(self.sources.runs)}, tasks={self.task_names})"
