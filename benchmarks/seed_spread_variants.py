"""The variants of the graph router's seed-spread study (:mod:`benchmarks.graph_seed_spread`): each one change.

A variant is a spec (``configs/routers/graph.yaml`` or ``poly.yaml``), spec overrides, or a patch applied in this
process for training and evaluation (no library file is edited): the read-out's cosine scale, the task features'
initialisation. The chaos checks (``*-jitter``) and the probe's extra configurations are variants too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

GRAPH_SPEC = "configs/routers/graph.yaml"
POLY_SPEC = "configs/routers/poly.yaml"


# ----------------------------------------------------------------------------- patches (this process only)
@contextlib.contextmanager
def cosine_scale(scale: float) -> Iterator[None]:
    """``GraphRouter.cosine_scale`` (the read-out's s, read at every routing) set to ``scale``."""
    from taskgraph.routing import GraphRouter

    old = GraphRouter.cosine_scale
    GraphRouter.cosine_scale = scale  # type: ignore[misc]
    try:
        yield
    finally:
        GraphRouter.cosine_scale = old  # type: ignore[misc]


@contextlib.contextmanager
def task_init(transform: Callable[[Any], Any]) -> Iterator[None]:
    """``GraphRouter.__init__`` followed by ``task_embedding ← transform(task_embedding)`` (no extra random draw).

    Loading a trained run overwrites the embedding with the saved one, so evaluation is unaffected."""
    import torch

    from taskgraph.routing import GraphRouter

    old = GraphRouter.__init__

    def init(self: GraphRouter, *args: Any, **kwargs: Any) -> None:
        old(self, *args, **kwargs)
        with torch.no_grad():
            self.task_embedding.copy_(transform(self.task_embedding.detach().clone()))

    GraphRouter.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        GraphRouter.__init__ = old  # type: ignore[method-assign]


def scaled(factor: float) -> Callable[[Any], Any]:
    return lambda x: x * factor


def orthogonal(x: Any) -> Any:
    """Rows of ``x [T, d]`` (T ≤ d) made orthonormal (QR of the drawn matrix), then scaled to norm √d like randn."""
    import torch

    q, r = torch.linalg.qr(x.T)  # [d, T], [T, T]
    q = q * torch.sign(torch.diagonal(r))[None]  # a unique QR: the same rotation for the same draw
    return q.T * math.sqrt(x.shape[1])  # [T, d]


# ----------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    name: str
    what: str
    spec: str = GRAPH_SPEC
    overrides: tuple[str, ...] = ()
    patch: Callable[[], contextlib.AbstractContextManager[None]] | None = None
    patch_text: str | None = None


VARIANTS = (
    Variant("graph", "baseline: configs/routers/graph.yaml as written"),
    Variant("poly", "Poly on the same universe: configs/routers/poly.yaml as written", spec=POLY_SPEC),
    Variant(
        "cos2",
        "(b) read-out cosine scale 2 (default 5)",
        patch=lambda: cosine_scale(2.0),
        patch_text="COSINE_SCALE = 2.0",
    ),
    Variant(
        "emb0.1",
        "(a) task features start at randn × 0.1",
        patch=lambda: task_init(scaled(0.1)),
        patch_text="task_embedding = 0.1 * randn(T, d)",
    ),
    Variant(
        "emb-orth",
        "(a) task features start orthogonal, row norm √d",
        patch=lambda: task_init(orthogonal),
        patch_text="task_embedding = √d · rows of QR(randn(T, d)ᵀ)",
    ),
    Variant(
        "cos10", "(b) read-out cosine scale 10", patch=lambda: cosine_scale(10.0), patch_text="COSINE_SCALE = 10.0"
    ),
    Variant("rel-fixed", "(c) relations not learned (R = 0.5 throughout)", overrides=("relations.learn=false",)),
    Variant(
        "smooth0",
        "(c) no smoothness term (λ_s 0; the only relation term active at the start)",
        overrides=("router.smoothness=0",),
    ),
    Variant("rlr3e-3", "(d) router rate 3e-3 (default 1e-2)", overrides=("training.lr.router=0.003",)),
    Variant(
        "lr0.01",
        "(e) adapters + heads rate 0.01 (spec 0.03)",
        overrides=("training.lr.adapters=0.01", "training.lr.heads=0.01"),
    ),
    Variant("rlr3e-2", "(e) router rate 3e-2", overrides=("training.lr.router=0.03",)),
    Variant(
        "graph-jitter", "chaos check: graph, adapters' rate × (1 + 1e-5)", overrides=("training.lr.adapters=0.0300003",)
    ),
    Variant(
        "rlr3e-3-jitter",
        "chaos check: rlr3e-3, adapters' rate × (1 + 1e-5)",
        overrides=("training.lr.router=0.003", "training.lr.adapters=0.0300003"),
    ),
    Variant(
        "poly-jitter",
        "chaos check: poly, adapters' rate × (1 + 1e-5)",
        spec=POLY_SPEC,
        overrides=("training.lr.adapters=0.0300003",),
    ),
)
BY_NAME = {v.name: v for v in VARIANTS}
CHAOS_CHECKS = {
    "graph-jitter": "graph",
    "poly-jitter": "poly",
    "rlr3e-3-jitter": "rlr3e-3",
}  # a chaos check and the run it perturbs
POOL = ("graph", "graph-jitter")  # the same graph configuration twice: the reference for a spread
PAIRED_WITH = {
    "poly-jitter": "poly",
    "rlr3e-3-jitter": "rlr3e-3",
}  # a chaos check pairs with its own router; every other variant with graph


PROBE_STEPS = 200
PROBE_SEEDS = (0, 1)
PROBE_WINDOWS = ((0, 50), (50, 100), (100, 200))
PROBE_EXTRA = (
    Variant(
        "rel-fixed-smooth0",
        "relations fixed and no smoothness",
        overrides=("relations.learn=false", "router.smoothness=0"),
    ),
    Variant("rlr1e-6", "router rate 1e-6: a router that barely moves", overrides=("training.lr.router=0.000001",)),
)
PROBE_VARIANTS = ("graph", "poly", "rel-fixed", "smooth0", "rel-fixed-smooth0", "rlr3e-3", "rlr1e-6", "cos2")
PROBE_VARIANTS += ("emb0.1", "lr0.01")
PROBE_BY_NAME = {**BY_NAME, **{v.name: v for v in PROBE_EXTRA}}
