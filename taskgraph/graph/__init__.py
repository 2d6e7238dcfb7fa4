"""The graph stage: tasks, declared relations and the adapter inventory as graphs.

``to_hetero`` (the PyTorch Geometric view) lives in :mod:`taskgraph.graph.hetero`; it is not
imported here so that reading specs and exporting graphs does not pay for importing PyG.
"""

from taskgraph.graph.taskgraph import TaskGraph
from taskgraph.graph.vocab import EDGE_TYPES, NODE_TYPES

__all__ = ["EDGE_TYPES", "NODE_TYPES", "TaskGraph"]
