"""The train stage: multi-task batches, AdamW groups with a warm-up + cosine schedule, validation,
atomic checkpoints with bit-exact resume, and the one training loop (:func:`train`).
"""

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

__all__ = [  # the stage's public API; the other names imported above are internal
    "EvalResult",
    "MultiTaskSampler",
    "TrainResult",
    "TrainingError",
    "evaluate",
    "list_checkpoints",
    "load_task_data",
    "read_checkpoint",
    "spec_hash",
    "train",
]
