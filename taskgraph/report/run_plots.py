"""All the PNG plots of a training run, written into ``RUN/plots/``.

A run folder (``taskgraph train --out RUN``) holds::

    RUN/spec.yaml        the resolved spec
    RUN/log.jsonl        {"step", "split": "train", "loss", "task_loss", "reg_loss", ...}
                         {"step", "split": "val", "acc": {task: float}, "mean_acc", "loss"}
    RUN/model/           the final model (TaskGraphModel.save_pretrained)
    RUN/best/            the best-validation model

:func:`write_run_plots` reads the log and the final model and writes

=======================  =================================================================
``loss.png``             training loss, task loss, regulariser (+ validation loss points)
``val_accuracy.png``     validation accuracy per task and their mean
``relations.png``        task × task relation weights (learned, or the declared ones)
``routing-l<l>.png``     one task × skill heatmap per adapted layer
``gates.png``            task × layer gates
=======================  =================================================================

(``loss.png`` only when training steps were logged, ``val_accuracy.png`` only when validation was.)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from taskgraph.errors import CheckpointError
from taskgraph.model import TaskGraphModel
from taskgraph.model.learned import LearnsRelations, Relation, learned_relations, learned_routing
from taskgraph.report.plots import plot_gates, plot_loss, plot_relations, plot_routing, plot_val_accuracy
from taskgraph.report.run_graph import load_run_model
from taskgraph.run_records import read_log

LOG = "log.jsonl"
PLOTS_DIR = "plots"


def relation_matrix(task_names: list[str], relations: list[Relation]) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric ``[T, T]`` relation weights (NaN where there is no relation) and the declared mask ``[T, T]``."""
    index = {name: i for i, name in enumerate(task_names)}
    matrix = np.full((len(task_names), len(task_names)), math.nan)  # [T, T]
    declared = np.zeros((len(task_names), len(task_names)), dtype=bool)  # [T, T]
    for rel in relations:
        i, j = index[rel.a], index[rel.b]
        matrix[i, j] = matrix[j, i] = rel.weight
        declared[i, j] = declared[j, i] = rel.declared
    return matrix, declared


def write_run_plots(run_dir: str | os.PathLike[str], model: TaskGraphModel | None = None) -> list[Path]:
    """Write the plots of the run in ``run_dir`` into ``run_dir/plots/``; returns the paths written.

    Args:
        run_dir: the run folder (``taskgraph train --out RUN``).
        model: the trained model, if already in memory (the training loop passes its own);
            default: loaded from ``RUN/model``.

    Raises:
        CheckpointError: ``run_dir`` is not a folder, its log is corrupted, or (with no ``model``
            given) ``RUN/model`` is missing or broken.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"{str(run)!r}: no such run folder; give the folder of `taskgraph train --out RUN`")
    rows = read_log(run / LOG) if os.path.lexists(run / LOG) else []
    if model is None:
        model = load_run_model(run)
    out = run / PLOTS_DIR
    name = model.spec.name
    written: list[Path] = []
    if any(r.get("split") == "train" for r in rows):
        written.append(plot_loss(rows, out / "loss.png", title=f"{name}: training loss"))
    if any(r.get("split") == "val" for r in rows):
        written.append(plot_val_accuracy(rows, out / "val_accuracy.png", title=f"{name}: validation accuracy"))
    names = model.task_names
    learns = isinstance(model.router, LearnsRelations)
    if learns or model.spec.relations.declared:  # a router without relations and none declared: nothing to draw
        matrix, declared = relation_matrix(names, learned_relations(model))
        what = "learned" if learns else f"declared; router {model.spec.router.kind} does not learn relations"
        written.append(
            plot_relations(
                names, matrix, out / "relations.png", declared=declared, title=f"{name}: task relations ({what})"
            )
        )
    routing = learned_routing(model)
    written += plot_routing(
        names,
        routing.weights,
        out,
        layer_names=model.adapted_names,
        title=f"{name}: routing ({model.spec.router.kind})",
    )
    if model.router.has_gates:  # a static router's gates are all 1
        written.append(
            plot_gates(names, routing.gates, out / "gates.png", layer_names=model.adapted_names, title=f"{name}: gates")
        )
    return written
