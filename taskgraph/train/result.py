"""What a training run returns and records: :class:`TrainResult`, the best validation counting the final one,
the summary ``RUN/train.json``, and what rank 0 shares with the other processes of a data-parallel run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from taskgraph.model import TaskGraphModel
from taskgraph.spec import Spec
from taskgraph.train.evaluate import EvalResult
from taskgraph.train.run_setup import BEST, FINAL


@dataclass
class TrainResult:
    """What :func:`train` did: the last step, the final and best validation, speed, and the model."""

    run_dir: Path
    step: int
    completed: bool
    final: EvalResult
    best_step: int | None
    best_mean_acc: float | None
    wall_time_s: float
    examples_per_s: float
    resumed_from: int | None
    model: TaskGraphModel = field(repr=False)
    rank: int = 0  # this process's rank in a data-parallel run (torchrun); rank 0 wrote the run folder
    best_in: str = "best"  # the run folder entry holding the best model: "best", or "model" when it is the final one
    plots: list[Path] = field(default_factory=list)  # RUN/plots/*.png, once the report stage drew them (the CLI does)
    kept: list[str] = field(default_factory=list)  # what taskgraph did not write in the run folder, kept by overwrite


def best_with_final(step: int | None, acc: float | None, final: tuple[int, EvalResult]) -> tuple[int, float, str]:
    """The best validation counting the final one too, and the folder holding that model.

    A run stopped off the validation schedule (``--max-steps``) is validated at its last step; that
    evaluation counts for the reported best, and its model is ``RUN/model`` (``RUN/best`` keeps the best
    scheduled validation, which a resumed run goes on comparing against).
    """
    final_step, result = final
    if step is None or acc is None or (result.mean_acc > acc and final_step != step):
        return final_step, result.mean_acc, FINAL
    return step, acc, BEST


def environment(processes: int, backend: str | None) -> dict[str, Any]:
    """How a run was trained, beside what it reached: processes, backend, threads and the library versions."""
    import platform

    import transformers

    from taskgraph import __version__

    return {
        "processes": processes,
        "backend": backend,
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "taskgraph": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
    }


def run_summary(
    result: TrainResult,
    spec: Spec,
    base_dir: str | os.PathLike[str],
    dev: torch.device,
    processes: int = 1,
    backend: str | None = None,
) -> dict[str, Any]:
    final = result.final
    return {
        "name": spec.name,
        "steps": result.step,
        "target_steps": spec.training.steps,
        "completed": result.completed,
        "resumed_from": result.resumed_from,
        "wall_time_s": result.wall_time_s,
        "examples_per_s": result.examples_per_s,
        "device": str(dev),
        "final_val": {"step": result.step, "acc": final.acc, "mean_acc": final.mean_acc, "loss": final.loss},
        "best_val": None if result.best_step is None else {"step": result.best_step, "mean_acc": result.best_mean_acc},
        "base_dir": str(Path(base_dir).resolve()),
        **environment(processes, backend),
    }


def shared_result(result: TrainResult) -> dict[str, Any]:
    """What rank 0 tells the other processes at the end of a data-parallel run."""
    final = result.final
    return {
        "final": {"acc": final.acc, "mean_acc": final.mean_acc, "loss": final.loss, "examples": final.examples},
        "best_step": result.best_step,
        "best_mean_acc": result.best_mean_acc,
        "best_in": result.best_in,
        "wall_time_s": result.wall_time_s,
    }


def rank_result(
    shared: dict[str, Any],
    run: Path,
    step: int,
    total: int,
    model: TaskGraphModel,
    rank: int,
    resumed_from: int | None,
    examples_per_s: float,
) -> TrainResult:
    """Another rank's :class:`TrainResult`: rank 0's validation, this process's model and speed."""
    return TrainResult(
        run_dir=run,
        step=step,
        completed=step == total,
        final=EvalResult(**shared["final"]),
        best_step=shared["best_step"],
        best_mean_acc=shared["best_mean_acc"],
        best_in=shared["best_in"],
        wall_time_s=shared["wall_time_s"],
        examples_per_s=examples_per_s,
        resumed_from=resumed_from,
        model=model,
        rank=rank,
    )
