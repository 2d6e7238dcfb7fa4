"""Zero-/few-shot routing baselines for a new task of a trained poly / mhr run: neighbour-averaged logits,
LoRAuter-style nearest tasks, LoraHub (CMA-ES on a few shots) and Arrow's per-token routing."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from taskgraph.adapt.data import resolve_block
from taskgraph.adapt.lorahub import lorahub_search, shot_loss
from taskgraph.adapt.neighbour_routing import nearest_task_logits, neighbour_logits, set_task_logits
from taskgraph.adapters.arrow import arrow_delta, arrow_prototypes, arrow_routing, arrow_weights, skill_factors
from taskgraph.adapters.context import BatchRouting
from taskgraph.data import TaskData, encode_examples, tokenizer_pad_id
from taskgraph.data.base import build_source
from taskgraph.data.examples import Examples
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.routing.base import Routing
from taskgraph.routing.poly import poly_weights
from taskgraph.spec import Spec, spec_from_dict
from tests.adapt.conftest import perturb, small_planted, tokens
from tests.conftest import minimal_spec


def routing_of(z: torch.Tensor) -> torch.Tensor:
    return poly_weights(z, temperature=1.0, sample=False)


# ----------------------------------------------------------------------------- neighbour-averaged logits
def test_neighbour_logits_is_the_relation_weighted_mean_of_the_rows() -> None:
    logits = torch.tensor([[1.0, -2.0], [5.0, 5.0], [3.0, 2.0]])[:, None, None, :]  # [T=3, L=1, H=1, K=2]
    row = neighbour_logits(logits, {0: 1.0, 2: 3.0})  # (1·[1, −2] + 3·[3, 2]) / 4
    assert row.shape == (1, 1, 2)
    assert torch.allclose(row[0, 0], torch.tensor([2.5, 1.0]))
    assert torch.equal(neighbour_logits(logits, {1: 0.7})[0, 0], torch.tensor([5.0, 5.0]))


def test_neighbour_logits_keeps_owned_skills_owned_and_rejects_bad_relations() -> None:
    inf = math.inf
    # task 2 owns skill 2: +inf in its row on it, -inf elsewhere; -inf on skill 2 in every other row
    logits = torch.tensor([[1.0, 3.0, -inf], [2.0, 0.0, -inf], [-inf, -inf, inf]])[:, None, None, :]
    row = neighbour_logits(logits, {0: 1.0, 1: 1.0, 2: 2.0})  # the owner votes on nothing
    assert torch.equal(row[0, 0], torch.tensor([1.5, 1.5, -inf]))
    with pytest.raises(ModelError, match="use only skills they own"):
        neighbour_logits(logits, {2: 1.0})
    with pytest.raises(ModelError, match="unknown task id 5"):
        neighbour_logits(logits, {5: 1.0})
    with pytest.raises(ModelError, match="every weight is 0"):
        neighbour_logits(logits, {0: 0.0})


# ----------------------------------------------------------------------------- nearest tasks (LoRAuter)
def seen_logits(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 2, 5, generator=torch.Generator().manual_seed(seed)) * 2  # [T, L, H, K]


def test_nearest_task_with_k1_routes_exactly_as_the_nearest_task() -> None:
    logits = seen_logits()
    row = nearest_task_logits(logits, torch.tensor([0.1, 0.9, 0.3, -0.2]), k=1, temperature=0.1)  # [L, H, K]
    assert row.shape == (3, 2, 5)
    assert torch.allclose(routing_of(row), routing_of(logits[1]), atol=1e-6)
    assert torch.allclose(row.amax(-1), torch.zeros(3, 2))  # the largest logit of every (layer, head) is 0


def test_nearest_task_with_all_tasks_and_equal_similarities_gives_the_mean_routing() -> None:
    logits = seen_logits(1)
    row = nearest_task_logits(logits, torch.full((4,), 0.5), k=4, temperature=1.0)
    assert torch.allclose(routing_of(row), routing_of(logits).mean(0), atol=1e-6)
    # unequal similarities: softmax(sim / τ) weights over the k nearest only
    sim = torch.tensor([0.0, 1.0, 2.0, -5.0])
    alpha = torch.softmax(torch.tensor([2.0, 1.0]) / 0.5, 0)
    want = alpha[0] * routing_of(logits[2]) + alpha[1] * routing_of(logits[1])
    assert torch.allclose(routing_of(nearest_task_logits(logits, sim, k=2, temperature=0.5)), want, atol=1e-6)
    with pytest.raises(ModelError, match="choose 1 ≤ k ≤ 4"):
        nearest_task_logits(logits, sim, k=5, temperature=1.0)


def test_nearest_task_drops_mass_on_owned_skills() -> None:
    inf = math.inf
    logits = torch.tensor([[0.0, 0.0, -inf], [-inf, -inf, inf]])[:, None, None, :]  # task 1 owns skill 2
    row = nearest_task_logits(logits, torch.tensor([0.0, 0.0]), k=2, temperature=1.0)
    assert torch.isneginf(row[0, 0, 2]) and torch.allclose(routing_of(row)[0, 0], torch.tensor([0.5, 0.5, 0.0]))
    with pytest.raises(ModelError, match="use only skills they own"):
        nearest_task_logits(logits, torch.tensor([0.0, 1.0]), k=1, temperature=1.0)


def test_set_task_logits_writes_a_row_and_refuses_other_routers() -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(Spec.model_validate(minimal_spec()))
    index = model.add_task_to_learn("d", 2)
    row = nearest_task_logits(model.router.logits[:index], torch.tensor([1.0, 0.0, 0.0]), k=1, temperature=1.0)
    set_task_logits(model, index, row)
    assert torch.equal(model.router.logits[index].detach(), row)
    with pytest.raises(ModelError, match=r"row must be \[4, 1, 4\]"):
        set_task_logits(model, index, row[:1])
    shared = TaskGraphModel(Spec.model_validate(minimal_spec(router={"kind": "shared"})))
    with pytest.raises(ModelError, match=r"only the routers \['mhr', 'poly'\] hold; this model's router is 'shared'"):
        set_task_logits(shared, 0, row)


# ----------------------------------------------------------------------------- LoraHub
HELD_OUT = 3  # the planted generative universe's last task, kept out of the run


def generative_model_with_new_task() -> tuple[TaskGraphModel, int, TaskData]:
    """A perturbed tiny GPT-2 poly run over the planted generative universe, task 'new' added, and 8 of its shots."""
    spec = planted_gen_spec(
        router="poly", tasks=4, held_out=1, skills=3, examples_per_task=60, hidden_size=16, num_heads=2,
        seq_len=8, vocab_size=24, steps=10, batch_size=8,
    )  # fmt: skip
    torch.manual_seed(0)
    model = TaskGraphModel(spec_from_dict(spec))
    perturb(model)
    block = resolve_block({"source": "planted-gen", "task": HELD_OUT}, ".", model.spec)
    index = model.add_task_to_learn("new", 1, data=block, generation={"objective": "generate", "max_new_tokens": 4})
    task = model.spec.tasks[index]
    train = build_source(task, ".").load("train")
    eight = Examples(train.task, train.labels[:8], token_ids=train.token_ids[:8], target_ids=train.target_ids[:8])
    shots = encode_examples(
        eight, index, tokenizer=model.tokenizer, max_length=model.spec.model.max_length,
        pad_id=tokenizer_pad_id(model.tokenizer), vocab_size=model.base.get_input_embeddings().num_embeddings,
        target=model.lm_info().for_task(task),
    )  # fmt: skip
    model.eval()
    return model, index, shots


def test_lorahub_finds_a_row_no_worse_than_uniform_and_is_seeded() -> None:
    model, index, shots = generative_model_with_new_task()
    before = model.router.logits.detach().clone()
    numpy_state = np.random.get_state()[1].copy()
    found = lorahub_search(model, index, shots, max_evaluations=12, seed=3)
    assert torch.equal(model.router.logits.detach(), before)  # the search leaves the model's row as it was
    assert np.array_equal(np.random.get_state()[1], numpy_state)  # and numpy's global generator
    record = found.record
    assert record["evaluations"] == 12 and record["searched_skills"] == 3
    set_task_logits(model, index, torch.zeros(1, 1, 1).expand_as(found.row))
    uniform = shot_loss(model, index, shots)
    assert record["uniform_loss"] == pytest.approx(uniform)
    set_task_logits(model, index, found.row)
    assert shot_loss(model, index, shots) == pytest.approx(record["best_loss"])  # the row gives the loss recorded
    assert record["best_loss"] < uniform  # the search moved off the uniform mix (perturbed skills differ)
    assert torch.allclose(found.weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    again = lorahub_search(model, index, shots, max_evaluations=12, seed=3)
    assert torch.equal(again.row, found.row) and again.record["best_loss"] == record["best_loss"]
    other = lorahub_search(model, index, shots, max_evaluations=12, seed=4)
    assert not torch.equal(other.row, found.row)


def test_lorahub_refuses_a_classification_task() -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(Spec.model_validate(minimal_spec()))
    index = model.add_task_to_learn("d", 2)
    with pytest.raises(ModelError, match="searches generative tasks"):
        lorahub_search(model, index, None, max_evaluations=2)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- Arrow
def random_lora(k: int = 3, r: int = 2, d_in: int = 12, d_out: int = 10, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(k, r, d_in, generator=gen, dtype=torch.float64)  # [K, r, d_in]
    B = torch.randn(k, d_out, r, generator=gen, dtype=torch.float64)  # [K, d_out, r]
    return A, B


def test_arrow_prototypes_are_the_dense_svds_top_right_singular_vectors() -> None:
    A, B = random_lora()
    proto = arrow_prototypes(A, B)  # [K, d_in]
    assert proto.shape == (3, 12)
    for k in range(3):
        dense = torch.linalg.svd(B[k] @ A[k]).Vh[0]  # [d_in] of ΔW_k [d_out, d_in]
        assert abs(float(proto[k] @ dense)) == pytest.approx(1.0, abs=1e-10)
    assert torch.allclose(proto.norm(dim=1), torch.ones(3, dtype=torch.float64))


def test_arrow_weights_are_a_softmax_over_the_top_k_scores() -> None:
    A, B = random_lora(k=5)
    proto = arrow_prototypes(A, B)  # [5, 12]
    x = torch.randn(2, 4, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # [B, S, d_in]
    w = arrow_weights(x, proto, top_k=2)  # [2, 4, 5]
    assert w.shape == (2, 4, 5)
    assert torch.allclose(w.sum(-1), torch.ones(2, 4, dtype=torch.float64))
    assert bool(((w > 0).sum(-1) == 2).all())
    scores = (x @ proto.T).abs()  # [2, 4, 5]
    top = scores.topk(2, dim=-1)
    assert torch.allclose(w.gather(-1, top.indices), torch.softmax(top.values, -1))
    assert bool(((arrow_weights(x, proto, top_k=9) > 0).sum(-1) == 5).all())  # top_k ≥ K keeps every skill
    # the delta mixes the skills' outputs: Σ_k w_k · s · B_k A_k x
    delta = arrow_delta(x, A, B, w, scaling=0.5)  # [2, 4, 10]
    want = 0.5 * torch.einsum("bsk,kod,bsd->bso", w, B @ A, x)
    assert torch.allclose(delta, want)


def test_skill_factors_are_what_one_hot_routing_mixes_in_every_head() -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(Spec.model_validate(small_planted("mhr", heads=2)))
    perturb(model)
    _, layer = model.adapted[0]
    A, B = skill_factors(layer)  # [K, r, d_in], [K, d_out, r]
    x = torch.randn(layer.skills, 3, layer.in_features)  # one example per skill
    weights = torch.eye(layer.skills).expand(layer.heads, -1, -1).transpose(0, 1)  # [K, H, K] one-hot on k
    routing = Routing(torch.ones(layer.skills, model.num_layers), weights[:, None].expand(-1, model.num_layers, -1, -1))
    layer.eval()
    with torch.no_grad(), model.context.use(BatchRouting(routing, torch.arange(layer.skills))):
        routed = layer(x) - layer.base(x)  # [K, 3, d_out]
    per_skill = layer.scaling * torch.einsum("ksd,krd,kor->kso", x, A, B)
    assert torch.allclose(routed, per_skill, atol=1e-6)


def test_arrow_with_one_skill_equals_the_routed_model_and_restores_it() -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(
        Spec.model_validate(minimal_spec(adapters={"rank": 4, "alpha": 8, "skills": 1, "splits": 1}))
    )
    perturb(model)
    model.eval()
    ids, task_ids = tokens(4, 8), torch.tensor([0, 1, 2, 0])
    logits_before = model.router.logits.detach().clone()
    with torch.no_grad():
        routed = model(ids, None, task_ids).logits  # [4, C]
        with arrow_routing(model) as arrows:
            assert len(arrows) == model.num_layers and all(a.top_k == 4 for a in arrows)
            arrow = model(ids, None, task_ids).logits
        after = model(ids, None, task_ids).logits
    assert torch.allclose(arrow, routed, atol=1e-5)
    assert torch.equal(after, routed)  # the routed layers are back
    assert torch.equal(model.router.logits.detach(), logits_before)
    assert all(model.base.get_submodule(name) is layer for name, layer in model.adapted)


def test_arrow_routing_changes_a_multi_skill_model_per_token() -> None:
    torch.manual_seed(0)
    model = TaskGraphModel(Spec.model_validate(small_planted("poly")))
    perturb(model)
    model.eval()
    ids = tokens(3, 8)
    with torch.no_grad():
        routed = model.features(ids, None, torch.tensor([0, 1, 2]))
        with arrow_routing(model, top_k=2):
            arrow_a = model.features(ids, None, torch.tensor([0, 1, 2]))
            arrow_b = model.features(ids, None, torch.tensor([5, 6, 7]))
        restored = model.features(ids, None, torch.tensor([0, 1, 2]))
    assert not torch.allclose(arrow_a, routed, atol=1e-4)  # the hook is live: Arrow's mixing, not the router's
    assert torch.equal(arrow_a, arrow_b)  # no task id: the same tokens route the same
    assert torch.equal(restored, routed)


def test_lorahub_without_cma_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    model, index, shots = generative_model_with_new_task()
    monkeypatch.setitem(sys.modules, "cma", None)  # import cma raises ImportError
    with pytest.raises(ModelError, match=r"pip install 'taskgraph\[lorahub\]'"):
        lorahub_search(model, index, shots, max_evaluations=2)
