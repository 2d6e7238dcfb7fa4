"""The routing stage: routers turn task ids into per-layer gates and skill weights.

Importing this package registers the built-in router kinds in :data:`taskgraph.registry.ROUTERS`.
"""

from taskgraph.routing.base import Router, Routing
from taskgraph.routing.graph import GraphRouter, GraphRouterParams
from taskgraph.routing.mhr import MHRRouter
from taskgraph.routing.mhr_mu import MHRMuRouter
from taskgraph.routing.poly import PolyRouter, poly_weights
from taskgraph.routing.private import PrivateRouter
from taskgraph.routing.relations import RelationMatrix
from taskgraph.routing.shared import SharedRouter

__all__ = [
    "GraphRouter",
    "GraphRouterParams",
    "MHRMuRouter",
    "MHRRouter",
    "PolyRouter",
    "PrivateRouter",
    "RelationMatrix",
    "Router",
    "Routing",
    "SharedRouter",
    "poly_weights",
]
