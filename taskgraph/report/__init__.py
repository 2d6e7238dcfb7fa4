"""Reports of a trained run: its PNG plots and its task graph with the learned weights.

::

    from taskgraph.report import write_run_plots, run_graph, task_view
    write_run_plots("runs/example")                 # runs/example/plots/*.png
    graph = run_graph("runs/example")               # networkx graph for taskgraph.export.export_graph
    graph = task_view(graph, "vader-movie")         # one task's neighbourhood

The stage sits after the model (it reads saved models and the training log) and before the
training loop, which calls :func:`write_run_plots` at the end of a run; it imports nothing of
``train``, ``merge``, ``export`` or ``cli``.
"""

from taskgraph.model.learned import LearnsRelations, Relation, learned_relations, learned_routing, routing_entropy
from taskgraph.model.rundir import find_model_dir
from taskgraph.report.plots import (
    plot_gates,
    plot_loss,
    plot_relations,
    plot_routing,
    plot_val_accuracy,
    routing_paths,
    running_mean,
)
from taskgraph.report.run_graph import load_run_model, run_graph, task_view
from taskgraph.report.run_plots import read_log, relation_matrix, write_run_plots

__all__ = [  # the stage's public API; the other names imported above are internal
    "load_run_model",
    "plot_gates",
    "plot_loss",
    "plot_relations",
    "plot_routing",
    "plot_val_accuracy",
    "read_log",
    "run_graph",
    "task_view",
    "write_run_plots",
]
