"""``merge_runs``: merge the tasks of LoRA runs into one model, and write it as a run folder.

    result = merge_runs(["runs/sst", "runs/topic"], method="ties", out_dir="runs/merged")
    # or: taskgraph merge runs/sst runs/topic --method ties --out runs/merged

Steps:

1. read the sources (:mod:`taskgraph.merge.sources`): one routed run, or several runs from one shared
   initialisation; fold every selected task exactly into its task vector;
2. for every point of the method's grid (the hyper-parameters given as ``auto``), merge every adapted
   module (:mod:`taskgraph.merge.merging`) and score each task's **validation** split with its own head
   (:mod:`taskgraph.merge.evaluate`); keep the best mean accuracy (:mod:`taskgraph.merge.select`);
3. build the merged model (:mod:`taskgraph.merge.build`): one LoRA per module for every task, no routing,
   every task's head; optionally the update folded into the base weights as well. An exact merge whose rank
   grew well past the tasks' (TIES, DARE: a sparse update is nearly full rank) is recorded with what it costs and
   the ``rank`` to try (:mod:`taskgraph.merge.rank_growth`); the merge stays exact.

It runs on ``threads`` torch threads (:mod:`taskgraph.threads`: by default the cores the machine's load leaves free,
as ``taskgraph train`` does) and writes a progress line per stage and grid point to stderr
(:mod:`taskgraph.merge.progress`; ``TASKGRAPH_PROGRESS=off`` silences them).

The output folder (written by :func:`write_merge_run`, the one writer: a staging folder renamed into
place, the folder claimed and locked while this runs, :mod:`taskgraph.run_folder`) is a run that
``taskgraph eval / predict / export`` read::

    OUT/spec.yaml     the merged spec (shared router, the merged tasks, absolute data paths)
    OUT/model/        save_pretrained of the merged model
    OUT/train.json    {"name", "base_dir", "merged_from", "method"}
    OUT/merge.json    the method, the chosen values, every grid point's validation scores, the sources
    OUT/plain/        with fold_into_base: the base with the update in its weights (transformers
                      save_pretrained + tokenizer) and heads.safetensors / heads.json
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
from torch import nn

from taskgraph.atomic import staging_dir, write_bytes, write_text
from taskgraph.data import TaskData, tokenizer_pad_id
from taskgraph.errors import DataError
from taskgraph.merge.build import (
    build_merged_model,
    check_foldable,
    merged_rank,
    plain_merged_base,
    scoring_model,
    task_heads,
)
from taskgraph.merge.evaluate import MergedScorer
from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.merging import merge_modules
from taskgraph.merge.method import MergeMethod
from taskgraph.merge.params import MergeError, MergeParams, parse_params
from taskgraph.merge.progress import MergeProgress, shown
from taskgraph.merge.rank_growth import rank_growth
from taskgraph.merge.select import GridPoint, search
from taskgraph.merge.sources import MergeSources, encode_split, load_sources
from taskgraph.model import TaskGraphModel
from taskgraph.model.device import resolve_device
from taskgraph.model.fold import save_plain
from taskgraph.registry import MERGES, UnknownKindError
from taskgraph.run_folder import claim_output_run, publish_run
from taskgraph.spec import dump_spec
from taskgraph.threads import torch_threads

SPEC, MODEL, SUMMARY, MERGE_JSON, PLAIN = "spec.yaml", "model", "train.json", "merge.json", "plain"
HEADS, HEADS_JSON = "heads.safetensors", "heads.json"


@dataclass
class MergeResult:
    """What :func:`merge_runs` made (and :func:`write_merge_run` saves).

    Args:
        model: the merged model (``shared`` router: one LoRA for every task, every task's head).
        merged: adapted module name -> the merged update (``ΔW = B @ A``).
        record: everything ``merge.json`` holds (method, chosen values, grid scores, sources, ...).
        plain: with ``fold_into_base``, the plain base with the update folded into its weights.
        out_dir: where it was written (None when not written).
        kept: what taskgraph did not write in the merge run folder it replaced (``overwrite``), kept there.
    """

    model: TaskGraphModel
    merged: dict[str, LowRank]
    record: dict[str, Any]
    plain: nn.Module | None = None
    out_dir: Path | None = None
    grid: list[GridPoint] = field(default_factory=list, repr=False)
    kept: list[str] = field(default_factory=list)

    @property
    def chosen(self) -> dict[str, float]:
        """The hyper-parameters of the merged model (chosen on validation, or as given)."""
        return dict(self.record["chosen"])


def resolve_method(method: str, params: Mapping[str, Any] | None) -> tuple[MergeMethod, MergeParams]:
    """The registered method and its validated parameters; MergeError naming the choices / every problem."""
    try:
        entry = MERGES.get(method)
    except UnknownKindError as exc:
        raise MergeError(f"--method: {exc}") from None
    parsed = parse_params(method, entry.params, dict(params or {}))
    return entry.obj.from_params(parsed), parsed


def merge_runs(
    sources: Sequence[str | os.PathLike[str]],
    *,
    method: str,
    tasks: Sequence[str] | None = None,
    params: Mapping[str, Any] | None = None,
    fold_into_base: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    device: str = "cpu",
    name: str | None = None,
    threads: int | None = None,
) -> MergeResult:
    """Merge the tasks of ``sources`` with ``method`` into one model (see the module docstring).

    Args:
        sources: one routed multi-task run, or several runs from one shared initialisation.
        method: a kind of :data:`taskgraph.registry.MERGES` (``task-arithmetic``, ``ties``, ``dare``, ...).
        tasks: the tasks to merge (default: all).
        params: the method's hyper-parameters, e.g. ``{"lambda": "auto", "density": 0.2, "rank": 8}``
            (``auto``: chosen on the validation split from the method's grid; default: every one ``auto``).
        fold_into_base: also write the update into the base weights (``OUT/plain``).
        out_dir: write the merged run there (claimed before anything is computed).
        overwrite: replace a merge run already in ``out_dir`` (only a folder taskgraph marked as one).
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        name: the merged spec's name (default: the first source's name + ``-merged``).
        threads: torch's CPU threads while it merges; None (default) takes the cores the machine's load leaves free,
            as ``taskgraph train`` does (:mod:`taskgraph.threads`). The caller's thread count is restored after.

    ``record["rank_growth"]`` (``merge.json``) is None, or — for an exact merge (no ``rank``) whose rank passed twice
    a task's — the rank reached, its size and FLOPs against a task's, and a ``rank`` to try, with a ``note`` that
    ``taskgraph merge`` prints.

    Raises:
        MergeError: bad sources, tasks, method or parameters. DataError: a task's validation data is
            needed (a grid to search) and cannot be read. OutputPathError / RunLockedError: ``out_dir``.
    """
    merger, parsed = resolve_method(method, params)
    progress = MergeProgress()
    with torch_threads(threads):  # a bad count is refused before anything is read
        if out_dir is None:
            return _merge(sources, method, merger, parsed, tasks, fold_into_base, device, name, progress)
        out = Path(out_dir)
        with claim_output_run(out, kind="merge", sources=[Path(s) for s in sources], overwrite=overwrite):
            result = _merge(sources, method, merger, parsed, tasks, fold_into_base, device, name, progress)
            progress.say(f"writing {out}")
            write_merge_run(result, out)
    return result


def _merge(
    sources: Sequence[str | os.PathLike[str]],
    method: str,
    merger: MergeMethod,
    params: MergeParams,
    tasks: Sequence[str] | None,
    fold_into_base: bool,
    device: str,
    name: str | None,
    progress: MergeProgress,
) -> MergeResult:
    started = time.perf_counter()
    loaded = load_sources(sources, tasks, device=resolve_device(device))
    if fold_into_base:
        check_foldable(loaded.model)  # before any merge is computed
    where = (
        f"{loaded.runs[0]} (a routed run, every task folded)" if loaded.kind == "routed" else f"{len(loaded.runs)} runs"
    )
    progress.say(f"read {len(loaded.tasks)} tasks of {where} in {progress.elapsed()}")
    grid = params.grid()
    pad_id = tokenizer_pad_id(loaded.model.tokenizer)
    if len(grid) > 1:
        progress.say(f"choosing {', '.join(grid[0])} on the validation split: {len(grid)} grid points")
    val = _validation(loaded, pad_id, required=len(grid) > 1)
    generates = val is not None and any(t.spec.generative for t in loaded.tasks)
    lm = scoring_model(loaded) if generates else None
    scorer = MergedScorer(loaded.model, task_heads(loaded), pad_id=pad_id, lm=lm, progress=progress)
    if val is None:
        values = params.values(grid[0])
        progress.stage = f"merging with {shown(values)}"
        merged = merge_modules(loaded, merger, values, rank=params.rank, seed=params.draw_seed(), progress=progress)
        points, best = [], None
    else:
        best, points, merged = search(loaded, merger, params, scorer, val, progress)
        values = points[best].values
    chose = f"{'chose' if len(grid) > 1 else 'merged with'} {shown(values)}"
    if best is not None:
        chose += f" (val mean {points[best].mean:.4f})"
    progress.say(f"{chose}; building the merged model (rank {merged_rank(merged)})")
    model = build_merged_model(loaded, merged, name)
    plain = plain_merged_base(model, merged) if fold_into_base else None
    task_ranks = {module: max(u.rank for u in loaded.module_updates(module)) for module in loaded.shapes}
    growth = rank_growth(merged, task_ranks) if params.rank is None else None
    record = {
        "method": method,
        "description": merger.description,
        "params": params.model_dump(mode="json", by_alias=True),
        "chosen": values,
        "selected_on": "val" if len(grid) > 1 else None,
        "val_mean": points[best].mean if best is not None else None,
        "val_accuracy": points[best].accuracy if best is not None else None,
        "grid": [p.as_dict() for p in points],
        "rank": merged_rank(merged),
        "rank_requested": params.rank,
        "ranks": {module: update.rank for module, update in merged.items()},
        "rank_growth": None if growth is None else growth.as_dict(),
        "sources": [str(s) for s in loaded.runs],
        "source_kind": loaded.kind,
        "tasks": loaded.task_names,
        "linearized": loaded.linearized,
        "fold_into_base": fold_into_base,
        "seconds": time.perf_counter() - started,
    }
    return MergeResult(model, merged, record, plain, None, points)


def _validation(sources: MergeSources, pad_id: int, *, required: bool) -> list[TaskData] | None:
    """Every task's validation split, encoded like training encodes it (a generative task's targets in the model's
    layout); None when unreadable and not required."""
    out = []
    for index, task in enumerate(sources.tasks):
        try:
            out.append(encode_split(sources, index, "val", pad_id))
        except DataError as exc:
            if not required:
                return None
            raise DataError(
                f"merge: choosing the hyper-parameters given as 'auto' needs every task's validation "
                f"split, and task {task.name!r} of {str(task.run)!r} has none readable: {exc} — give "
                "every value as a number (e.g. --lambda 0.5) to merge without data"
            ) from None
    return out


def write_merge_run(result: MergeResult, out: Path) -> Path:
    """Write ``result`` as the run folder ``out`` (held by :func:`~taskgraph.run_folder.claim_output_run`):
    built in a staging folder beside it, marked as a merge run and renamed into place."""
    staging = staging_dir(out)
    model = result.model
    try:
        write_text(staging / SPEC, dump_spec(model.spec))
        model.save_pretrained(staging / MODEL)
        summary = {
            "name": model.spec.name,
            "base_dir": str(Path(".").resolve()),
            "merged_from": result.record["sources"],
            "method": result.record["method"],
        }
        write_text(staging / SUMMARY, json.dumps(summary, indent=2) + "\n")
        if result.plain is not None:
            _write_plain(staging / PLAIN, result.plain, model)
        record = {**result.record, "out_dir": str(out)}
        write_text(staging / MERGE_JSON, json.dumps(record, indent=2) + "\n")
        result.kept = publish_run(staging, out, kind="merge", name=model.spec.name, method=result.record["method"])
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    result.out_dir = out
    return out


def _write_plain(folder: Path, plain: nn.Module, model: TaskGraphModel) -> None:
    """The folded base (transformers ``save_pretrained``), its tokenizer, and every task's head."""
    save_plain(plain, folder, model.tokenizer)
    heads = {
        f"{name}.{part}": tensor.detach().cpu().contiguous()
        for name, head in zip(model.task_names, model.heads.heads)
        for part, tensor in (("weight", head.weight), ("bias", head.bias))
    }
    write_bytes(folder / HEADS, safetensors.torch.save(heads, metadata={"format": "pt"}))
    info = {
        "pooling": model.spec.model.pooling,
        "max_length": model.spec.model.max_length,
        "tasks": [{"name": n, "num_labels": c} for n, c in zip(model.task_names, model.num_labels)],
        "logits": "head(pool(base(input_ids, attention_mask).last_hidden_state)): "
        "<task>.weight [C, D], <task>.bias [C] in heads.safetensors",
    }
    write_text(folder / HEADS_JSON, json.dumps(info, indent=2) + "\n")
