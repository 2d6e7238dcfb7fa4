"""taskgraph: composable multi-task fine-tuning of transformers with graph-routed low-rank adapters.

The public API, one import away::

    from taskgraph import TaskGraph, TaskGraphModel, evaluate_run, adapt_run, merge_runs
    from taskgraph.train import train   # taskgraph.train is the training package, so the function lives there

The data flow, one folder per stage: ``spec`` → ``graph`` → ``routing`` → ``adapters`` → ``model``
→ ``train`` / ``metrics`` / ``eval`` → ``adapt`` / ``merge`` → ``report`` / ``export``; ``cli`` calls only
the public API. Everything below a stage's own ``__all__`` is internal.

Only the spec layer is imported with this package: every other name is imported on first use from the
module :data:`API` names (``import taskgraph.spec`` must not load torch, and this file runs on every
``import taskgraph.<anything>``). The table is explicit; nothing is looked up by a computed name. No API name
is also a subpackage's (``train``): importing the subpackage would rebind the name to the module.
"""

from __future__ import annotations

from typing import Any

from taskgraph.errors import TaskgraphError
from taskgraph.lazy import lazy_api
from taskgraph.spec import Spec, dump_spec, load_spec

__version__ = "0.1.0"

# name -> the module that defines it (imported on first use)
API: dict[str, str] = {
    "TaskGraph": "taskgraph.graph",
    "TaskGraphModel": "taskgraph.model",
    "TrainResult": "taskgraph.train",
    "preflight": "taskgraph.train.preflight",
    "evaluate_run": "taskgraph.eval",
    "adapt_run": "taskgraph.adapt",
    "supported_modes": "taskgraph.adapt",
    "merge_runs": "taskgraph.merge",
    "run_sweep": "taskgraph.sweep",
    "export_graph": "taskgraph.export",
    "run_graph": "taskgraph.report",
    "write_run_plots": "taskgraph.report",
}

__all__ = ["Spec", "TaskgraphError", "__version__", "dump_spec", "load_spec", *API]

__getattr__, __dir__ = lazy_api(__name__, API, globals(), __all__)
