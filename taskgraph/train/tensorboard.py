"""Training curves in TensorBoard (``training.report_to: [tensorboard]``), beside ``RUN/log.jsonl``.

``log.jsonl`` stays the source of truth (plots, resume and reports read it); this writes the same run,
as it trains, with PyTorch's own :class:`torch.utils.tensorboard.SummaryWriter` into ``RUN/tensorboard/``
so ``tensorboard --logdir runs`` shows every run side by side. Scalars (tag: what):

==============================  =====================================================================
``loss/total``                  the training loss of the step (task loss + router regulariser)
``loss/task``, ``loss/router``  its two parts
``lr/<group>``                  the learning rate of each optimizer group (``adapters``, ``router``, ``heads``)
``val/mean_accuracy``           at every validation: the mean over tasks ...
``val/loss``                    ... the validation loss ...
``val_accuracy/<task>``         ... and each task's accuracy
``routing/entropy``             mean normalised routing entropy over tasks (0 = one skill, 1 = uniform)
``routing/gate_fraction``       mean inference gate over tasks and adapted modules (1 = every adapter on)
``relations/density``           mean learned relation weight (routers that learn relations only)
==============================  =====================================================================

The routing figures are the model's inference routing (:func:`taskgraph.report.learned_routing`),
taken at every validation. TensorBoard is optional (``pip install "taskgraph[tensorboard]"``); asking
for it without it installed is a :class:`ReportError` before anything is written. A resumed run purges
the events written after its checkpoint (``purge_step``), as ``log.jsonl`` is cut back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from taskgraph.errors import TaskgraphError
from taskgraph.model import TaskGraphModel
from taskgraph.model.learned import LearnsRelations, learned_relations, learned_routing, routing_entropy
from taskgraph.spec import Spec
from taskgraph.train.evaluate import EvalResult

TENSORBOARD = "tensorboard"  # the report_to value and the folder inside the run
INSTALL = 'pip install "taskgraph[tensorboard]"'


class ReportError(TaskgraphError):
    """A report the spec asks for cannot be written (its package is not installed)."""


class TensorBoardLog:
    """Writes a run's curves to TensorBoard; every method does nothing when the spec did not ask for it.

    ``for_spec`` checks the package (before the run writes anything), :meth:`open` starts the writer in
    the run folder, :meth:`train_step` / :meth:`validation` add the scalars, :meth:`close` flushes.
    """

    def __init__(self, writer_class: Any | None) -> None:
        self._writer_class = writer_class
        self._writer: Any | None = None
        self.folder: Path | None = None

    @classmethod
    def for_spec(cls, spec: Spec) -> TensorBoardLog:
        """The log the spec asks for; :class:`ReportError` when it asks for TensorBoard and it is missing."""
        if TENSORBOARD not in spec.training.report_to:
            return cls(None)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ReportError(
                f"training.report_to: [{TENSORBOARD}] needs the tensorboard package, which is not "
                f"installed; install it ({INSTALL}) or drop report_to from the spec"
            ) from None
        return cls(SummaryWriter)

    @property
    def enabled(self) -> bool:
        return self._writer_class is not None

    def open(self, run: Path, resumed_from: int | None) -> None:
        """Start writing into ``run/tensorboard``; a resumed run drops events after step ``resumed_from``."""
        if not self.enabled:
            return
        self.folder = run / TENSORBOARD
        purge = None if resumed_from is None else resumed_from + 1
        self._writer = self._writer_class(log_dir=str(self.folder), purge_step=purge)

    def train_step(
        self, step: int, loss: float, task_loss: float, reg_loss: float, optimizer: torch.optim.Optimizer
    ) -> None:
        """The step's losses and every optimizer group's learning rate."""
        if self._writer is None:
            return
        self._writer.add_scalar("loss/total", loss, step)
        self._writer.add_scalar("loss/task", task_loss, step)
        self._writer.add_scalar("loss/router", reg_loss, step)
        for group in optimizer.param_groups:
            self._writer.add_scalar(f"lr/{group.get('name', 'group')}", float(group["lr"]), step)

    def validation(self, step: int, val: EvalResult, model: TaskGraphModel) -> None:
        """Validation accuracy (mean and per task), loss, and the routing's entropy, gates and relation density."""
        if self._writer is None:
            return
        self._writer.add_scalar("val/mean_accuracy", val.mean_acc, step)
        self._writer.add_scalar("val/loss", val.loss, step)
        for task, acc in val.acc.items():
            self._writer.add_scalar(f"val_accuracy/{task}", acc, step)
        routing = learned_routing(model)
        self._writer.add_scalar("routing/entropy", float(routing_entropy(routing.weights).mean()), step)
        self._writer.add_scalar("routing/gate_fraction", float(routing.gates.mean()), step)
        if isinstance(model.router, LearnsRelations):
            weights = [r.weight for r in learned_relations(model)]
            if weights:
                self._writer.add_scalar("relations/density", sum(weights) / len(weights), step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
