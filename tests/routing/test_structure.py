"""The structure round as one product (:mod:`taskgraph.routing.structure`) against the per-edge-type computation and
PyG's message passing: one forward, its gradients, and a 30-step training trajectory of the graph router."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch.testing import assert_close

from taskgraph.graph.vocab import ADAPTER, LAYER, NODE_TYPES, TASK, TASK_RELATES_TASK
from taskgraph.routing.gnn import GraphEncoder, damped_mean_weights, reference_round
from taskgraph.routing.graph import GraphRouter
from taskgraph.routing.structure import STRUCTURE_EDGES, mean_adjacency, structure_operator
from taskgraph.spec.models import RouterSpec

T, L, K, D = 5, 3, 3, 16  # K = 3: in-degrees 1 and 3, so the mean's 1/deg is inexact and rounding can differ
SIZES = {TASK: T, ADAPTER: L * K, LAYER: L}


def graph(seed: int = 0) -> tuple[GraphRouter, dict, dict, torch.Tensor, dict]:
    """A router's structure edges, a few weighted relation edges and random node features."""
    gen = torch.Generator().manual_seed(seed)
    router = GraphRouter(T, L, 1, K, RouterSpec(kind="graph", gnn={"hidden": D}))
    pairs = torch.tensor([[0, 0, 1, 2, 3], [1, 2, 3, 3, 4]])  # i < j
    edges = {TASK_RELATES_TASK: torch.cat([pairs, pairs.flip(0)], dim=1)}
    edges.update(router.structure.edge_index())
    x = {nt: torch.randn(SIZES[nt], D, generator=gen) for nt in NODE_TYPES}
    r = torch.rand(pairs.shape[1], generator=gen)
    means = {et: mean_adjacency(edges[et], SIZES[et[0]], SIZES[et[2]]) for et in STRUCTURE_EDGES}
    return router, edges, x, torch.cat([r, r]), means


def reference_encode(
    encoder: GraphEncoder,
    x: dict[str, torch.Tensor],
    edges: dict,
    r: torch.Tensor,
    means: Mapping[tuple[str, str, str], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """The encoder with every round computed edge type by edge type (:func:`reference_round`)."""
    relates = edges[TASK_RELATES_TASK]
    weight = damped_mean_weights(relates[1], r, x[TASK].shape[0])
    h = x
    for conv in encoder.convs:
        out = reference_round(conv, h, relates, weight, means)
        h = {nt: h[nt] + torch.nn.functional.gelu(out[nt]) for nt in h}
    return {nt: encoder.norms[nt](h[nt]) for nt in NODE_TYPES}


def test_mean_adjacency_by_hand():
    index = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 1]])  # 0→0, 1→0, 1→1, 2→1; destination 2 has no edge
    m = mean_adjacency(index, num_src=3, num_dst=3)
    assert torch.equal(m, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]]))


def test_the_operator_stacks_each_edge_types_mean_and_root_slot_per_node():
    _, _, _, _, means = graph()
    op = structure_operator(means, SIZES)
    n, slots = L * K + L, 2 * len(STRUCTURE_EDGES)
    assert op.slots.shape == (n * slots, n) and op.bias.shape == (n, len(STRUCTURE_EDGES))
    per_slot = op.slots.view(n, slots, n)
    adapter_in_layer = per_slot[L * K :, 0, : L * K]  # slot 0: (adapter, in, layer)'s mean, into the layer rows
    assert torch.equal(adapter_in_layer, means[STRUCTURE_EDGES[0]])
    assert torch.equal(per_slot[L * K :, 1, L * K :], torch.eye(L))  # slot 1: its root, the layers themselves
    assert torch.equal(op.bias.sum(0), torch.tensor([L, L * K, L * K, L * K], dtype=torch.float32))


@pytest.mark.parametrize("layers", [1, 2])
def test_the_stacked_round_equals_the_per_edge_type_round_and_pygs(layers: int):
    """Forward and every gradient (inputs, relation weights, parameters) to 1e-6 (absolute and relative), against
    both references (measured: 1.6e-6 at most, on outputs of size ~2: the products sum in another order)."""
    torch.manual_seed(0)
    router, edges, x, r, means = graph()
    encoder = GraphEncoder(D, layers=layers)
    op = structure_operator(means, SIZES)
    runs = {
        "stacked": lambda xs, rs: encoder(xs, edges, rs, op),
        "per edge type": lambda xs, rs: reference_encode(encoder, xs, edges, rs, means),
        "pyg": lambda xs, rs: encoder(xs, edges, rs),
    }
    outs, grads = {}, {}
    for name, run in runs.items():
        leaves = {nt: v.clone().requires_grad_(True) for nt, v in x.items()}
        weights = r.clone().requires_grad_(True)
        encoder.zero_grad()
        out = run(leaves, weights)
        sum((v * torch.linspace(-1, 1, v.numel()).view_as(v)).sum() for v in out.values()).backward()
        outs[name] = out
        grads[name] = [leaf.grad for leaf in leaves.values()] + [weights.grad] + [p.grad for p in encoder.parameters()]
    for reference in ("per edge type", "pyg"):
        for nt in NODE_TYPES:
            assert_close(outs["stacked"][nt], outs[reference][nt], rtol=1e-6, atol=1e-6)
        for a, b in zip(grads["stacked"], grads[reference]):
            assert_close(a, b, rtol=1e-6, atol=1e-6)


def trajectory(dense: bool, steps: int = 30) -> tuple[list[float], dict[str, torch.Tensor]]:
    """The graph router trained ``steps`` SGD steps towards planted routing weights (the structure round stacked, or
    PyG's message passing when ``dense`` is False): the losses and the final parameters.

    SGD, not Adam: the centred read-out leaves directions the loss cannot see (``query.bias``, ``key.bias``, the
    LayerNorms' biases, see tests/train/test_trajectories.py), their gradient is rounding noise, and Adam turns any
    noise into full steps; SGD moves them by the noise only, so what is compared is the computation. The rate is small
    (0.003) because the toy problem amplifies rounding: at 0.01 a one-ulp change of the initial task embeddings alone
    moves the losses 2e-4 within 30 steps."""
    torch.manual_seed(0)
    router = GraphRouter(T, L, 2, K, RouterSpec(kind="graph", temperature=1.0, gnn={"hidden": D, "layers": 2}))
    router.structure.mode = "stacked" if dense else "pyg"
    gen = torch.Generator().manual_seed(1)
    target = torch.softmax(3 * torch.randn(T, L, 2, K, generator=gen), dim=-1)  # [T, L, H, K]
    optimizer = torch.optim.SGD(router.parameters(), lr=0.003)
    losses = []
    for step in range(steps):
        tasks = torch.tensor([step % T, (step + 2) % T])
        routing = router(tasks)
        loss = (routing.weights - target[tasks]).pow(2).sum() + routing.gates.sum() + router.regularizer()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, {k: v.detach().clone() for k, v in router.state_dict().items()}


def test_the_stacked_round_trains_like_pygs_message_passing():
    """30 SGD steps: every loss within 2e-6 of the PyG run's, relative (measured: 9.5e-6 on losses of 8 to 15), and
    every parameter within 1e-5 (measured: 2.4e-7)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (fast, fast_params), (plain, plain_params) = trajectory(True), trajectory(False)
    finally:
        torch.set_num_threads(threads)
    assert fast[-1] < 0.8 * fast[0]  # it learns
    assert_close(torch.tensor(fast), torch.tensor(plain), rtol=2e-6, atol=0)
    assert fast_params.keys() == plain_params.keys()
    for name in fast_params:
        assert_close(fast_params[name], plain_params[name], rtol=0, atol=1e-5, msg=name)
