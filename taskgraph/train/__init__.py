"""The train stage: multi-task batches, AdamW groups with a warm-up + cosine schedule, validation,
atomic checkpoints with bit-exact resume, and the one training loop (:func:`train`).

``TaskGraphTrainer``, ``TrainerInputs`` and ``trainer_inputs`` (training with ``transformers.Trainer``:
:mod:`taskgraph.train.hf_trainer`) are imported on first use: ``transformers.Trainer`` takes seconds to import.
"""

import importlib
from typing import Any

from taskgraph.train.batches import (
    Batch,
    MultiTaskSampler,
    TaskData,
    collate,
    encode_examples,
    load_task_data,
    sampling_probabilities,
    task_batches,
)
from taskgraph.train.evaluate import EvalResult, evaluate
from taskgraph.train.loop import TrainingError, TrainResult, train
from taskgraph.train.optim import apply_lr, build_optimizer, lr_multiplier, parameter_groups
from taskgraph.train.run_checkpoint import (
    RunCheckpoint,
    TrainerState,
    list_checkpoints,
    read_checkpoint,
    spec_hash,
    write_checkpoint,
)

# name -> the module that defines it, imported when first used (PEP 562, as the package's own API table)
LAZY: dict[str, str] = {
    "TaskGraphTrainer": "taskgraph.train.hf_trainer",
    "TrainerInputs": "taskgraph.train.hf_trainer",
    "trainer_inputs": "taskgraph.train.hf_trainer",
}

__all__ = [  # the stage's public API; the other names imported above are internal
    "EvalResult",
    "MultiTaskSampler",
    "TaskGraphTrainer",
    "TrainResult",
    "TrainerInputs",
    "TrainingError",
    "evaluate",
    "list_checkpoints",
    "load_task_data",
    "read_checkpoint",
    "spec_hash",
    "train",
    "trainer_inputs",
]


def __getattr__(name: str) -> Any:
    if name not in LAZY:
        raise AttributeError(f"module 'taskgraph.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(LAZY[name]), name)
    globals()[name] = value
    return value
