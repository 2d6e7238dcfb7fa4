"""TaskGraphModel forward on tiny BERT / GPT-2 / Llama / T5-encoder models with 3 tasks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel

FAMILIES = ["bert", "gpt2", "llama", "t5"]
TASKS = [0, 1, 2, 0, 2, 1, 1]


def build(spec_for, perturb, family: str = "bert", router: str = "mhr", heads: int = 2) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(spec_for(family, router=router, heads=heads))
    perturb(model)
    return model.eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_batch_equals_per_task_batches(spec_for, perturb, batch, family: str) -> None:
    model = build(spec_for, perturb, family)
    ids, mask = batch(len(TASKS), 9)
    task_ids = torch.tensor(TASKS)
    mixed = model(ids, mask, task_ids).logits  # [7, 5]
    assert mixed.shape == (7, 5)
    for t, labels in enumerate([2, 3, 5]):
        rows = (task_ids == t).nonzero().squeeze(1)
        alone = model(ids[rows], mask[rows], t).logits  # [n_t, 5]
        torch.testing.assert_close(mixed[rows], alone, rtol=1e-5, atol=1e-5)
        assert (mixed[rows, labels:] == torch.finfo(mixed.dtype).min).all()  # padding past the task's labels
    probs = torch.softmax(mixed, dim=-1)
    assert torch.allclose(probs.sum(-1), torch.ones(7))
    assert (probs[task_ids == 0, 2:] == 0).all()


def test_collator_distinct_tasks_give_the_same_logits(spec_for, perturb, batch) -> None:
    """distinct=(tasks, inverse) from the collator replaces the model's own torch.unique exactly."""
    model = build(spec_for, perturb)
    ids, mask = batch(len(TASKS), 9)
    task_ids = torch.tensor(TASKS)
    own = model(ids, mask, task_ids)
    given = model(ids, mask, task_ids, distinct=torch.unique(task_ids, return_inverse=True))
    assert torch.equal(own.logits, given.logits) and torch.equal(own.tasks, given.tasks)


def test_same_input_is_adapted_differently_per_task(spec_for, perturb, batch) -> None:
    """With identical heads, different tasks still give different logits: the routing differs."""
    model = build(spec_for, perturb)
    with torch.no_grad():
        for head in model.heads.heads[1:]:
            head.weight[:2].copy_(model.heads.heads[0].weight)
            head.bias[:2].copy_(model.heads.heads[0].bias)
    ids, mask = batch(1, 6)
    outs = [model(ids, mask, t) for t in range(3)]
    assert [o.tasks.tolist() for o in outs] == [[0], [1], [2]] and outs[0].inverse.tolist() == [0]
    assert outs[0].routing.weights.shape == (1, 4, 2, 3)
    assert not torch.allclose(outs[0].logits[:, :2], outs[1].logits[:, :2], atol=1e-4)
    assert not torch.allclose(outs[1].logits[:, :2], outs[2].logits[:, :2], atol=1e-4)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_last_token_pooling_ignores_right_padding(spec_for, perturb, family: str) -> None:
    model = build(spec_for, perturb, family)
    ids = torch.randint(3, 100, (1, 5), generator=torch.Generator().manual_seed(2))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)  # right padding
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]])
    short = model(ids, torch.ones_like(ids), "beta").logits
    long = model(padded, mask, "beta").logits
    torch.testing.assert_close(short, long, rtol=1e-5, atol=1e-5)


def test_task_ids_as_names_ints_tensor_or_one_task(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb)
    ids, mask = batch(3, 5)
    by_tensor = model(ids, mask, torch.tensor([2, 0, 2])).logits
    by_names = model(ids, mask, ["gamma", "alpha", "gamma"]).logits
    by_ints = model(ids, mask, [2, 0, 2]).logits
    assert torch.equal(by_tensor, by_names) and torch.equal(by_tensor, by_ints)
    assert torch.equal(model(ids, mask, "beta").logits, model(ids, mask, [1, 1, 1]).logits)
    assert model.task_index("gamma") == 2 and model.task_index(1) == 1
    assert model.task_names == ["alpha", "beta", "gamma"] and model.num_labels == [2, 3, 5]


def test_unknown_task_and_bad_task_ids_are_clear_errors(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb)
    ids, mask = batch(2, 5)
    with pytest.raises(
        ModelError, match=r"unknown task 'delta'; did you mean 'beta'\? known tasks are \['alpha', 'beta', 'gamma'\]"
    ):
        model(ids, mask, ["alpha", "delta"])
    with pytest.raises(ModelError, match=r"task ids \[3\] are out of range: 3 tasks"):
        model(ids, mask, torch.tensor([0, 3]))
    with pytest.raises(ModelError, match="task id -1 is out of range"):
        model(ids, mask, [0, -1])
    with pytest.raises(ModelError, match="1 entries for a batch of 2"):
        model(ids, mask, ["alpha"])
    with pytest.raises(ModelError, match="integer tensor"):
        model(ids, mask, torch.tensor([0.0, 1.0]))
    with pytest.raises(ModelError, match=r"at least one example, got shape \(0, 5\)"):
        model(ids[:0], mask[:0], [])


def test_loss_is_mean_cross_entropy_over_own_labels(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb)
    ids, mask = batch(4, 5)
    tasks, labels = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 2, 4, 0])
    out = model(ids, mask, tasks, labels=labels)
    expected = torch.stack(
        [F.cross_entropy(out.logits[b, :n][None], labels[b][None]) for b, n in enumerate([2, 3, 5, 5])]
    ).mean()
    torch.testing.assert_close(out.loss, expected)
    assert model(ids, mask, tasks).loss is None
    with pytest.raises(ModelError, match="label 2 of example 0 is out of range for task 'alpha', which has 2 labels"):
        model(ids, mask, tasks, labels=torch.tensor([2, 0, 0, 0]))


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_gradients_reach_adapters_router_heads_not_base(spec_for, perturb, batch, family: str) -> None:
    model = build(spec_for, perturb, family).train()
    ids, mask = batch(6, 7)
    model(ids, mask, [0, 1, 2, 0, 1, 2], labels=torch.tensor([0, 1, 2, 1, 0, 4])).loss.backward()
    groups = model.parameter_groups()
    assert set(groups) == {"adapters", "router", "heads"}
    for name, params in groups.items():
        assert params and all(p.requires_grad for p in params), name
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params), name
    trainable = {id(p) for ps in groups.values() for p in ps}
    frozen = [p for p in model.parameters() if id(p) not in trainable]
    assert frozen and all(not p.requires_grad and p.grad is None for p in frozen)
    assert len(trainable) == sum(1 for p in model.parameters() if p.requires_grad)
    assert len(groups["adapters"]) == 2 * model.num_layers  # A and B of every layer


def test_untrained_model_equals_base_and_layout(spec_for, batch) -> None:
    """B starts at zero: the pooled features equal the plain base model's."""
    torch.manual_seed(0)
    spec = spec_for("bert", router="poly", skills=4)
    model = TaskGraphModel(spec).eval()
    assert model.num_layers == 4 and model.skills == 4
    assert model.adapted_names[0] == "encoder.layer.0.attention.self.query"
    assert all(isinstance(layer, RoutedLoRALinear) and layer.index == l for l, (_, layer) in enumerate(model.adapted))
    from taskgraph.model.base import model_from_config

    plain = model_from_config(spec.model.config, seed=spec.training.seed).eval()
    ids, mask = batch(3, 6)
    hidden = plain(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    expected = model.heads.heads[1](pooled)
    torch.testing.assert_close(model(ids, mask, "beta").logits[:, :3], expected)


def test_private_and_shared_inventory_sizes(spec_for) -> None:
    assert TaskGraphModel(spec_for("bert", router="private")).skills == 3  # K = T
    assert TaskGraphModel(spec_for("bert", router="shared")).skills == 1


def test_repr_is_short_and_says_what_matters(spec_for) -> None:
    text = repr(TaskGraphModel(spec_for("bert", router="mhr", heads=2)))
    assert len(text.splitlines()) <= 8
    for part in [
        "tasks=3",
        "layers=4",
        "heads=2",
        "skills=3",
        "rank=4",
        "BertModel",
        "['query', 'value']",
        "MHRRouter",
        "num_labels=[2, 3, 5]",
    ]:
        assert part in text, part


def test_no_target_matches_is_a_model_error(spec_for) -> None:
    spec = spec_for("bert")
    spec.model.target_modules = ["nonexistent"]
    with pytest.raises(ModelError, match="nonexistent"):
        TaskGraphModel(spec)


def test_dtype_and_device_follow_to(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb).to(torch.float64)
    ids, mask = batch(3, 5)
    out = model(ids, mask, [0, 1, 2])
    assert out.logits.dtype == torch.float64 and out.logits.device == ids.device
    assert model.device == torch.device("cpu")


def test_bfloat16_model(spec_for, perturb, batch) -> None:
    model = build(spec_for, perturb, "llama")
    ids, mask = batch(3, 5)
    ref = model(ids, mask, [0, 1, 2]).logits
    out = model.to(torch.bfloat16)(ids, mask, [0, 1, 2]).logits
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)
