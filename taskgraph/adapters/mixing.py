"""The math of routed LoRA inventories, as pure functions over tensors.

An adapted layer holds an inventory of K LoRA skills split into H heads (docs/methods.md §2):
``A [H, K, d_in/H, r]`` and ``B [H, K, r, d_out/H]``. For each of the U distinct tasks of a batch
the router gives mixture weights ``w [U, H, K]``; the task's plain LoRA factors are

    A_u = concat_h Σ_k w[u, h, k] · A[h, k]       # [d_in, r]   (heads split the input dim)
    B_u = concat_h Σ_k w[u, h, k] · B[h, k]       # [r, d_out]  (heads split the output dim)

and every example b of task ``u = inverse[b]`` gets ``x_b A_u B_u``. Mixing happens once per
distinct task (its cost does not depend on the number of tasks T); the per-example step is a
gather along the batch (a one-hot matrix product, see :func:`gather_rows`). With one-hot routing (``private``, K = T) the skill is index-selected
instead of mixed, so the cost stays independent of T there too.

Orientation: factors here act on row vectors (``x @ A_u @ B_u``). PEFT's orientation (``lora_A
[r, d_in]``, ``lora_B [d_out, r]``) is the transpose; :class:`RoutedLoRALinear.fold` converts.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mix_inventory_a(weights: Tensor, A: Tensor) -> Tensor:
    """Mix the A inventory per task and concatenate the heads along the input dim.

    Args:
        weights: ``[U, H, K]`` mixture weights of this layer.
        A: ``[H, K, d_in/H, r]`` inventory.

    Returns:
        ``[U, d_in, r]``: ``A_u = concat_h Σ_k w[u,h,k] A[h,k]``.
    """
    u, (h, _, d, r) = weights.shape[0], A.shape
    mixed = torch.einsum("uhk,hkdr->uhdr", weights.to(A.dtype), A)  # [U, H, d_in/H, r]
    return mixed.reshape(u, h * d, r)  # [U, d_in, r]


def mix_inventory_b(weights: Tensor, B: Tensor) -> Tensor:
    """Mix the B inventory per task and concatenate the heads along the output dim.

    Args:
        weights: ``[U, H, K]`` mixture weights of this layer.
        B: ``[H, K, r, d_out/H]`` inventory.

    Returns:
        ``[U, r, d_out]``: ``B_u = concat_h Σ_k w[u,h,k] B[h,k]`` (heads side by side).
    """
    u, (h, _, r, e) = weights.shape[0], B.shape
    mixed = torch.einsum("uhk,hkre->urhe", weights.to(B.dtype), B)  # [U, r, H, d_out/H]
    return mixed.reshape(u, r, h * e)  # [U, r, d_out]


def select_skill_a(choice: Tensor, A: Tensor) -> Tensor:
    """Index-select skill ``choice[u, h]`` of every head instead of mixing (one-hot routing).

    Args:
        choice: ``[U, H]`` long, the skill of each head for each task.
        A: ``[H, K, d_in/H, r]`` inventory.

    Returns:
        ``[U, d_in, r]``, equal to :func:`mix_inventory_a` with the one-hot weights of ``choice``.
    """
    u, (h, _, d, r) = choice.shape[0], A.shape
    heads = torch.arange(h, device=choice.device).expand(u, h)  # [U, H]
    picked = A[heads, choice]  # [U, H, d_in/H, r]
    return picked.reshape(u, h * d, r)  # [U, d_in, r]


def select_skill_b(choice: Tensor, B: Tensor) -> Tensor:
    """Index-select skill ``choice[u, h]`` of every head of B (one-hot routing).

    Args:
        choice: ``[U, H]`` long.
        B: ``[H, K, r, d_out/H]`` inventory.

    Returns:
        ``[U, r, d_out]``, equal to :func:`mix_inventory_b` with the one-hot weights of ``choice``.
    """
    u, (h, _, r, e) = choice.shape[0], B.shape
    heads = torch.arange(h, device=choice.device).expand(u, h)  # [U, H]
    picked = B[heads, choice]  # [U, H, r, d_out/H]
    return picked.permute(0, 2, 1, 3).reshape(u, r, h * e)  # [U, r, d_out]


def linearized_factors(a: Tensor, b: Tensor, a0: Tensor, b0: Tensor) -> tuple[Tensor, Tensor]:
    """L-LoRA (docs/methods.md §3): the first-order Taylor expansion of ``x A B`` around ``(A0, B0)``.

    ``x (A B0 + A0 B − A0 B0) = x [A | A0] · [B0 ; B − B0]``, so the linearized adapter is itself a
    plain LoRA of rank 2r; with the usual ``B0 = 0`` it is ``x A0 B`` ("train B, A frozen at its
    seed"). Exact, no ``jvp`` needed.

    Args:
        a, a0: ``[U, d_in, r]`` mixed current and initial A factors.
        b, b0: ``[U, r, d_out]`` mixed current and initial B factors.

    Returns:
        ``([U, d_in, 2r], [U, 2r, d_out])``.
    """
    a_lin = torch.cat([a, a0], dim=-1)  # [U, d_in, 2r]
    b_lin = torch.cat([b0, b - b0], dim=-2)  # [U, 2r, d_out]
    return a_lin, b_lin


def lora_delta(x: Tensor, a: Tensor, b: Tensor, inverse: Tensor) -> Tensor:
    """The adapter output ``x_b A_{u(b)} B_{u(b)}`` of every example, gathered from per-task factors.

    Any scaling and gate are expected folded into ``b`` already. No host synchronisation: the
    number of tasks U is a shape, ``inverse`` is only gathered with.

    Args:
        x: ``[B, ..., d_in]`` inputs, batch first.
        a: ``[U, d_in, r]`` per-task A factors.
        b: ``[U, r, d_out]`` per-task B factors.
        inverse: ``[B]`` long, the row of ``a``/``b`` of each example.

    Returns:
        ``[B, ..., d_out]``.
    """
    return example_delta(x, gather_rows(a, inverse), gather_rows(b, inverse))


def example_delta(x: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """The adapter output ``x_b A_b B_b`` of every example from its own factors: two batched matmuls.

    Args:
        x: ``[B, ..., d_in]`` inputs, batch first.
        a: ``[B, d_in, r]`` each example's A factor.
        b: ``[B, r, d_out]`` each example's B factor (scaling and gate folded in).

    Returns:
        ``[B, ..., d_out]``.
    """
    flat = x.reshape(x.shape[0], -1, x.shape[-1])  # [B, N, d_in]
    out = torch.bmm(torch.bmm(flat, a), b)  # [B, N, d_out]
    return out.reshape(*x.shape[:-1], b.shape[-1])


def gather_rows(t: Tensor, inverse: Tensor) -> Tensor:
    """Row ``inverse[b]`` of ``t`` for every example, as a one-hot matrix product.

    Equal to ``t.index_select(0, inverse)`` (a one-hot row copies exactly), but its backward is a
    matrix product too, where ``index_select``'s is a scatter-add: several times slower on CPU and
    atomic (non-deterministic) on GPU. No host synchronisation: U is a shape.

    Args:
        t: ``[U, ...]`` per-task rows.
        inverse: ``[B]`` long, values in ``[0, U)``.

    Returns:
        ``[B, ...]``.
    """
    u = t.shape[0]
    one_hot = (inverse[:, None] == torch.arange(u, device=inverse.device)).to(t.dtype)  # [B, U]
    return (one_hot @ t.reshape(u, -1)).reshape(inverse.shape[0], *t.shape[1:])  # [B, ...]


def add_open_delta(y: Tensor, x: Tensor, a: Tensor, b: Tensor, inverse: Tensor, gate: Tensor) -> Tensor:
    """Inference: add the adapter output only to examples whose gate is open (non-zero).

    Closed examples cost nothing and keep exactly the base output ``y``; when every example is
    closed ``y`` is returned as is. Finding the open examples reads the gates on the host, so this
    is for inference only; training uses :func:`lora_delta` on the whole batch.

    Args:
        y: ``[B, ..., d_out]`` base output.
        x: ``[B, ..., d_in]`` inputs.
        a, b: per-task factors as in :func:`lora_delta` (gate and scaling folded into ``b``).
        inverse: ``[B]`` long, example → task row.
        gate: ``[U]`` gate of each task at this layer.

    Returns:
        ``[B, ..., d_out]``, equal to ``y + lora_delta(x, a, b, inverse)`` (closed rows: ``y``).
    """
    open_rows = (gate.index_select(0, inverse) != 0).nonzero().squeeze(1)  # [B_open] (host sync)
    if open_rows.numel() == 0:
        return y
    if open_rows.numel() == x.shape[0]:
        return y + lora_delta(x, a, b, inverse)
    delta = lora_delta(x.index_select(0, open_rows), a, b, inverse.index_select(0, open_rows))  # [B_open, ..., d_out]
    return y.index_add(0, open_rows, delta.to(y.dtype))


def add_example_delta_to_rows(y: Tensor, x: Tensor, a: Tensor, b: Tensor, rows: Tensor | None) -> Tensor:
    """Inference: ``y + example_delta`` on the examples ``rows`` only (the others keep ``y`` exactly).

    Args:
        y: ``[B, ..., d_out]`` base output.
        x: ``[B, ..., d_in]`` inputs.
        a, b: ``[B, d_in, r]``, ``[B, r, d_out]`` per-example factors as in :func:`example_delta`.
        rows: ``[B_open]`` long, the examples whose gate is open; None when every example is open.

    Returns:
        ``[B, ..., d_out]``; ``y`` itself when ``rows`` is empty.
    """
    if rows is None:
        return y + example_delta(x, a, b)
    if rows.numel() == 0:
        return y
    delta = example_delta(
        x.index_select(0, rows), a.index_select(0, rows), b.index_select(0, rows)
    )  # [B_open, ..., d_out]
    return y.index_add(0, rows, delta.to(y.dtype))


# ----------------------------------------------------------------------------- every layer at once (fused path)
def mix_stacked_a(weights: Tensor, A: Tensor) -> Tensor:
    """:func:`mix_inventory_a` for G stacked layers of one shape in one contraction.

    Args:
        weights: ``[U, G, H, K]`` mixture weights of the G layers.
        A: ``[G, H, K, d_in/H, r]`` the G inventories, stacked.

    Returns:
        ``[G, U, d_in, r]``; ``[g]`` equals ``mix_inventory_a(weights[:, g], A[g])``.
    """
    u, (g, h, _, d, r) = weights.shape[0], A.shape
    mixed = torch.einsum("ughk,ghkdr->guhdr", weights.to(A.dtype), A)  # [G, U, H, d_in/H, r]
    return mixed.reshape(g, u, h * d, r)  # [G, U, d_in, r]


def mix_stacked_b(weights: Tensor, B: Tensor) -> Tensor:
    """:func:`mix_inventory_b` for G stacked layers of one shape in one contraction.

    Args:
        weights: ``[U, G, H, K]``.
        B: ``[G, H, K, r, d_out/H]``.

    Returns:
        ``[G, U, r, d_out]`` (heads side by side along d_out).
    """
    u, (g, h, _, r, e) = weights.shape[0], B.shape
    mixed = torch.einsum("ughk,ghkre->gurhe", weights.to(B.dtype), B)  # [G, U, r, H, d_out/H]
    return mixed.reshape(g, u, r, h * e)  # [G, U, r, d_out]


def select_stacked_a(choice: Tensor, A: Tensor) -> Tensor:
    """:func:`select_skill_a` for G stacked layers: one gather. ``choice [U, G, H]``, ``A [G, H, K, d_in/H, r]`` →
    ``[G, U, d_in, r]``."""
    u, (g, h, _, d, r) = choice.shape[0], A.shape
    layers = torch.arange(g, device=choice.device)[:, None, None]  # [G, 1, 1]
    heads = torch.arange(h, device=choice.device)[None, None, :]  # [1, 1, H]
    picked = A[layers, heads, choice.permute(1, 0, 2)]  # [G, U, H, d_in/H, r]
    return picked.reshape(g, u, h * d, r)  # [G, U, d_in, r]


def select_stacked_b(choice: Tensor, B: Tensor) -> Tensor:
    """:func:`select_skill_b` for G stacked layers: ``choice [U, G, H]``, ``B [G, H, K, r, d_out/H]`` → ``[G, U, r, d_out]``."""
    u, (g, h, _, r, e) = choice.shape[0], B.shape
    layers = torch.arange(g, device=choice.device)[:, None, None]  # [G, 1, 1]
    heads = torch.arange(h, device=choice.device)[None, None, :]  # [1, 1, H]
    picked = B[layers, heads, choice.permute(1, 0, 2)]  # [G, U, H, r, d_out/H]
    return picked.transpose(2, 3).reshape(g, u, r, h * e)  # [G, U, r, d_out]


def gather_stacked(t: Tensor, one_hot: Tensor) -> Tensor:
    """Row ``inverse[b]`` of every layer's per-task tensor at once: ``t [G, U, ...]``, ``one_hot [B, U]`` →
    ``[G, B, ...]``, one batched matmul (see :func:`gather_rows` for why a product and not an index)."""
    g, u = t.shape[:2]
    rows = torch.matmul(one_hot.to(t.dtype), t.reshape(g, u, -1))  # [G, B, prod(...)]
    return rows.reshape(g, one_hot.shape[0], *t.shape[2:])  # [G, B, ...]
