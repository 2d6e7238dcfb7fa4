"""``evaluate_run``: per-task quality, adapter compute and the learned structure of a trained run.

    result = evaluate_run("runs/example", split="test")       # or: taskgraph eval runs/example --json out.json

The model is ``RUN/model`` (or ``RUN/best`` with ``which="best"``); the data is the run's own spec
read again, relative paths resolved against the ``base_dir`` that ``RUN/train.json`` records (the
spec file's folder at training time). Predictions are the argmax over the task's own classes, in
eval mode (inference routing, no dropout). A generative task is scored by what it writes
(:mod:`taskgraph.eval.generative`): a ``choices`` task's accuracy and macro-F1 by rank classification, a
free-text task's ``exact_match``, ``token_f1`` and ``rouge_l`` of greedy routed generation in place of
accuracy and macro-F1. The result is a plain JSON-ready dict::

    {"run", "model_dir", "which", "split", "router", "layers", "adapter_flops_per_token_all_open",
     "tasks": {name: {"n", "accuracy", "macro_f1", "active_adapter_fraction", "adapter_flops_per_token"}},
     "mean": {the same keys, unweighted mean over the tasks that have them; "n" is the total},
     "ground_truth": "planted" | "family" | None,                       (taskgraph.eval.ground_truth)
     "allocation": {"precision", "random", "per_layer_head"} | None,     (taskgraph.eval.structure)
     "relations": {"auroc": {"learned", "routing_cosine", "gradient_cosine", "random"}, "pairs",
                   "positives", "learned": [{"a", "b", "weight", "declared"}, ...] | None},
     "gradient_alignment": {"tasks", "matrix", "mean_related", "mean_unrelated", "mean"} | None,
     "timing": {"gated_ms", "all_open_ms", "ratio", "rounds", "batches", "examples"} | None,  (taskgraph.eval.timing)
     "notes": [why a section was left out]}

``tasks=`` restricts the per-task scores, the mean and the timing to those tasks; allocation,
relations and gradient alignment always cover every task of the graph. Gradient alignment uses the
evaluated split's data (a few seeded batches per task: :mod:`taskgraph.eval.gradients`).

Compute conventions: see :mod:`taskgraph.metrics.compute`; F1 conventions:
:mod:`taskgraph.metrics.classification`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from taskgraph.data import TaskData, encode_examples, task_batches, tokenizer_pad_id
from taskgraph.data.base import build_source
from taskgraph.errors import DataError, ModelError
from taskgraph.eval.generative import FREE_TEXT_METRICS, generative_split_batches, score_generative_split
from taskgraph.eval.gradients import model_gradient_alignment
from taskgraph.eval.ground_truth import declared_mask, ground_truth
from taskgraph.eval.structure import alignment_section, allocation_section, learned_relation_matrix, relations_section
from taskgraph.eval.timing import time_gating
from taskgraph.metrics import (
    accuracy,
    active_adapter_fraction,
    adapter_flops_per_token,
    layer_shapes,
    macro_f1,
    routing_cosine,
)
from taskgraph.model import TaskGraphModel
from taskgraph.model.device import resolve_device
from taskgraph.model.learned import learned_routing
from taskgraph.model.modes import inference_mode_of
from taskgraph.model.rundir import find_model_dir
from taskgraph.run_records import read_summary
from taskgraph.threads import torch_threads
from taskgraph.train.progress import BatchProgress

EVAL_SPLITS = ("val", "test")
SUMMARY = "train.json"  # written by taskgraph.train.loop; holds "base_dir"
TIMING_ROUNDS = 5
MEAN_KEYS = ("accuracy", "macro_f1", *FREE_TEXT_METRICS, "active_adapter_fraction", "adapter_flops_per_token")


def evaluate_run(
    run_dir: str | os.PathLike[str],
    split: str = "test",
    which: str = "model",
    device: str = "cpu",
    batch_size: int = 64,
    base_dir: str | os.PathLike[str] | None = None,
    *,
    tasks: Sequence[str] | None = None,
    timing: bool = True,
    alignment: bool = True,
    timing_rounds: int = TIMING_ROUNDS,
    threads: int | None = None,
) -> dict[str, Any]:
    """Per-task accuracy, macro-F1 and adapter compute of the run in ``run_dir`` on ``split``, and how its
    learned routing and relations compare with the ground truth (see the module docstring).

    Args:
        run_dir: a run directory (``taskgraph train --out RUN``) or one of its model folders.
        split: ``"val"`` or ``"test"``.
        which: ``"model"`` (final) or ``"best"`` (best validation).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        batch_size: examples per forward pass (and per timed batch).
        base_dir: where the spec's relative data paths resolve (default: the one ``train.json`` records).
        tasks: score only these tasks (names; default: all). Relations and allocation still cover all.
        timing: time inference with the gates as learned vs all open (``"timing"``; else None).
        alignment: compute the tasks' gradient alignment (``"gradient_alignment"`` and the
            gradient-cosine AUROC; else None).
        timing_rounds: timed rounds of each mode.
        threads: torch's CPU threads while it evaluates; None (default) takes the cores the machine's load
            leaves free (:mod:`taskgraph.threads`); the caller's count is restored after.

    Raises:
        CheckpointError: ``run_dir`` holds no saved model. DataError: the split's data cannot be read.
        ModelError: a bad device, a broken router, or a name in ``tasks`` that is not a task of the run.
        ValueError: a bad ``split`` / ``batch_size`` / ``timing_rounds``.
    """
    if split not in EVAL_SPLITS:
        raise ValueError(f"split {split!r}: choose from {list(EVAL_SPLITS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if timing_rounds < 1:
        raise ValueError(f"timing_rounds must be at least 1, got {timing_rounds}")
    with torch_threads(threads):  # a bad count is refused before anything is read
        model_dir = find_model_dir(run_dir, which)
        dev = resolve_device(device)
        model = TaskGraphModel.from_pretrained(model_dir, device=dev)
        names = model.task_names
        selected = select_tasks(names, tasks)
        base = Path(base_dir) if base_dir is not None else recorded_base_dir(Path(run_dir), model_dir)
        pad_id = tokenizer_pad_id(model.tokenizer)
        notes: list[str] = []
        data = {t: _load(model, t, split, base, pad_id, run_dir) for t in selected}
        if alignment:
            for t in (t for t in range(len(names)) if t not in data):
                try:
                    data[t] = _load(model, t, split, base, pad_id, run_dir)
                except DataError as exc:
                    notes.append(f"gradient alignment left out: {exc}")
                    alignment = False
                    break

        routing = learned_routing(model)
        gates = routing.gates  # [T, L]
        shapes = layer_shapes(model.adapted)
        active = active_adapter_fraction(gates)  # [T]
        flops = adapter_flops_per_token(gates, shapes)  # [T]

        scores: dict[str, dict[str, Any]] = {}
        batches = sum(split_batches(model, data[t], batch_size) for t in selected)
        progress = BatchProgress(f"eval {split}", batches, tasks=len(selected))  # a line every 10 s of a long one
        for t in selected:
            progress.task(names[t])
            scores[names[t]] = {
                **score_split(model, data[t], pad_id=pad_id, batch_size=batch_size, progress=progress),
                "active_adapter_fraction": float(active[t]),
                "adapter_flops_per_token": float(flops[t]),
            }
        mean = mean_scores(scores)

        truth = ground_truth(model.spec)
        gradient_cos = (
            model_gradient_alignment(model, [data[t] for t in range(len(names))], pad_id=pad_id) if alignment else None
        )  # [T, T]
        routing_cos = routing_cosine(routing.weights, routing.gates)  # [T, T]
        relations = relations_section(
            truth, declared_mask(model.spec), learned_relation_matrix(model), routing_cos, gradient_cos
        )
        gating = None
        if timing and not model.router.has_gates:
            notes.append(
                f"timing left out: router {model.spec.router.kind} has no gates (every gate is 1), so gated "
                "and all-open inference are the same computation"
            )
        elif timing:
            batches = [next(task_batches(data[t], batch_size, pad_id)) for t in selected if len(data[t])]
            gating = time_gating(model, batches, rounds=timing_rounds).as_dict() if batches else None
        return {
            "run": str(run_dir),
            "model_dir": str(model_dir),
            "which": which,
            "split": split,
            "router": model.spec.router.kind,
            "layers": len(shapes),
            "adapter_flops_per_token_all_open": float(sum(s.flops_per_token for s in shapes)),
            "tasks": scores,
            "mean": mean,
            "ground_truth": truth.kind if truth is not None else None,
            "allocation": allocation_section(routing, truth),
            "relations": relations,
            "gradient_alignment": alignment_section(names, gradient_cos, truth) if gradient_cos is not None else None,
            "timing": gating,
            "notes": notes,
        }


def select_tasks(names: Sequence[str], tasks: Sequence[str] | None) -> list[int]:
    """The ids (in the run's task order) of ``tasks``, every task for None.

    Raises:
        ModelError: a name that is not a task of the run (listing the tasks), or an empty selection.
    """
    if tasks is None:
        return list(range(len(names)))
    if isinstance(tasks, str):
        tasks = [tasks]
    unknown = [t for t in tasks if t not in names]
    if unknown:
        raise ModelError(
            f"unknown task{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the run's tasks are {list(names)}"
        )
    if not tasks:
        raise ModelError(f"no task selected; the run's tasks are {list(names)}")
    wanted = set(tasks)
    return [t for t, name in enumerate(names) if name in wanted]


def _load(
    model: TaskGraphModel, task_id: int, split: str, base: Path, pad_id: int, run_dir: str | os.PathLike[str]
) -> TaskData:
    """One task's ``split``, encoded like training encodes it."""
    task = model.spec.tasks[task_id]
    try:
        examples = build_source(task, base).load(split)
        lm = model.lm_info()
        return encode_examples(
            examples,
            task_id,
            tokenizer=model.tokenizer,
            pad_id=pad_id,
            max_length=model.spec.model.max_length,
            vocab_size=model.base.get_input_embeddings().num_embeddings,
            target=None if lm is None else lm.for_task(task),
        )
    except DataError as exc:
        raise DataError(
            f"run {str(run_dir)!r}: cannot read the {split!r} split of its data (paths resolve "
            f"against {str(base)!r}): {exc}"
        ) from None


@torch.no_grad()
def predict_split(
    model: TaskGraphModel, data: TaskData, *, pad_id: int, batch_size: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predictions [N], labels [N])`` of one task's examples, argmax over the task's own classes.

    The model is put in eval mode here (inference routing, no dropout); every module's mode is restored after.
    """
    num_labels = model.num_labels[data.task_id]
    preds = []
    with inference_mode_of(model):
        for batch in task_batches(data, batch_size, pad_id):
            batch = batch.to(model.device)
            logits = model(
                batch.input_ids, batch.attention_mask, batch.task_ids, distinct=(batch.tasks, batch.inverse)
            ).logits  # [b, C_max]
            preds.append(logits[:, :num_labels].float().argmax(dim=-1).cpu())  # [b]
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)  # [N]
    return pred, data.labels.clone()


def mean_scores(scores: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every metric's unweighted mean over the tasks that have it (a free-text task has no accuracy, a
    classification task no exact match), in the order of :data:`MEAN_KEYS`; ``"n"`` is the total."""
    mean: dict[str, Any] = {}
    for key in MEAN_KEYS:
        values = [r[key] for r in scores.values() if key in r]
        if values or (not scores and key not in FREE_TEXT_METRICS):  # no task: zeros, as always
            mean[key] = sum(values) / max(1, len(values))
    mean["n"] = sum(r["n"] for r in scores.values())
    return mean


def score_split(
    model: TaskGraphModel,
    data: TaskData,
    *,
    pad_id: int,
    batch_size: int = 64,
    progress: BatchProgress | None = None,
) -> dict[str, Any]:
    """``{"n", "accuracy", "macro_f1"}`` of one task's examples (:func:`predict_split`'s predictions); a generative
    task's scores by what it writes (:func:`~taskgraph.eval.generative.score_generative_split`). ``progress``
    advances by each of its :func:`split_batches`."""
    advance = progress.advance if progress is not None else None
    if data.targets is not None:
        return score_generative_split(model, data, batch_size=batch_size, advance=advance)
    pred, target = predict_split(model, data, pad_id=pad_id, batch_size=batch_size)
    if progress is not None:
        progress.advance(split_batches(model, data, batch_size))
    return {
        "n": len(data),
        "accuracy": accuracy(pred, target),
        "macro_f1": macro_f1(pred, target, model.num_labels[data.task_id]),
    }


def split_batches(model: TaskGraphModel, data: TaskData, batch_size: int) -> int:
    """The forward passes or generation batches :func:`score_split` takes on ``data``."""
    if data.targets is not None:
        return generative_split_batches(model, data, batch_size)
    return math.ceil(len(data) / batch_size)


def recorded_base_dir(run_dir: Path, model_dir: Path) -> Path:
    """The ``base_dir`` that ``train.json`` of the run records (beside or above the model folder); else ``.``.

    A ``train.json`` that is there but is not a regular file of the right shape is a CheckpointError naming
    it and its field (:func:`taskgraph.run_records.read_summary`), not a silent ``.``. A run folder may come
    from another machine: a recorded folder that is not an absolute path to an existing directory here is not
    followed (relative data paths then resolve from the current directory; ``base_dir=`` / ``--base-dir``
    names the right one).
    """
    for folder in (run_dir, model_dir.parent):
        summary = folder / SUMMARY
        if os.path.lexists(summary):
            recorded = read_summary(summary).base_dir
            if recorded is not None and Path(recorded).is_absolute() and Path(recorded).is_dir():
                return Path(recorded)
    return Path(".")
