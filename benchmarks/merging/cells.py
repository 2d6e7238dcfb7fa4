"""The cells of ``python -m benchmarks merge``, each resumable: done when its record file exists.

Layout under ``OUT/<suite>/``::

    single/<mode>/lr<lr>/seed<k>/<task>/     a single-task run (taskgraph.train) + eval.json     (LoRA, L-LoRA)
    merge/<mode>/seed<k>/heads-only.json     every task's head on the bare base (ΔW = 0), test accuracy
    merge/<mode>/seed<k>/T<T>-<i>/<method>.json   one merge: the chosen values, the grid's validation scores,
                                                   test accuracy per task
    together/<router>/seed<k>/T<T>-<i>/      the subset trained together by a router (taskgraph.train) + eval.json

Training cells reuse the quality bench's (:func:`benchmarks.quality.cells.run_train_cell`: resume from
a checkpoint, a failure recorded, another spec refused). A merge cell reads the group's single-task runs
(one mode, one seed) in a :class:`taskgraph.merge.MergeSession`, loaded once per group, merges the subset in memory
(λ / density / p chosen on the validation split) and scores the test split.
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
from taskgraph.merge import MergeSession
from taskgraph.sweep import read_record

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


def run_merge_cell(
    path: Path,
    group: Callable[[], MergeSession],
    tasks: Sequence[str],
    label: str,
    method: str,
    params: Mapping[str, Any],
    say: Say,
    where: str = "",
) -> tuple[dict[str, Any], bool]:
    """One merge of ``tasks`` by the bench method ``label`` (``method`` with ``params``; the group's session is loaded
    only when the cell must run); ``(record, ran)``. ``where`` prefixes the progress line."""
    held = read_record(path)
    if held is not None:
        return held, False
    start = time.perf_counter()
    record: dict[str, Any] = {"label": label, "method": method, "params": dict(params), "tasks": list(tasks)}
    record.update(group().merge(tasks, method, params).as_dict())
    record["seconds"] = time.perf_counter() - start
    write_text(path, json.dumps(record, indent=2) + "\n")
    say(
        f"{where}{label} {'+'.join(tasks) if len(tasks) <= 3 else f'{len(tasks)} tasks'}: test "
        f"{sum(record['test'].values()) / len(tasks):.3f} ({record['seconds']:.1f} s)"
    )
    return record, True
