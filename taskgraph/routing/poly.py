"""``poly``: Polytropon's learned routing matrix over each layer's K skills (docs/methods.md §2).

Each task t holds, for every adapted layer l, logits ``Z[t, l] ∈ R^{H×K}`` (init U(−1e-3, 1e-3)).
Training draws a relaxed Bernoulli (Gumbel-sigmoid) sample ``z = σ((Z + log u − log(1−u)) / τ)``,
``u ~ U(0, 1)``; inference uses ``z = σ(Z)``. The weights are ``w = z / (Σ_k z + ε)``. Poly is
the one-head case; :mod:`taskgraph.routing.mhr` is the same router with H heads.

``share_layers: true`` (a ``router:`` key of poly and mhr) keeps one logits row per task for all
layers — ``logits [T, 1, H, K]``, broadcast to every layer — so a skill index means the same skill in
every layer and each logit gathers the gradient of all L layers; the skills themselves stay per layer.
Off by default (its measurement: the README's Routers section).

Few-shot tasks (:meth:`PolyRouter.add_task_to_learn`) get a new row. A task adapted MHR-μ style
*owns* a skill appended to every inventory: its logit is ``+∞`` in the owner's row and ``−∞`` in every
other row, and the owner's row is ``−∞`` on every other skill, so ``σ`` gives weights exactly one-hot
for the owner and exactly 0 on that skill for everyone else, in training and at inference alike
(``σ'(±∞) = 0``: those logits never move). The logits tensor is the whole record: nothing else has
to be saved for ``from_pretrained`` to rebuild it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import AdaptationPlan, Router, Routing, router_params
from taskgraph.spec.router_kinds import PolyRouterParams

if TYPE_CHECKING:
    from taskgraph.spec.models import RouterSpec

EPS = 1e-12  # as in the authors' code
INIT_RANGE = 1e-3


def poly_weights(logits: Tensor, temperature: float, sample: bool) -> Tensor:
    """Mixture weights from routing logits: relaxed-Bernoulli sample (training) or sigmoid (inference).

    Args:
        logits: ``[..., K]`` routing logits.
        temperature: τ of the relaxed Bernoulli (used only when sampling).
        sample: draw from torch's global RNG (training) instead of the deterministic sigmoid.

    Returns:
        ``[..., K]`` non-negative weights, each row summing to 1 (up to ε).
    """
    if sample:
        tiny = torch.finfo(logits.dtype).eps
        u = torch.rand_like(logits).clamp(tiny, 1.0 - tiny)  # [..., K]
        z = torch.sigmoid((logits + torch.log(u) - torch.log1p(-u)) / temperature)  # [..., K]
    else:
        z = torch.sigmoid(logits)  # [..., K]
    return z / (z.sum(dim=-1, keepdim=True) + EPS)


@ROUTERS.register("poly", params=PolyRouterParams)
class PolyRouter(Router):
    """Polytropon: a learned routing row per (task, layer) over the layer's K skills, one head.

    Args:
        num_tasks: T.
        num_layers: L.
        heads: must be 1 (use ``kind: mhr`` for more).
        skills: K.
        spec: the router spec; ``temperature`` is τ of the training-time relaxed Bernoulli.

    Shapes:
        - **input:** tasks ``[U]`` long.
        - **output:** gates ``[U, L]`` ones, weights ``[U, L, H, K]``.
        - **parameters:** ``logits [T, L, H, K]`` (``[T, 1, H, K]`` with ``share_layers``).
    """

    adapt_modes: ClassVar[tuple[str, ...]] = ("full", "routing", "mhr-mu")
    infinite_masks: ClassVar[tuple[str, ...]] = ("logits",)  # ±∞: a skill one task owns (add_task_to_learn)

    @classmethod
    def adaptation_plan(cls, mode: str) -> AdaptationPlan:
        """A learned routing row: ``routing`` (MHR-z) trains it alone, ``full`` with every skill; ``mhr-mu``
        materialises the skills' average as a skill only the new task uses (other tasks do not change)."""
        cls.check_adapt_mode(mode)
        if mode == "mhr-mu":
            return AdaptationPlan("learned", True, "average", routing=False, adapters="new", router_train=True)
        return AdaptationPlan(
            "learned", False, "lora", routing=True, adapters="all" if mode == "full" else "none", router_train=True
        )

    def __init__(self, num_tasks: int, num_layers: int, heads: int, skills: int, spec: RouterSpec) -> None:
        self._check_heads(heads)
        super().__init__(num_tasks, num_layers, heads, skills)
        self.temperature = float(spec.temperature)
        self.share_layers = router_params(spec, PolyRouterParams).share_layers
        rows = 1 if self.share_layers else num_layers
        z = torch.empty(num_tasks, rows, heads, skills).uniform_(-INIT_RANGE, INIT_RANGE)
        self.logits = nn.Parameter(z)  # [T, L or 1, H, K]

    @classmethod
    def _check_heads(cls, heads: int) -> None:
        if heads != 1:
            raise ModelError(f"poly uses one head, got adapters.splits={heads}; use kind: mhr for heads > 1")

    @torch.no_grad()
    def add_task_to_learn(self, own_skill: bool = False) -> int:
        """Append a routing row for a few-shot task; with ``own_skill`` also a skill only it uses.

        The row is drawn U(−1e-3, 1e-3) as at the start of training (``−∞`` on skills other tasks
        own). See the module docstring for owned skills. Returns the task's id; build the optimizer
        afterwards (the logits parameter is replaced).
        """
        old = self.logits.detach()  # [T, L, H, K] (L = 1 with share_layers)
        owned = torch.isposinf(old).any(0)  # [L, H, K] skills that some task owns
        row = torch.empty(old.shape[1:]).uniform_(-INIT_RANGE, INIT_RANGE).to(old)  # [L, H, K]
        row = row.masked_fill(owned, -math.inf)
        logits = torch.cat([old, row[None]])  # [T+1, L, H, K]
        if own_skill:
            column = torch.full((*logits.shape[:3], 1), -math.inf, dtype=old.dtype, device=old.device)  # [T+1, L, H, 1]
            column[-1] = math.inf
            logits[-1] = -math.inf
            logits = torch.cat([logits, column], dim=3)  # [T+1, L, H, K+1]
            self.skills += 1
        self.logits = nn.Parameter(logits, requires_grad=self.logits.requires_grad)
        self.num_tasks += 1
        return self.num_tasks - 1

    def task_parameters(self, task: int) -> list[tuple[str, nn.Parameter, Tensor]]:
        """Row ``task`` of the logits (``mask [T, 1, 1, 1]``)."""
        mask = torch.zeros(self.num_tasks, 1, 1, 1, dtype=torch.bool, device=self.logits.device)  # [T, 1, 1, 1]
        mask[task] = True
        return [("logits", self.logits, mask)]

    def forward(self, tasks: Tensor) -> Routing:
        z = self.logits.index_select(0, tasks)  # [U, L or 1, H, K]
        if self.share_layers:
            z = z.expand(-1, self.num_layers, -1, -1)  # [U, L, H, K] one row for every layer
        weights = poly_weights(z, self.temperature, sample=self.training)  # [U, L, H, K]
        gates = torch.ones(z.shape[:2], device=z.device, dtype=z.dtype)  # [U, L]
        return Routing(gates, weights)

    def extra_repr(self) -> str:
        shared = ", share_layers=True" if self.share_layers else ""
        return f"{super().extra_repr()}, temperature={self.temperature:g}{shared}"
