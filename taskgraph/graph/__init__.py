"""The graph stage: tasks, declared relations and the adapter inventory as graphs.

``to_hetero`` (the PyTorch Geometric view) lives in :mod:`taskgraph.graph.hetero`; it is not
imported here so that reading specs and exporting graphs does not pay for importing PyG.
"""

from taskgraph.graph.taskgraph import TaskGraph
from taskgraph.graph.vocab import ADAPTER, EDGE_TYPES, LAYER, NODE_TYPES, TASK, adapter_node, layer_node, task_node

__all__ = [
    "ADAPTER",
    "EDGE_TYPES",
    "LAYER",
    "NODE_TYPES",
    "TASK",
    "TaskGraph",
    "adapter_node",
    "layer_node",
    "task_node",
]
