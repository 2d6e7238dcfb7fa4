"""The graph router: routing, hard gates, compute budget, relation gradients, zero-shot, save/load, planted groups."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch.testing import assert_close
from transformers import BertTokenizerFast

from taskgraph.errors import ModelError
from taskgraph.graph.vocab import ADAPTER, LAYER, TASK, TASK_RELATES_TASK
from taskgraph.model import TaskGraphModel
from taskgraph.model.fold import unload
from taskgraph.model.pooling import pool
from taskgraph.registry import ROUTERS
from taskgraph.routing import GraphRouter, GraphRouterParams, PolyRouter
from taskgraph.routing.graph_priors import budget_penalty, smoothness_penalty
from taskgraph.routing.graph_readout import routing_weights, straight_through_gate
from taskgraph.spec.models import RouterSpec, Spec

BERT = dict(
    model_type="bert",
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=2,
    intermediate_size=64,
    vocab_size=100,
    max_position_embeddings=64,
)
WORDS = [
    "the",
    "a",
    "movie",
    "film",
    "was",
    "is",
    "good",
    "bad",
    "great",
    "awful",
    "plot",
    "acting",
    "not",
    "very",
    "fun",
    "dull",
]


def spec(
    tasks: int = 3,
    router: dict[str, Any] | None = None,
    skills: int = 4,
    rank: int = 4,
    declared: list | None = None,
    **relations: Any,
) -> Spec:
    return Spec.model_validate(
        {
            "model": {"config": dict(BERT), "target_modules": ["query", "value"], "max_length": 8},
            "adapters": {"rank": rank, "alpha": 2 * rank, "skills": skills},
            "router": {"kind": "graph", **(router or {})},
            "relations": {"declared": declared or [], **relations},
            "tasks": [{"name": f"t{i}", "num_labels": 2 + i % 2} for i in range(tasks)],
        }
    )


def perturb(module: torch.nn.Module, seed: int = 1, scale: float = 0.3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale)


def tokens(n: int = 4, seq: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randint(5, 100, (n, seq), generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Training tests run on one thread: the same float sums (and outcome) on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- registration and read-out
def test_registered_with_its_own_params_and_spec_errors_name_the_key():
    entry = ROUTERS.get("graph")
    assert entry.obj is GraphRouter and entry.params is GraphRouterParams
    s = spec(router={"gnn": {"conv": "gat", "layers": 2}, "budget": 0.5})
    assert s.router.params.gnn.conv == "gat" and s.router.params.budget == 0.5
    with pytest.raises(ValidationError, match="gnn.conv"):
        spec(router={"gnn": {"conv": "gcnn"}})
    with pytest.raises(ValidationError, match="smoothnes"):
        spec(router={"smoothnes": 1.0})
    assert RouterSpec().gate_threshold == 0.5  # the default lets gates close (θ = 0 never would)


def test_weights_are_a_distribution_and_gates_are_hard_with_gradient_to_the_gate_mlp():
    torch.manual_seed(0)
    router = GraphRouter(5, 3, 2, 4, RouterSpec(kind="graph", gnn={"hidden": 16})).train()
    perturb(router)
    out = router(torch.tensor([0, 3, 4]))
    assert out.weights.shape == (3, 3, 2, 4) and out.gates.shape == (3, 3)
    assert_close(out.weights.sum(-1), torch.ones(3, 3, 2))
    assert bool((out.weights >= 0).all())
    assert set(out.gates.detach().unique().tolist()) <= {0.0, 1.0}
    (out.gates * torch.arange(9.0).view(3, 3)).sum().backward()
    assert float(router.gate_out.weight.grad.abs().sum()) > 0
    assert float(router.gate_task.weight.grad.abs().sum()) > 0
    soft = torch.tensor([0.95, 0.5, 0.49, 1e-3], requires_grad=True)
    hard = straight_through_gate(soft, 0.5)
    assert hard.tolist() == [1.0, 1.0, 0.0, 0.0]  # exactly 0 or 1
    hard.sum().backward()
    assert soft.grad.tolist() == [1.0, 1.0, 1.0, 1.0]  # the gradient of g


def test_gates_close_only_under_a_compute_budget():
    # Soft gates pushed far below θ = 0.5: with no budget the layer stays open (nothing asks for closing; a
    # closed gate would stop its adapter's gradient for good), with a budget the same soft gates close it.
    routers = {
        budget: GraphRouter(4, 3, 1, 4, RouterSpec(kind="graph", gnn={"hidden": 16}, budget=budget))
        for budget in (0.0, 0.5)
    }
    for router in routers.values():
        with torch.no_grad():
            router.gate_out.bias.fill_(-20.0)  # σ(-20 / τ) ≈ 2e-9 for every (task, layer)
    open_, gated = (routers[b](torch.arange(4)).gates for b in (0.0, 0.5))  # [4, 3] each
    assert open_.tolist() == [[1.0] * 3] * 4
    assert gated.tolist() == [[0.0] * 3] * 4
    assert routers[0.0].threshold == 0.0 and routers[0.5].threshold == 0.5


def test_routing_weights_are_the_centred_cosine_softmax():
    q = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[-1.0, -1.0]]])  # [U=3, H=1, 2]
    keys = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # [L=1, K=2, H=1, 2]: centred keys ±(1, 0)
    mean = q.mean(0, keepdim=True)  # (0, 0)
    w = routing_weights(q, mean, keys, temperature=0.5)
    logits = 5.0 / 0.5 * torch.tensor([[1.0, -1.0], [0.0, 0.0], [-(2**-0.5), 2**-0.5]])
    assert_close(w[:, 0, 0], logits.softmax(-1))
    assert_close(routing_weights(q[:1], q[:1], keys, 1.0)[0, 0, 0], torch.tensor([0.5, 0.5]))  # the mean task: uniform
    assert_close(routing_weights(q, mean, keys, 1.0, scale=2.0), routing_weights(q, mean, keys, 2.5))  # s/τ alone


def test_the_cosine_scale_lives_on_the_class_and_reaches_the_read_out(monkeypatch: pytest.MonkeyPatch):
    torch.manual_seed(0)
    router = GraphRouter(3, 2, 1, 4, RouterSpec(kind="graph", temperature=1.0))
    assert GraphRouter.cosine_scale == 5.0
    with torch.no_grad():
        sharp = router.encode().weights  # [T, L, H, K]
        monkeypatch.setattr(GraphRouter, "cosine_scale", 2.0)
        router.temperature = 0.4  # s / τ = 5 unchanged: the same routing
        assert_close(router.encode().weights, sharp)
        router.temperature = 1.0
        assert not torch.allclose(router.encode().weights, sharp)  # s = 2: a softer routing


def test_regularisers_on_hand_made_tensors():
    soft = torch.tensor([[0.9, 0.7], [0.3, 0.1]])
    assert float(budget_penalty(soft, 0.25, 4.0)) == pytest.approx(4.0 * (0.5 - 0.25) ** 2)
    w = torch.zeros(3, 1, 1, 2)
    w[0, 0, 0] = torch.tensor([1.0, 0.0])
    w[1, 0, 0] = torch.tensor([0.0, 1.0])
    w[2, 0, 0] = torch.tensor([1.0, 0.0])
    index = torch.tensor([[0, 0], [1, 2]])
    r = torch.tensor([0.5, 0.9])
    # pair (0,1): ‖Δw‖² = 2, pair (0,2): 0 -> mean(0.5·2, 0.9·0) = 0.5
    assert float(smoothness_penalty(w, index, r, 3.0)) == pytest.approx(3.0 * 0.5)
    assert float(smoothness_penalty(w, index[:, :0], r[:0], 3.0)) == 0.0


def test_regularizer_is_the_sum_of_its_terms():
    torch.manual_seed(0)
    router = GraphRouter(
        4,
        2,
        1,
        3,
        RouterSpec(kind="graph", gnn={"hidden": 8}, budget=2.0, budget_target=0.2, smoothness=0.7),
        task_names=list("abcd"),
    ).train()
    perturb(router)
    router(torch.tensor([1, 2]))
    state = router._state
    _, r = router.relations.weights()
    expected = (
        0.01 * (r.mean() - 0.5) ** 2
        + budget_penalty(state.gates, 0.2, 2.0)
        + smoothness_penalty(state.weights, state.relation_index, state.relation_weight, 0.7)
    )
    assert_close(router.regularizer(), expected)
    assert router._state is None  # used once


# ----------------------------------------------------------------------------- relations reach the task loss
def test_task_loss_has_a_gradient_on_the_relation_parameters():
    torch.manual_seed(0)
    model = TaskGraphModel(spec(tasks=3)).train()
    perturb(model)
    out = model(tokens(6), None, torch.tensor([0, 1, 2, 0, 1, 2]), labels=torch.tensor([0, 1, 0, 1, 2, 1]))
    out.loss.backward()  # the task loss only, no regularizer
    grad = model.router.relations.theta.grad
    assert grad is not None and grad.shape == (3,) and float(grad.abs().min()) > 0
    assert any(p is model.router.relations.theta for p in model.parameter_groups()["router"])


def test_frozen_relations_are_not_trained():
    model = TaskGraphModel(spec(tasks=3, declared=[["t0", "t1", 0.8]], learn=False))
    assert not any(p is model.router.relations.theta for p in model.parameter_groups()["router"])
    index, r = model.router.relation_weights()
    assert index.shape == (2, 3) and float(r[0]) == pytest.approx(0.8)


def test_large_task_sets_use_sparse_refreshed_candidates():
    torch.manual_seed(0)
    T = 120
    router = GraphRouter(
        T,
        2,
        1,
        2,
        RouterSpec(kind="graph", gnn={"hidden": 8}),
        relations=spec().relations.model_copy(update={"top_k": 3, "refresh_every": 2}),
    ).train()
    assert not router.relations.dense and router.relations.theta.shape == (T * 3,)
    opt = torch.optim.SGD([router.task_embedding], lr=50.0)
    seen = []
    for _ in range(5):
        out = router(torch.arange(0, T, 7))
        seen.append(router.relations.index.clone())
        state = router._state  # sparse mode: read out only the batch's tasks and their candidate neighbours
        assert 18 <= state.weights.shape[0] < T and int(state.relation_index.max()) < state.weights.shape[0]
        opt.zero_grad()
        (out.weights[:, :, :, 0].sum() + router.regularizer()).backward()
        opt.step()
    index, _ = router.relation_weights()
    assert index.shape[1] <= T * 3  # E = O(T·k), not T(T−1)/2 = 7,140
    assert not torch.equal(seen[0], seen[2])  # refreshed at step 2 after the embeddings moved
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[2], seen[3])  # and only every 2 steps


# ----------------------------------------------------------------------------- compute budget
def test_gates_close_under_a_compute_budget_and_closed_layers_are_skipped(one_thread):
    torch.manual_seed(0)
    model = TaskGraphModel(spec(tasks=3, router={"gnn": {"hidden": 16}, "budget": 20.0, "budget_target": 0.0}))
    perturb(model)
    ids, labels, task_ids = tokens(6), torch.tensor([0, 1, 1, 0, 1, 0]), torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(model.router_parameters(), lr=0.05)
    means = []
    model.train()
    for _ in range(30):  # just the router
        out = model(ids, None, task_ids, labels=labels)
        means.append(float(model.router._state.gates.detach().mean()))
        loss = out.loss + model.router.regularizer()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert means[0] > 0.7 and means[-1] < 0.2  # open at the start, closed under the budget
    model.eval()
    gates = model.router(torch.arange(3)).gates
    closed = [t for t in range(3) if bool((gates[t] == 0).all())]
    assert closed, gates
    task = closed[0]
    logits = model(ids, None, task).logits[:, : model.num_labels[task]]
    base = unload(model)  # the plain base: no adapter anywhere
    pooled = pool(
        "mean", base(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state, torch.ones_like(ids)
    )
    assert_close(logits, model.heads.heads[task](pooled), rtol=0, atol=1e-6)
    assert model.fold(task).dropped == model.adapted_names  # every closed layer dropped


# ----------------------------------------------------------------------------- zero-shot
def test_router_add_task_is_message_passing_from_its_neighbours():
    torch.manual_seed(0)
    router = GraphRouter(3, 2, 1, 4, RouterSpec(kind="graph", gnn={"hidden": 16})).eval()
    perturb(router)
    before = router(torch.arange(3))
    x_old = router.task_features().detach().clone()
    new = router.add_task_from_relations({0: 0.8, 2: 0.4})
    assert new == 3 and router.num_tasks == 4
    row = (0.8 * x_old[0] + 0.4 * x_old[2]) / 1.2
    assert_close(router.task_embedding[3], row)
    after = router(torch.arange(3))
    assert_close(after.weights, before.weights, rtol=0, atol=1e-6)  # the other tasks do not move
    assert torch.equal(after.gates, before.gates)
    # by hand: the new node's feature and its two inbound messages, through the same encoder and read-out
    index, r = router.relations.weights()
    old = index[:, :3]
    edge_index = torch.cat([old, old.flip(0), torch.tensor([[0, 2], [3, 3]])], dim=1)
    weight = torch.cat([r[:3], r[:3], torch.tensor([0.8, 0.4])])
    edges = {
        TASK_RELATES_TASK: edge_index,
        **router.structure.edge_index(),
    }
    x = {
        TASK: torch.cat([x_old, row[None]]),
        ADAPTER: router.adapter_embedding,
        LAYER: router.layer_embedding + router.layer_position,
    }
    h = router.encoder(x, edges, weight)
    query = router.query(h[TASK]).view(4, 1, -1)
    keys = router.key(h[ADAPTER]).view(2, 4, 1, -1)
    expected = routing_weights(query[3:], query[:3].mean(0, keepdim=True), keys, router.temperature)
    assert_close(router(torch.tensor([3])).weights, expected)


def test_static_routers_refuse_zero_shot_with_a_clear_message():
    router = PolyRouter(3, 2, 1, 4, RouterSpec(kind="poly"))
    with pytest.raises(ModelError, match="needs the graph router"):
        router.add_task_from_relations({0: 1.0})
    model = TaskGraphModel(spec(tasks=3, router=None).model_copy(update={"router": RouterSpec(kind="poly")}))
    with pytest.raises(ModelError, match="needs the graph router"):
        model.add_task_from_relations("new", 2, relate={"t0": 1.0})
    assert model.task_names == ["t0", "t1", "t2"] and len(model.heads.heads) == 3  # nothing changed


@pytest.fixture
def tokenizer(tmp_path: Path) -> BertTokenizerFast:
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ","] + WORDS) + "\n")
    return BertTokenizerFast.from_pretrained(str(tmp_path), local_files_only=True)


def test_model_add_task_then_fold_predict_and_an_exact_save_load_round_trip(tmp_path: Path, tokenizer):
    torch.manual_seed(0)
    model = TaskGraphModel(spec(tasks=3, router={"gnn": {"hidden": 16}}), tokenizer=tokenizer)
    perturb(model)
    with pytest.raises(ModelError, match="unknown task"):
        model.add_task_from_relations("new", 2, relate={"nope": 1.0})
    with pytest.raises(ModelError, match="already exists"):
        model.add_task_from_relations("t1", 2, relate={"t0": 1.0})
    index = model.add_task_from_relations("new", 2, relate={"t0": 0.9, "t2": 0.3})
    assert index == 3 and model.task_index("new") == 3 and model.num_labels == [2, 3, 2, 2]
    assert model.spec.router.params.zero_shot == ["new"]
    assert ["t0", "new", 0.9] in [list(x) for x in model.spec.relations.declared]
    model.eval()
    ids = tokens(4, 6)
    routed = model(ids, None, "new").logits[:, :2]
    merged = model.merge_task("new")
    assert_close(merged(ids, torch.ones_like(ids)), routed, rtol=1e-4, atol=1e-5)
    assert model.fold("new").task == "new"
    results = model.predict("new", ["the movie was good", "not fun"])
    assert [len(r["probs"]) for r in results] == [2, 2]
    model.add_task_from_relations("newer", 3, relate={"new": 1.0})  # a zero-shot task related to another one
    model.save_pretrained(tmp_path / "ckpt")
    loaded = TaskGraphModel.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.task_names == ["t0", "t1", "t2", "new", "newer"]
    state, state2 = model.state_dict(), loaded.state_dict()
    assert state.keys() == state2.keys()
    for key in state:
        assert torch.equal(state[key], state2[key]), key
    for task in ("t1", "new", "newer"):
        assert torch.equal(loaded(ids, None, task).logits, model(ids, None, task).logits)
    assert torch.equal(loaded.router.relation_weights()[1], model.router.relation_weights()[1])


# ----------------------------------------------------------------------------- the planted check
def planted(
    seed: int, n: int, groups: list[list[int]], seq: int = 8, skills: int = 4
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each task counts which of its two skills appear (label 0..2); skill s is token s+1 among filler tokens
    20..99; the other group's skill tokens appear at random as distractors."""
    rng = np.random.default_rng(seed)
    data = []
    for members in groups:
        labels = np.arange(n) % 3
        rng.shuffle(labels)
        present = rng.random((n, skills)) < 0.5
        rank = np.argsort(np.argsort(rng.random((n, 2)), axis=1), axis=1)
        present[:, members] = rank < labels[:, None]
        ids = rng.integers(20, 100, size=(n, seq))
        pos = np.argsort(rng.random((n, seq)), axis=1)[:, :skills]
        rows, cols = np.nonzero(present)
        ids[rows, pos[rows, cols]] = cols + 1
        data.append((torch.tensor(ids), torch.tensor(labels)))
    return data


def train_planted(
    kind: str, skills: int, train: list, test: list, seed: int, steps: int = 300
) -> tuple[TaskGraphModel, list[float]]:
    torch.manual_seed(seed)
    model = TaskGraphModel(
        Spec.model_validate(
            {
                "model": {"config": dict(BERT), "target_modules": ["query", "value"]},
                "adapters": {"rank": 2, "alpha": 4, "skills": skills},
                "router": {"kind": kind},
                "relations": {"declared": []},  # nothing declared: the groups must be learned
                "tasks": [{"name": f"t{i}", "num_labels": 3} for i in range(len(train))],
            }
        )
    )
    groups = model.parameter_groups()
    opt = torch.optim.AdamW(
        [
            {"params": groups["adapters"], "lr": 2e-2},
            {"params": groups["router"], "lr": 1e-2},
            {"params": groups["heads"], "lr": 2e-2},
        ],
        weight_decay=0.0,
    )
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        task = torch.randint(len(train), (32,), generator=gen)
        row = torch.randint(train[0][0].shape[0], (32,), generator=gen)
        ids = torch.stack([train[t][0][r] for t, r in zip(task.tolist(), row.tolist())])
        labels = torch.stack([train[t][1][r] for t, r in zip(task.tolist(), row.tolist())])
        loss = model(ids, None, task, labels=labels).loss + model.router.regularizer()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = [float((model(ids, None, t).logits.argmax(-1) == y).float().mean()) for t, (ids, y) in enumerate(test)]
    return model, acc


PLANTED_SEED = 2  # one seed keeps the test fast. Over seeds 0–5 (graph vs shared accuracy; R within vs between):
# graph won in 6 of 6, by > 0.05 in 5 (seed 3: 0.969 vs 0.964); within > between in 6 of 6, by > 0.05 in 5
# (seed 0: 0.290 vs 0.286). Graph 0.89–0.97, shared 0.77–0.96, private 0.86–0.92.


def test_planted_groups_are_learned_without_declared_relations_and_graph_beats_shared(one_thread):
    groups = [[0, 1]] * 3 + [[2, 3]] * 3  # tasks 0-2 need skills 0, 1; tasks 3-5 need skills 2, 3
    train, test = planted(PLANTED_SEED, 512, groups), planted(PLANTED_SEED + 100, 256, groups)
    graph, graph_acc = train_planted("graph", 4, train, test, PLANTED_SEED)
    _, shared_acc = train_planted("shared", 1, train, test, PLANTED_SEED)
    index, r = graph.router.relation_weights()
    within = [float(w) for (i, j), w in zip(index.T.tolist(), r) if i // 3 == j // 3]  # planted groups of 3
    between = [float(w) for (i, j), w in zip(index.T.tolist(), r) if i // 3 != j // 3]
    print(
        f"planted: graph acc {np.mean(graph_acc):.3f} vs shared {np.mean(shared_acc):.3f}; "
        f"R within {np.mean(within):.3f} vs between {np.mean(between):.3f}"
    )
    assert np.mean(within) > np.mean(between) + 0.05
    assert np.mean(graph_acc) > np.mean(shared_acc) + 0.05
    # zero-shot: a new task related to two group-0 tasks routes like group 0, not like group 1
    new = graph.add_task_from_relations("held-out", 3, relate={"t0": 1.0, "t1": 1.0})
    w = graph.router(torch.arange(new + 1)).weights.flatten(1)  # [T+1, L·H·K]
    to_group = [float((w[new] - w[g * 3 : g * 3 + 3].mean(0)).detach().norm()) for g in (0, 1)]
    assert to_group[0] < to_group[1]


# ----------------------------------------------------------------------------- inference cache
def test_inference_runs_the_gnn_once_until_an_input_changes():
    torch.manual_seed(0)
    model = TaskGraphModel(spec(tasks=4))
    perturb(model.router)
    router = model.router.eval()
    runs = []
    router.encoder.register_forward_hook(lambda *_: runs.append(1))
    tasks = torch.tensor([0, 2])
    with torch.no_grad():
        first = router(tasks)
        again = router(torch.tensor([1, 2, 3]))
    assert len(runs) == 1  # the second batch read the cached encoding
    fresh = router.encode(tasks)  # grad mode on, parameters trainable: computed, not cached
    assert len(runs) == 2
    assert_close(first.weights, fresh.weights, rtol=1e-6, atol=1e-7)
    assert_close(again.weights[1], first.weights[1])  # task 2 in both batches
    opt = torch.optim.SGD(router.parameters(), lr=0.5)
    (fresh.weights[:, :, :, 0].sum() + fresh.gates.sum()).backward()
    opt.step()  # parameters change in place (their versions move): the cache is stale
    with torch.no_grad():
        moved = router(tasks)
    assert len(runs) == 3 and (moved.weights - first.weights).abs().max() > 1e-4
    with torch.no_grad():
        router.relations.theta.add_(1.0)  # a buffer or parameter edited in place also invalidates it
        router(tasks)
    assert len(runs) == 4
    router.requires_grad_(False)  # a frozen router in grad mode (adapters training) reads the cache too
    router(tasks)
    assert len(runs) == 4
    guest = model.add_task_from_relations("t9", 2, {"t0": 1.0})  # a task added: new parameters, new cache
    with torch.no_grad():
        out = router(torch.tensor([guest]))
    assert len(runs) == 5 and out.weights.shape[0] == 1


def test_relation_message_edges_are_cached_until_the_slots_change():
    torch.manual_seed(0)
    T = 120
    router = GraphRouter(
        T,
        2,
        1,
        2,
        RouterSpec(kind="graph", gnn={"hidden": 8}),
        relations=spec().relations.model_copy(update={"top_k": 3, "refresh_every": 2}),
    ).train()
    rel = router.relations
    for _ in range(3):
        router(torch.arange(0, T, 7))
        index, r = rel.weights()
        edges, r_directed = rel.directed(index, r)
        expected = torch.cat([index, index.flip(0)], dim=1)  # every pair both ways (no zero-shot tasks)
        assert torch.equal(edges, expected) and torch.equal(r_directed, torch.cat([r, r]))
        assert torch.equal(index, rel.index[:, rel.active])
    plan = rel._plan()
    router(torch.arange(0, T, 7))  # the 4th forward: no refresh (every 2 forwards, from the 1st)
    assert rel._plan() is plan
    router(torch.arange(0, T, 7))  # the 5th: a refresh rewrites the slots in place
    assert rel._plan() is not plan
