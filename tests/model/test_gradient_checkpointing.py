"""Gradient checkpointing (``training.gradient_checkpointing: true``, :mod:`taskgraph.model.grad_checkpointing`) with
routed adapters: every registered router, on an encoder (BERT, a mixed classification batch) and on causal LMs
(GPT-2 and Llama, a batch mixing classification, free-text and ``choices`` rows), through the fused and the per-layer
path, gives the gradients of the run without it — dropout on (BERT's and GPT-2's own and the adapters'), so the
recomputation replays the forward's draws. Measured deviation: 0 (bitwise) in every case; the tests allow 1e-6.

Beside it: the blocks really are recomputed in the backward, under the routing object of their forward, and the
fused factors are computed once per batch, not again; ``taskgraph train`` with it gives the weights of a run without
it; a base that cannot checkpoint is refused before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from taskgraph.adapters.routed_lora import RoutedLoRALinear
from taskgraph.data.lm_inputs import causal_rows
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.model.footprint import plan_model
from taskgraph.model.grad_checkpointing import enable_gradient_checkpointing, gradient_checkpointing_enabled
from taskgraph.registry import ROUTERS
from taskgraph.routing.base import Router
from taskgraph.spec.models import Spec
from tests.model.conftest import POOLING, TARGETS, TINY, _perturb

KINDS = ROUTERS.kinds()
FAMILIES = ("bert", "gpt2", "llama")
CASES = [(f, fused) for f in FAMILIES for fused in (True, False) if fused or f != "gpt2"]  # GPT-2: fused path only
HEADS = 2  # MHR's splits where the kind takes more than one
LM_TASKS = [
    {"name": "c", "num_labels": 3},
    {"name": "g", "objective": "generate", "max_new_tokens": 6},
    {"name": "h", "objective": "generate", "choices": ["x", "y"], "max_new_tokens": 6},
]
CLASSIFY_TASKS = [{"name": "a", "num_labels": 2}, {"name": "b", "num_labels": 3}, {"name": "c", "num_labels": 5}]


def _splits(kind: str) -> int:
    cls: type[Router] = ROUTERS.get(kind).obj
    try:
        cls(3, 2, HEADS, 3, _spec("bert", kind, 1, False).router)
    except (ModelError, TypeError):
        return 1
    return HEADS


def _spec(family: str, kind: str, splits: int, checkpointing: bool, **router: Any) -> Spec:
    """Three tasks on a tiny ``family`` model (dropout on everywhere); a causal LM's tasks classify and generate."""
    config = dict(TINY[family])
    if family != "bert":
        config.update(bos_token_id=0, eos_token_id=1)
    return Spec.model_validate(
        {
            "model": {"config": config, "target_modules": TARGETS[family], "pooling": POOLING[family]},
            "adapters": {"rank": 4, "alpha": 8, "skills": 3, "splits": splits, "dropout": 0.1},
            "router": {"kind": kind, **router},
            "tasks": CLASSIFY_TASKS if family == "bert" else LM_TASKS,
            "training": {"gradient_checkpointing": checkpointing},
        }
    )


def _batch(family: str) -> dict[str, Tensor]:
    """A mixed-task batch: every task in it, rows of different lengths; a causal LM's with target rows."""
    tasks = torch.tensor([0, 2, 1, 2, 0, 1])
    if family == "bert":
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(3, 100, (6, 9), generator=gen)
        mask = (torch.arange(9)[None, :] < torch.tensor([9, 5, 7, 9, 3, 6])[:, None]).long()
        return {
            "input_ids": ids * mask,
            "attention_mask": mask,
            "task_ids": tasks,
            "labels": torch.tensor([1, 4, 2, 0, 0, 1]),
        }
    prompts = [[5, 6, 7], [8, 9, 10, 11], [12, 13], [14, 15, 16], [17, 18], [19, 20, 21]]
    targets = [None, [30, 1], [31, 32, 1], [33, 1], None, [34, 35, 36, 1]]
    ids, mask, labels = causal_rows(prompts, targets, 0)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "task_ids": tasks,
        "labels": torch.tensor([2, 0, 0, 1, 1, 0]),
        "targets": labels,
    }


def _model(spec: Spec, fused: bool) -> TaskGraphModel:
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    _perturb(model)
    model.fuse_layers = fused
    return model.train()


def _gradients(model: TaskGraphModel, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every trainable parameter's gradient of one step's loss (task loss + the router's regularizer)."""
    torch.manual_seed(1)  # dropout and the routers' random draws
    out = model(**batch)
    (out.loss + model.router.regularizer()).backward()
    return {
        n: p.grad if p.grad is not None else torch.zeros_like(p) for n, p in model.named_parameters() if p.requires_grad
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("family", "fused"), CASES, ids=[f"{f}-{'fused' if u else 'per-layer'}" for f, u in CASES])
def test_checkpointed_gradients_equal_the_plain_run(family: str, kind: str, fused: bool) -> None:
    splits = _splits(kind)
    batch = _batch(family)
    plain = _gradients(_model(_spec(family, kind, splits, False), fused), batch)
    model = _model(_spec(family, kind, splits, True), fused)
    assert gradient_checkpointing_enabled(model.base)
    checkpointed = _gradients(model, batch)
    assert checkpointed.keys() == plain.keys()
    for name, grad in plain.items():
        assert_close(checkpointed[name], grad, rtol=0, atol=1e-6, msg=name)
    adapters = [n for n in plain if n.endswith((".A", ".B"))]
    assert adapters and all(bool(plain[n].abs().max() > 0) for n in adapters)  # every inventory got a gradient


def test_the_blocks_are_recomputed_under_their_forward_routing_and_the_factors_are_not() -> None:
    """Each adapted layer runs twice per step (its block's forward, its recomputation in the backward), both times
    reading the one ``BatchRouting`` of the step; the fused factors are computed once and never mixed per layer."""
    model = _model(_spec("llama", "poly", 1, True), fused=True)
    seen: list[tuple[str, int]] = []
    for name, layer in model.adapted:
        layer.register_forward_hook(lambda m, i, o, name=name: seen.append((name, id(m.context.current))))
    fused_calls = []
    fused = model.fused
    model.fused = lambda routing, inverse: fused_calls.append(1) or fused(routing, inverse)  # type: ignore[assignment]
    mixed = []
    original = RoutedLoRALinear.task_factors
    RoutedLoRALinear.task_factors = lambda self, batch: mixed.append(1) or original(self, batch)  # type: ignore[method-assign]
    try:
        out = model(**_batch("llama"))
        forward = list(seen)
        out.loss.backward()
    finally:
        RoutedLoRALinear.task_factors = original  # type: ignore[method-assign]
    recomputed = seen[len(forward) :]
    assert [n for n, _ in forward] == model.adapted_names
    assert sorted(n for n, _ in recomputed) == sorted(model.adapted_names)
    assert len({routing for _, routing in seen}) == 1  # one BatchRouting object, forward and backward
    assert model.context.current is None  # and none set once the step is over
    assert len(fused_calls) == 1 and not mixed


def test_train_with_checkpointing_gives_the_weights_of_a_plain_run(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Three steps of ``taskgraph train`` on a tiny BERT (dropout on): the same losses and weights; a spec without
    the key dumps as before (its hash, and so every older run's resume, unchanged)."""
    import json

    import yaml
    from safetensors.torch import load_file

    from taskgraph.train import train
    from tests.train.conftest import spec_dict

    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    runs = {}
    for checkpointing in (False, True):
        data = spec_dict(tmp_path, steps=3, eval_every=3, checkpoint_every=3, gradient_checkpointing=checkpointing)
        runs[checkpointing] = run = tmp_path / f"run-{checkpointing}"
        train(Spec.model_validate(data), run, base_dir=tmp_path)
    losses = [
        [json.loads(line)["loss"] for line in (runs[c] / "log.jsonl").read_text().splitlines() if '"train"' in line]
        for c in (False, True)
    ]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    plain, checkpointed = (load_file(str(runs[c] / "model" / "model.safetensors")) for c in (False, True))
    assert plain.keys() == checkpointed.keys()
    for name, value in plain.items():
        assert_close(checkpointed[name], value, rtol=0, atol=1e-6, msg=name)
    recorded = [yaml.safe_load((runs[c] / "spec.yaml").read_text())["training"] for c in (False, True)]
    assert "gradient_checkpointing" not in recorded[0] and recorded[1]["gradient_checkpointing"] is True


def test_a_base_that_cannot_checkpoint_is_refused() -> None:
    """ALBERT shares one layer's weights across its depth and has no checkpointing in transformers: refused when the
    spec is planned (``taskgraph validate``) and when the model is built, with what to change."""
    albert = dict(
        model_type="albert", hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, vocab_size=100,
    )  # fmt: skip
    data = {"model": {"config": albert, "target_modules": ["query", "value"]}, "tasks": CLASSIFY_TASKS}
    spec = Spec.model_validate({**data, "training": {"gradient_checkpointing": True}})
    for build in (plan_model, TaskGraphModel):
        with pytest.raises(ModelError, match="AlbertModel does not support gradient checkpointing.*false"):
            build(spec)
    with pytest.raises(ModelError, match="Sequential does not support"):
        enable_gradient_checkpointing(torch.nn.Sequential(), TaskGraphModel(Spec.model_validate(data)).context)


def test_the_memory_estimate_counts_one_block_under_checkpointing() -> None:
    footprint = plan_model(_spec("bert", "poly", 1, True))
    plain, checkpointed = (footprint.train_bytes(8, 512, checkpointing=c) for c in (False, True))
    s, b, h, layers = 512, 8, 32, 2
    per_layer = int(2 * s * b * h * (34 + 5 * 2 * s / h))
    assert plain - checkpointed == (layers - 1) * per_layer - layers * 4 * s * b * h


def test_compile_and_checkpointing_together_are_refused_by_the_spec() -> None:
    """Dynamo cannot trace a checkpoint whose recomputation sets the routing (``context_fn``): the spec says so."""
    from taskgraph.errors import SpecError
    from taskgraph.spec import spec_from_dict

    data = {"model": {"config": dict(TINY["bert"])}, "tasks": CLASSIFY_TASKS}
    with pytest.raises(SpecError, match="training: .*compile and gradient_checkpointing: choose one"):
        spec_from_dict({**data, "training": {"compile": True, "gradient_checkpointing": True}})
