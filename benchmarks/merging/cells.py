"""The cells of ``python -m benchmarks merge``, each resumable: done when its record file exists.

Layout under ``OUT/<suite>/``::

    single/<mode>/lr<lr>/seed<k>/<task>/     a single-task run (taskgraph.train) + eval.json     (LoRA, L-LoRA)
    merge/<mode>/seed<k>/heads-only.json     every task's head on the bare base (ΔW = 0), test accuracy
    merge/<mode>/seed<k>/T<T>-<i>/<method>.json   one merge: the chosen values, the grid's validation scores,
                                                   test accuracy per task
    together/<router>/seed<k>/T<T>-<i>/      the subset trained together by a router (taskgraph.train) + eval.json

Training cells reuse the quality bench's (:func:`benchmarks.quality.cells.run_train_cell`: resume from
a checkpoint, a failure recorded, another spec refused). A merge cell reads the group's single-task runs
(one mode, one seed), merges the subset in memory (:mod:`taskgraph.merge`: λ / density / p chosen on the
validation split) and scores the test split with the same fast scorer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.quality.cells import TrainCell, lr_tag
from taskgraph.atomic import write_text
from taskgraph.sweep.resumable import read_record

Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchCell(TrainCell):
    """A training cell: a single-task run (``router`` holds the mode, ``lora`` / ``llora``) or a subset trained
    together by ``router``; ``what`` says which, for progress lines."""

    what: str = ""

    @property
    def label(self) -> str:
        return f"[{self.suite}] {self.what} lr={self.lr:g} seed {self.seed}"


def single_dir(out: Path, suite: str, mode: str, lr: float, seed: int, task: str) -> Path:
    return out / suite / "single" / mode / lr_tag(lr) / f"seed{seed}" / task


def merge_dir(out: Path, suite: str, mode: str, seed: int) -> Path:
    return out / suite / "merge" / mode / f"seed{seed}"


def together_dir(out: Path, suite: str, router: str, seed: int, subset: str) -> Path:
    return out / suite / "together" / router / f"seed{seed}" / subset


def subset_tag(size: int, index: int) -> str:
    """``T4-1``: subset 1 of size 4."""
    return f"T{size}-{index}"


class MergeGroup:
    """One mode and seed: every pool task's single-task run, loaded once, with its encoded val / test splits.

    Args:
        runs: ``{task: run folder}`` of the pool, in pool order.
        val_examples: cap on the validation rows scored per task while choosing λ / density / p (None: all).
            The test split is always scored whole, as the single-task runs' own ``eval.json`` and the trained
            together cells are, so every accuracy a figure divides is measured on the same rows.
    """

    def __init__(self, runs: Mapping[str, Path], *, val_examples: int | None) -> None:
        from taskgraph.merge.sources import load_sources
        from taskgraph.train.batches import tokenizer_pad_id

        self.sources = load_sources(list(runs.values()))
        self.pad_id = tokenizer_pad_id(self.sources.model.tokenizer)
        self.val = {t.name: _split(self.sources, t, "val", self.pad_id, val_examples) for t in self.sources.tasks}
        self.test = {t.name: _split(self.sources, t, "test", self.pad_id, None) for t in self.sources.tasks}

    def scorer(self, tasks: Sequence[str]) -> Any:
        from taskgraph.merge.build import task_heads
        from taskgraph.merge.evaluate import MergedScorer

        return MergedScorer(self.sources.model, task_heads(self.sources.subset(tasks)), pad_id=self.pad_id)

    def heads_only(self) -> dict[str, float]:
        """Every task's test accuracy with its own head on the bare base (ΔW = 0)."""
        names = self.sources.task_names
        scorer = self.scorer(names)
        scorer.apply({})
        return {n: s["accuracy"] for n, s in zip(names, scorer.score_all([self.test[n] for n in names]))}

    def merge(self, tasks: Sequence[str], method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``tasks`` with ``method`` (``auto`` values chosen on val) and score the test split."""
        from taskgraph.merge.run import resolve_method
        from taskgraph.merge.select import search

        merger, parsed = resolve_method(method, params)
        sources = self.sources.subset(tasks)
        scorer = self.scorer(tasks)
        best, points, merged = search(sources, merger, parsed, scorer, [self.val[t] for t in tasks])
        scorer.apply(merged)
        scores = scorer.score_all([self.test[t] for t in tasks])
        test = {t: s["accuracy"] for t, s in zip(tasks, scores)}
        return {
            "chosen": points[best].values,
            "val_mean": points[best].mean,
            "val": points[best].accuracy,
            "grid": [p.as_dict() for p in points],
            "test": test,
            "test_rows": {t: int(s["n"]) for t, s in zip(tasks, scores)},
            "rank": max(u.rank for u in merged.values()),
        }


def _split(sources: Any, task: Any, split: str, pad_id: int, limit: int | None) -> Any:
    from taskgraph.data.base import build_source
    from taskgraph.train.batches import TaskData, encode_examples

    model = sources.model
    examples = build_source(task.spec, ".").load(split)
    data = encode_examples(
        examples,
        0,
        tokenizer=model.tokenizer,
        pad_id=pad_id,
        max_length=model.spec.model.max_length,
        vocab_size=model.base.get_input_embeddings().num_embeddings,
    )
    if limit is None or len(data) <= limit:
        return data
    return TaskData(data.name, 0, data.ids[:limit], data.lengths[:limit], data.labels[:limit])


def run_merge_cell(
    path: Path,
    group: Callable[[], MergeGroup],
    tasks: Sequence[str],
    label: str,
    method: str,
    params: Mapping[str, Any],
    say: Say,
    where: str = "",
) -> tuple[dict[str, Any], bool]:
    """One merge of ``tasks`` by the bench method ``label`` (``method`` with ``params``; the group is loaded only
    when the cell must run); ``(record, ran)``. ``where`` prefixes the progress line."""
    held = read_record(path)
    if held is not None:
        return held, False
    start = time.perf_counter()
    record: dict[str, Any] = {"label": label, "method": method, "params": dict(params), "tasks": list(tasks)}
    record.update(group().merge(tasks, method, params))
    record["seconds"] = time.perf_counter() - start
    write_text(path, json.dumps(record, indent=2) + "\n")
    say(
        f"{where}{label} {'+'.join(tasks) if len(tasks) <= 3 else f'{len(tasks)} tasks'}: test "
        f"{sum(record['test'].values()) / len(tasks):.3f} ({record['seconds']:.1f} s)"
    )
    return record, True
