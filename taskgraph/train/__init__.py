"""The train stage: multi-task batches, AdamW groups with a warm-up + cosine schedule, validation,
atomic checkpoints with bit-exact resume, and the one training loop (:func:`train`).

``TaskGraphTrainer``, ``TrainerInputs`` and ``trainer_inputs`` (training with ``transformers.Trainer``:
:mod:`taskgraph.train.hf_trainer`) are imported on first use: ``transformers.Trainer`` takes seconds to import.
"""

from typing import Any

from taskgraph.lazy import lazy_api
from taskgraph.train.batches import MultiTaskSampler, load_model_data, load_task_data, sampling_probabilities
from taskgraph.train.distributed import ProcessPlace, process_place
from taskgraph.train.evaluate import EvalResult, evaluate
from taskgraph.train.launch import check_before_joining, launch, record_failure
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
    "ProcessPlace",
    "TaskGraphTrainer",
    "TrainResult",
    "TrainerInputs",
    "TrainingError",
    "check_before_joining",
    "evaluate",
    "launch",
    "list_checkpoints",
    "load_model_data",
    "load_task_data",
    "process_place",
    "read_checkpoint",
    "record_failure",
    "spec_hash",
    "train",
    "trainer_inputs",
]

__getattr__, __dir__ = lazy_api(__name__, LAZY, globals(), None)
