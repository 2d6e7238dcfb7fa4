"""A frozen linear layer plus a routed inventory of LoRA skills (Poly / MHR, docs/methods.md §2).

Each adapted layer holds K skills of rank r split into H heads, ``A [H, K, d_in/H, r]`` and
``B [H, K, r, d_out/H]``. For the batch set on the shared :class:`RoutingContext` the layer mixes
its inventory once per distinct task (or index-selects the skill under one-hot ``private``
routing), folds the task's gate and ``scaling = alpha / r`` into B, and adds
``gate · scaling · (dropout(x) A_u) B_u`` to every example of task u. A gate of exactly 0 gives
exactly the base output; at inference the examples of closed tasks are not computed at all.

``linearized=True`` gives L-LoRA (docs/methods.md §3): the adapter is the first-order Taylor expansion
of the LoRA product around the initial factors ``(A0, B0)``, which is exactly a rank-2r LoRA
``x [A_u | A0_u] · [B0_u ; B_u − B0_u]`` (see :func:`~taskgraph.adapters.mixing.linearized_factors`).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from taskgraph.adapters.context import BatchRouting, RoutingContext
from taskgraph.adapters.mixing import (
    add_example_delta_to_rows,
    example_delta,
    gather_rows,
    linearized_factors,
    mix_inventory_a,
    mix_inventory_b,
    select_skill_a,
    select_skill_b,
)
from taskgraph.errors import ModelError

ADAPTABLE = (nn.Linear, Conv1D)  # module types an inventory can wrap


def linear_dims(base: nn.Module) -> tuple[int, int]:
    """``(d_in, d_out)`` of an ``nn.Linear`` (weight ``[out, in]``) or GPT-2 ``Conv1D`` (``nx`` inputs, ``nf`` outputs;
    weight ``[in, out]``, or ``[out, in]`` once quantized: :class:`~taskgraph.model.quantize.QuantizedConv1D`)."""
    if isinstance(base, Conv1D):
        return base.nx, base.nf
    if isinstance(base, nn.Linear):
        return base.in_features, base.out_features
    raise ModelError(f"cannot adapt a {type(base).__name__}: a routed LoRA wraps nn.Linear or transformers' Conv1D")


class RoutedLoRALinear(nn.Module):
    r"""A frozen linear layer with a routed inventory of K LoRA skills in H heads.

    .. math::
        y_b = W x_b + g_{u} \cdot s \cdot (\mathrm{drop}(x_b) A_u) B_u,\quad
        A_u = \Vert_h \textstyle\sum_k w_{u,l,h,k} A_{h,k},\ B_u \text{ likewise along } d_{out}

    with ``u = inverse[b]``, ``s = alpha / rank`` and ``g, w`` the gates and weights of column
    ``index`` of the routing set on ``context``.

    Args:
        base: the ``nn.Linear`` or ``Conv1D`` to wrap; its parameters are frozen.
        index: l, this layer's column in the routing's gates ``[U, L]`` / weights ``[U, L, H, K]``.
        rank: r, the rank of every skill.
        alpha: LoRA alpha; ``scaling = alpha / rank``.
        heads: H, must divide both d_in and d_out.
        skills: K, the inventory size (decided by the router).
        dropout: dropout on the adapter's input during training.
        context: the model's shared :class:`RoutingContext`.
        linearized: L-LoRA: keep frozen copies ``A0``, ``B0`` and use the first-order expansion.
            (default: ``False``)
        name: the module's qualified name, for error messages. (default: ``""``)

    Shapes:
        - **input:** ``[B, ..., d_in]`` with B the examples of the batch routing.
        - **output:** ``[B, ..., d_out]``.
        - **parameters:** ``A [H, K, d_in/H, r]`` (uniform ±1/√d_in, like PEFT's kaiming init),
          ``B [H, K, r, d_out/H]`` (zeros: an untrained layer equals the base exactly).
    """

    def __init__(
        self,
        base: nn.Module,
        index: int,
        *,
        rank: int,
        alpha: float,
        heads: int,
        skills: int,
        dropout: float,
        context: RoutingContext,
        linearized: bool = False,
        name: str = "",
    ) -> None:
        super().__init__()
        d_in, d_out = linear_dims(base)
        self.index, self.name = index, name
        if d_in % heads or d_out % heads:
            raise ModelError(
                f"{self._where()}: heads={heads} must divide both dims of the layer (d_in={d_in}, d_out={d_out}); "
                f"choose adapters.splits among the common divisors, e.g. {_common_divisors(d_in, d_out)}"
            )
        for p in base.parameters():
            p.requires_grad_(False)
        self.base = base
        self.in_features, self.out_features = d_in, d_out
        self.rank, self.alpha, self.heads, self.skills = rank, alpha, heads, skills
        self.scaling = alpha / rank
        self.linearized = linearized
        self.context = context
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        bound = 1.0 / math.sqrt(d_in)  # drawn on the CPU: the same values under a seed on every device
        a = torch.empty(heads, skills, d_in // heads, rank).uniform_(-bound, bound)  # [H, K, d_in/H, r]
        self.A = nn.Parameter(a.to(**like))
        self.B = nn.Parameter(torch.zeros(heads, skills, rank, d_out // heads, **like))  # [H, K, r, d_out/H]
        if linearized:
            self.register_buffer("A0", self.A.detach().clone())  # [H, K, d_in/H, r]
            self.register_buffer("B0", self.B.detach().clone())  # [H, K, r, d_out/H]

    @property
    def fan_in_fan_out(self) -> bool:
        """True when the base stores its weight as ``[in, out]`` (GPT-2 ``Conv1D``), as PEFT names it."""
        return isinstance(self.base, Conv1D)

    def forward(self, x: Tensor) -> Tensor:
        batch = self._batch(x)
        y = self.base(x)  # [B, ..., d_out]
        a, b = self.example_factors(batch)  # [B, d_in, r'], [B, r', d_out]: gate and scaling folded into b
        if not self.training:
            return add_example_delta_to_rows(y, x, a, b, batch.open_rows(self.index))  # closed examples skipped
        return y + example_delta(self.dropout(x), a, b)

    def example_factors(self, batch: BatchRouting) -> tuple[Tensor, Tensor]:
        """Every example's factors at this layer, ``(a [B, d_in, r'], b [B, r', d_out])``, gate and scaling in ``b``.

        Read from the batch when the model computed every layer's at once (the fused path,
        :mod:`taskgraph.adapters.fused`); otherwise mixed here, for this layer alone.
        """
        if batch.factors is not None:
            return batch.factors[self.index]
        gate = batch.routing.gates[:, self.index]  # [U]
        a, b = self.task_factors(batch)  # [U, d_in, r'], [U, r', d_out]
        b = b * (self.scaling * gate).to(b.dtype)[:, None, None]  # gate and scaling folded into B
        return gather_rows(a, batch.inverse), gather_rows(b, batch.inverse)  # [B, d_in, r'], [B, r', d_out]

    def task_factors(self, batch: BatchRouting) -> tuple[Tensor, Tensor]:
        """Per-task factors ``(A_u [U, d_in, r'], B_u [U, r', d_out])`` without scaling or gate.

        ``r' = r``, or ``2r`` when linearized. Index-selects under one-hot routing (``choice`` set).
        """
        routing = batch.routing
        choice = None if routing.choice is None else routing.choice[:, self.index]  # [U, H]
        return self._factors(routing.weights[:, self.index], choice)

    def _factors(self, weights: Tensor, choice: Tensor | None) -> tuple[Tensor, Tensor]:
        a, b = self._mix(weights, choice, self.A, self.B)  # [U, d_in, r], [U, r, d_out]
        if not self.linearized:
            return a, b
        a0, b0 = self._mix(weights, choice, self.A0, self.B0)
        return linearized_factors(a, b, a0, b0)  # [U, d_in, 2r], [U, 2r, d_out]

    @staticmethod
    def _mix(weights: Tensor, choice: Tensor | None, A: Tensor, B: Tensor) -> tuple[Tensor, Tensor]:
        if choice is not None:
            return select_skill_a(choice, A), select_skill_b(choice, B)
        return mix_inventory_a(weights, A), mix_inventory_b(weights, B)

    def _batch(self, x: Tensor) -> BatchRouting:
        batch = self.context.current
        if batch is None:
            raise ModelError(
                f"{self._where()}: no routing set: call the model through TaskGraphModel (which routes every "
                f"batch by its task ids), or wrap the call in `context.use(BatchRouting(...))`"
            )
        if x.dim() < 2 or x.shape[0] != batch.inverse.shape[0]:
            raise ModelError(
                f"{self._where()}: got an input of shape {tuple(x.shape)} but the batch routing covers "
                f"{batch.inverse.shape[0]} examples; the first dim of the input must be the batch"
            )
        return batch

    def _where(self) -> str:
        return f"module {self.name!r}" if self.name else f"adapted module #{self.index}"

    # ---- folding: one task's plain LoRA -------------------------------------------------------

    @torch.no_grad()
    def fold(self, weights: Tensor, gate: float) -> tuple[Tensor, Tensor] | None:
        """One task's adapter at this layer as a plain LoRA, in PEFT's orientation.

        Args:
            weights: ``[H, K]``, the task's mixture weights at this layer (one-hot for ``private``).
            gate: the task's gate at this layer.

        Returns:
            ``(A_t [r', d_in], B_t [d_out, r'])`` with ``ΔW = scaling · B_t @ A_t`` (the scaling
            is **not** applied; the gate is folded into ``B_t``), detached; None when the gate is
            closed (0). ``r' = r``, except for a linearized layer whose ``B0`` is not all zero:
            then ``r' = 2r`` with ``A_t = [A ; A0]``, ``B_t = [B0 | B − B0]`` (all mixed), exact.
            A linearized layer with ``B0 = 0`` folds to ``(A0, B)`` of rank r.
        """
        if gate == 0:
            return None
        weights = weights.to(self.A.device)
        a, b = self._factors(weights[None], None)  # [1, d_in, r'], [1, r', d_out]
        if self.linearized and not bool(self.B0.any()):
            a, b = a[..., self.rank :], b[:, self.rank :]  # [A | A0]·[0 ; B] = A0·B
        return a[0].T.contiguous(), (b[0] * gate).T.contiguous()

    @torch.no_grad()
    def fold_init(self, weights: Tensor, gate: float) -> tuple[Tensor, Tensor] | None:
        """A linearized layer's update at its linearisation point φ₀ = ``(A0, B0)``, as :meth:`fold` gives it.

        The linearized update at φ₀ is ``A0_t B0_t``, not zero when ``B0 ≠ 0``; a task vector
        ``τ_t = φ_t − φ₀`` (what merges add) is the fold minus this. Returns ``(A0_t [r, d_in],
        B0_t [d_out, r])`` (gate folded into ``B0_t``, no scaling), or None when the layer is not
        linearized, its ``B0`` is all zero, or the gate is closed.
        """
        if not self.linearized or gate == 0 or not bool(self.B0.any()):
            return None
        a0, b0 = self._mix(weights.to(self.A.device)[None], None, self.A0, self.B0)  # [1, d_in, r], [1, r, d_out]
        return a0[0].T.contiguous(), (b0[0] * gate).T.contiguous()

    @torch.no_grad()
    def delta_weight(self, weights: Tensor, gate: float) -> Tensor:
        """``ΔW [d_out, d_in]`` (nn.Linear orientation, scaling and gate applied) of one task; zeros when closed."""
        folded = self.fold(weights, gate)
        if folded is None:
            return torch.zeros(self.out_features, self.in_features, device=self.A.device, dtype=self.A.dtype)
        a_t, b_t = folded
        return self.scaling * (b_t @ a_t)  # [d_out, d_in]

    @torch.no_grad()
    def merged_base(self, weights: Tensor, gate: float) -> nn.Module:
        """A copy of the base layer with one task's ``ΔW`` added to its weight (Conv1D: transposed)."""
        merged = copy.deepcopy(self.base)
        delta = self.delta_weight(weights, gate).to(merged.weight.dtype)  # [d_out, d_in]
        merged.weight.add_(delta.T if self.fan_in_fan_out else delta)
        return merged

    @torch.no_grad()
    def append_skill(self, init: str) -> None:
        """Append one skill to a layer's inventory (``K → K+1``; the parameters are replaced).

        ``init="lora"``: ``A`` uniform ±1/√d_in (drawn on the CPU), ``B = 0``, as a fresh LoRA starts.
        ``init="average"``: the uniform average of the layer's K skills, per head, A and B separately
        (what uniform routing mixes: MHR-μ's starting adapter). A linearized layer extends its frozen
        ``A0`` / ``B0`` the same way (LoRA: the new factors themselves; average: the average of ``A0`` / ``B0``).
        """
        A, B = self.A.detach(), self.B.detach()  # [H, K, d_in/H, r], [H, K, r, d_out/H]
        if init == "average":
            a, b = A.mean(1, keepdim=True), B.mean(1, keepdim=True)  # [H, 1, d_in/H, r], [H, 1, r, d_out/H]
        else:
            bound = 1.0 / math.sqrt(self.in_features)
            a = torch.empty(A.shape[0], 1, *A.shape[2:]).uniform_(-bound, bound).to(A)  # [H, 1, d_in/H, r]
            b = torch.zeros_like(B[:, :1])  # [H, 1, r, d_out/H]
        if self.linearized:
            a0, b0 = (self.A0.mean(1, keepdim=True), self.B0.mean(1, keepdim=True)) if init == "average" else (a, b)
            self.A0 = torch.cat([self.A0, a0], dim=1)  # [H, K+1, d_in/H, r]
            self.B0 = torch.cat([self.B0, b0], dim=1)  # [H, K+1, r, d_out/H]
        self.A = nn.Parameter(torch.cat([A, a], dim=1), requires_grad=self.A.requires_grad)  # [H, K+1, d_in/H, r]
        self.B = nn.Parameter(torch.cat([B, b], dim=1), requires_grad=self.B.requires_grad)  # [H, K+1, r, d_out/H]
        self.skills += 1

    def extra_repr(self) -> str:
        return (
            f"index={self.index}, d_in={self.in_features}, d_out={self.out_features}, heads={self.heads}, "
            f"skills={self.skills}, rank={self.rank}, scaling={self.scaling:g}, linearized={self.linearized}"
        )


def _common_divisors(a: int, b: int) -> list[int]:
    g = math.gcd(a, b)
    return [d for d in range(1, g + 1) if g % d == 0][:8]
