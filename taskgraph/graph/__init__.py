"""The graph stage: tasks, declared relations and the adapter inventory as graphs."""

from taskgraph.graph.hetero import declared_edges, to_hetero
from taskgraph.graph.taskgraph import TaskGraph
from taskgraph.graph.vocab import EDGE_TYPES, NODE_TYPES

__all__ = ["EDGE_TYPES", "NODE_TYPES", "TaskGraph", "declared_edges", "to_hetero"]
