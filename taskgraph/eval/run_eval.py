"""``evaluate_run``: accuracy, macro-F1 and adapter compute of a trained run on one data split.

    result = evaluate_run("runs/example", split="test")       # or: taskgraph eval runs/example --json out.json

The model is ``RUN/model`` (or ``RUN/best`` with ``which="best"``); the data is the run's own spec
read again, relative paths resolved against the ``base_dir`` that ``RUN/train.json`` records (the
spec file's folder at training time). Predictions are the argmax over the task's own classes, in
eval mode (inference routing, no dropout). The result is a plain JSON-ready dict::

    {"run", "model_dir", "split", "router", "tasks": {name: {"n", "accuracy", "macro_f1",
     "active_adapter_fraction", "adapter_flops_per_token"}}, "mean": {the same keys, unweighted
     mean over tasks; "n" is the total}, "layers", "adapter_flops_per_token_all_open"}

Compute conventions: see :mod:`taskgraph.metrics.compute`; F1 conventions:
:mod:`taskgraph.metrics.classification`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from taskgraph.errors import DataError
from taskgraph.metrics import accuracy, active_adapter_fraction, adapter_flops_per_token, layer_shapes, macro_f1
from taskgraph.model import TaskGraphModel
from taskgraph.model.device import resolve_device
from taskgraph.model.fold import inference_mode_of
from taskgraph.model.rundir import find_model_dir
from taskgraph.report.run_graph import learned_routing
from taskgraph.train.batches import TaskData, load_task_data, task_batches

EVAL_SPLITS = ("val", "test")
SUMMARY = "train.json"  # written by taskgraph.train.loop; holds "base_dir"


def evaluate_run(run_dir: str | os.PathLike[str], split: str = "test", which: str = "model",
                 device: str = "cpu", batch_size: int = 64,
                 base_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Per-task accuracy, macro-F1 and adapter compute of the run in ``run_dir`` on ``split``.

    Args:
        run_dir: a run directory (``taskgraph train --out RUN``) or one of its model folders.
        split: ``"val"`` or ``"test"``.
        which: ``"model"`` (final) or ``"best"`` (best validation).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        batch_size: examples per forward pass.
        base_dir: where the spec's relative data paths resolve (default: the one ``train.json`` records).

    Raises:
        CheckpointError: ``run_dir`` holds no saved model. DataError: the split's data cannot be read.
        ModelError: a bad device or a broken router. ValueError: a bad ``split`` / ``batch_size``.
    """
    if split not in EVAL_SPLITS:
        raise ValueError(f"split {split!r}: choose from {list(EVAL_SPLITS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    model_dir = find_model_dir(run_dir, which)
    dev = resolve_device(device)
    model = TaskGraphModel.from_pretrained(model_dir, device=dev)
    base = Path(base_dir) if base_dir is not None else recorded_base_dir(Path(run_dir), model_dir)
    pad_id = _pad_id(model.tokenizer)
    try:
        data = load_task_data(model.spec, base, tokenizer=model.tokenizer, pad_id=pad_id,
                              vocab_size=model.base.get_input_embeddings().num_embeddings, splits=(split,))[split]
    except DataError as exc:
        raise DataError(f"run {str(run_dir)!r}: cannot read the {split!r} split of its data (paths resolve "
                        f"against {str(base)!r}): {exc}") from None

    routing = learned_routing(model)
    gates = routing.gates  # [T, L]
    shapes = layer_shapes(model.adapted)
    active = active_adapter_fraction(gates)  # [T]
    flops = adapter_flops_per_token(gates, shapes)  # [T]

    tasks: dict[str, dict[str, Any]] = {}
    for task in data:
        pred, target = predict_split(model, task, pad_id=pad_id, batch_size=batch_size)
        t = task.task_id
        tasks[task.name] = {
            "n": len(task),
            "accuracy": accuracy(pred, target),
            "macro_f1": macro_f1(pred, target, model.num_labels[t]),
            "active_adapter_fraction": float(active[t]),
            "adapter_flops_per_token": float(flops[t]),
        }
    keys = ("accuracy", "macro_f1", "active_adapter_fraction", "adapter_flops_per_token")
    mean: dict[str, Any] = {k: sum(r[k] for r in tasks.values()) / max(1, len(tasks)) for k in keys}
    mean["n"] = sum(r["n"] for r in tasks.values())
    return {
        "run": str(run_dir), "model_dir": str(model_dir), "which": which, "split": split,
        "router": model.spec.router.kind, "layers": len(shapes),
        "adapter_flops_per_token_all_open": float(sum(s.flops_per_token for s in shapes)),
        "tasks": tasks, "mean": mean,
    }


@torch.no_grad()
def predict_split(model: TaskGraphModel, data: TaskData, *, pad_id: int,
                  batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predictions [N], labels [N])`` of one task's examples, argmax over the task's own classes.

    The model is put in eval mode here (inference routing, no dropout); every module's mode is restored after.
    """
    num_labels = model.num_labels[data.task_id]
    preds = []
    with inference_mode_of(model):
        for batch in task_batches(data, batch_size, pad_id):
            batch = batch.to(model.device)
            logits = model(batch.input_ids, batch.attention_mask, batch.task_ids,
                           distinct=(batch.tasks, batch.inverse)).logits  # [b, C_max]
            preds.append(logits[:, :num_labels].float().argmax(dim=-1).cpu())  # [b]
    pred = torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)  # [N]
    return pred, data.labels.clone()


def recorded_base_dir(run_dir: Path, model_dir: Path) -> Path:
    """The ``base_dir`` that ``train.json`` of the run records (beside or above the model folder); else ``.``."""
    for folder in (run_dir, model_dir.parent):
        summary = folder / SUMMARY
        if summary.is_file():
            try:
                recorded = json.loads(summary.read_text(encoding="utf-8")).get("base_dir")
            except (OSError, ValueError, AttributeError):
                recorded = None
            if isinstance(recorded, str):
                return Path(recorded)
    return Path(".")


def _pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else 0 (as training uses)."""
    pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    return int(pad) if pad is not None else 0
