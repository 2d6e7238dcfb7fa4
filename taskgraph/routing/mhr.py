"""``mhr``: Multi-Head Routing (docs/methods.md §2) — Poly's routing matrix with H heads.

The adapter layers split the input dim of A and the output dim of B into H heads and mix each
head's K skills with its own weights. The routing math is Poly's (:func:`~taskgraph.routing.poly.poly_weights`),
so MHR with H = 1 is exactly Poly (same initialisation under the same seed, same sampling).
"""

from __future__ import annotations

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing.poly import PolyRouter, PolyRouterParams


@ROUTERS.register("mhr", params=PolyRouterParams)
class MHRRouter(PolyRouter):
    """Multi-head routing: logits ``[T, L, H, K]`` with any H ≥ 1 (H must divide the adapted dims).

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` ones, weights ``[U, L, H, K]``.
        - **parameters:** ``logits [T, L, H, K]`` (``[T, 1, H, K]`` with ``share_layers``).
    """

    @classmethod
    def _check_heads(cls, heads: int) -> None:
        if heads < 1:
            raise ModelError(f"mhr needs at least one head, got adapters.splits={heads}")
