"""Training a :class:`~taskgraph.model.TaskGraphModel` with ``transformers.Trainer``, step for step as
``taskgraph train``: :func:`trainer_inputs` builds the model and data, :class:`TaskGraphTrainer` trains them and
writes a run folder.

Imported on first use from :mod:`taskgraph.train` (``transformers.Trainer`` takes seconds to import, and
``taskgraph train`` never needs it).
"""

from taskgraph.train.hf_trainer.inputs import (
    TaskCollator,
    TaskExamples,
    TaskGraphSampler,
    TrainerInputs,
    trainer_inputs,
)
from taskgraph.train.hf_trainer.trainer import TaskGraphTrainer

__all__ = ["TaskCollator", "TaskExamples", "TaskGraphSampler", "TaskGraphTrainer", "TrainerInputs", "trainer_inputs"]
