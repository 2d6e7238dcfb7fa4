"""A quantized frozen base (``model.quantize: int8 | nf4``, :mod:`taskgraph.model.quantize`) under routed adapters.

Every router trains on an int8 base with finite losses and gradients on the adapters, router and heads only, the
quantized weights untouched; the quantized base stays close to its full-precision source (relative error of the
last hidden states, measured on these tiny random models: int8 ≤ 0.012, nf4 ≤ 0.14; allowed: int8 0.02, nf4 0.2)
and an untrained routed model on it is that base exactly; a checkpoint holds no base weights, records the
quantization and the source's fingerprint, and loads to the same logits bit for bit; folding into the quantized
weights is refused, and the explicit de-quantized fold equals the routed model; ``taskgraph export --format peft``
writes the exact LoRA beside the full-precision source; ``taskgraph merge`` works and ``--fold-into-base`` is
refused; a missing torchao is a clear error (exit 2). nf4 runs here on the CPU through torchao (hidden size 128: nf4
quantizes in blocks of 64 × 256 values).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import Tensor
from torch.testing import assert_close

from taskgraph.cli import main
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.model.base import model_from_config
from taskgraph.model.quantize import QuantizedConv1D, dense, is_quantized, quantize_base
from taskgraph.registry import ROUTERS
from taskgraph.spec import load_spec
from taskgraph.spec.models import Spec
from taskgraph.train.run_checkpoint import spec_hash
from tests.merge.conftest import planted, save_run
from tests.model.conftest import POOLING, TARGETS, TINY, _perturb

KINDS = ROUTERS.kinds()
WIDE = {  # hidden 128: every weight a multiple of 64 × 256 values, as nf4 needs
    "bert": {**TINY["bert"], "hidden_size": 128, "intermediate_size": 256},
    "gpt2": {**TINY["gpt2"], "n_embd": 128},
    "llama": {**TINY["llama"], "hidden_size": 128, "intermediate_size": 256, "num_key_value_heads": 2},
}
TOLERANCE = {"int8": 0.02, "nf4": 0.2}  # relative error of the last hidden states vs the full-precision base
TASKS = [{"name": "a", "num_labels": 2}, {"name": "b", "num_labels": 3}]
IDS = torch.randint(1, 64, (4, 8), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 8, [1] * 3 + [0] * 5])
TASK_IDS = torch.tensor([0, 1, 1, 0])


def _spec(quantize: str = "int8", router: str = "poly", family: str = "bert", config: dict | None = None) -> Spec:
    splits = 2 if router == "mhr" else 1
    return Spec.model_validate(
        {
            "model": {
                "config": dict(config or TINY[family]),
                "target_modules": TARGETS[family],
                "pooling": POOLING[family],
                "quantize": quantize,
            },
            "adapters": {"rank": 4, "alpha": 8, "skills": 3, "splits": splits},
            "router": {"kind": router, **({"gate_threshold": 0.0} if router == "graph" else {})},
            "tasks": TASKS,
        }
    )


def _logits(model: TaskGraphModel, task_ids: Any = TASK_IDS) -> Tensor:
    with torch.no_grad():
        return model.eval()(IDS, MASK, task_ids).logits


def _relative(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ----------------------------------------------------------------------------- the spec
def test_quantize_defaults_to_none_and_keeps_old_spec_hashes(write):
    plain = {"model": {"config": dict(TINY["bert"])}, "tasks": TASKS}
    spec, explicit = (
        Spec.model_validate(plain),
        Spec.model_validate({**plain, "model": {**plain["model"], "quantize": "none"}}),
    )
    assert spec.model.quantize == "none" and "quantize" not in spec.model_dump(mode="json")["model"]
    assert spec_hash(spec) == spec_hash(explicit)
    quantized = Spec.model_validate({**plain, "model": {**plain["model"], "quantize": "int8"}})
    assert spec_hash(quantized) != spec_hash(spec) and quantized.model_dump(mode="json")["model"]["quantize"] == "int8"
    path = write("model:\n  config: {model_type: bert}\n  quantize: int4\ntasks:\n  - {name: a, num_labels: 2}\n")
    with pytest.raises(Exception, match=r"spec.yaml:3: model.quantize: Input should be 'none', 'int8' or 'nf4'"):
        load_spec(path)


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("router", KINDS)
def test_every_router_trains_on_an_int8_base(router):
    torch.manual_seed(0)
    model = TaskGraphModel(_spec("int8", router)).train()
    assert all(is_quantized(layer.base.weight) for _, layer in model.adapted)
    frozen = {name: dense(p.detach()).clone() for name, p in model.base.named_parameters() if is_quantized(p)}
    assert len(frozen) == 13  # every linear layer of the 2-layer BERT (6 per block) and its pooler
    trainable = {id(p) for group in model.parameter_groups().values() for p in group}
    optimizer = torch.optim.AdamW([p for g in model.parameter_groups().values() for p in g], lr=1e-2)
    labels = torch.tensor([1, 2, 0, 1])
    losses = []
    for _ in range(3):
        loss = model(IDS, MASK, TASK_IDS, labels=labels).loss
        loss.backward()
        with_grad = [(n, p) for n, p in model.named_parameters() if p.grad is not None]
        assert with_grad and all(id(p) in trainable for _, p in with_grad)  # adapters, router, heads only
        assert all(bool(torch.isfinite(p.grad).all()) for _, p in with_grad)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] != losses[0]
    assert any(bool(layer.B.detach().abs().sum() > 0) for _, layer in model.adapted)  # the adapters learned
    for name, p in model.base.named_parameters():
        if name in frozen:
            assert not p.requires_grad and torch.equal(dense(p.detach()), frozen[name])


@pytest.mark.parametrize("router", ["shared", "poly", "graph"])
def test_nf4_trains_too(router):
    torch.manual_seed(0)
    model = TaskGraphModel(_spec("nf4", router, config=WIDE["bert"])).train()
    assert type(model.adapted[0][1].base.weight).__name__ == "NF4Tensor"
    loss = model(IDS, MASK, TASK_IDS, labels=torch.tensor([1, 2, 0, 1])).loss
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.adapter_parameters())
    assert all(p.grad is None for p in model.base.parameters() if is_quantized(p))


@pytest.mark.parametrize("kind", ["int8", "nf4"])
def test_gradient_checkpointing_on_a_quantized_base_gives_the_same_gradients(kind):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        spec = _spec(kind, "poly", "llama", config=WIDE["llama"]).model_dump(mode="json")
        spec["training"]["gradient_checkpointing"] = checkpointing
        model = TaskGraphModel(Spec.model_validate(spec)).train()
        _perturb(model)
        model(IDS, MASK, TASK_IDS, labels=torch.tensor([1, 2, 0, 1])).loss.backward()
        grads.append([p.grad for p in model.adapter_parameters()])
    for plain, checkpointed in zip(*grads):
        assert_close(checkpointed, plain, rtol=0, atol=1e-6)  # measured: 0


# ----------------------------------------------------------------------------- the quantized base
@pytest.mark.parametrize(
    ("kind", "family", "generative"),
    [("int8", "bert", False), ("int8", "gpt2", True), ("int8", "llama", True), ("nf4", "bert", False)]
    + [("nf4", "gpt2", False), ("nf4", "llama", True)],
)
def test_the_quantized_base_is_close_to_its_source_and_an_untrained_model_is_that_base(kind, family, generative):
    config = WIDE[family]
    source = model_from_config(config, seed=0, generative=generative).eval()
    quantized = copy.deepcopy(source)
    names = quantize_base(quantized, kind)
    if generative:  # the LM head (GPT-2's is tied to the token embedding) stays full precision
        assert not is_quantized(quantized.get_output_embeddings().weight)
        assert all("lm_head" not in n for n in names)
    if family == "gpt2":
        assert all(isinstance(quantized.get_submodule(n), QuantizedConv1D) for n in names)
    trunk = (lambda m: m.base_model) if generative else (lambda m: m)
    with torch.no_grad():
        want = trunk(source)(input_ids=IDS, attention_mask=MASK).last_hidden_state
        have = trunk(quantized)(input_ids=IDS, attention_mask=MASK).last_hidden_state
    assert 0 < _relative(have, want) <= TOLERANCE[kind]
    tasks = [{"name": "a", "objective": "generate"}] if generative else TASKS
    spec = Spec.model_validate(
        {
            "model": {"config": config, "target_modules": TARGETS[family], "pooling": "mean", "quantize": kind},
            "tasks": tasks,
        }
    )
    routed = TaskGraphModel(spec, base=quantized).eval()  # B = 0: exactly the quantized base
    with torch.no_grad():
        hidden = routed.route_hidden(IDS, MASK, 0, None, None)[0]
    assert torch.equal(hidden, have)


def test_nf4_refuses_a_layer_that_does_not_fit_its_blocks():
    with pytest.raises(ModelError, match=r"multiple of 16,384 values; encoder.layer.0.attention.self.query"):
        TaskGraphModel(_spec("nf4"))  # hidden 32: 1,024 values a layer


def test_a_missing_torchao_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torchao", None)  # import torchao.quantization now raises ImportError
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    with pytest.raises(ModelError, match=r"int8 quantizes the base with torchao, which is not installed.*pip install"):
        TaskGraphModel(_spec("int8"))
    spec = planted("poly")
    spec["model"]["quantize"] = "int8"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    assert main(["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "pip install torchao" in capsys.readouterr().err


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(("kind", "family"), [("int8", "bert"), ("int8", "gpt2"), ("nf4", "bert")])
def test_a_checkpoint_holds_no_base_and_loads_to_the_same_logits(tmp_path, kind, family):
    torch.manual_seed(0)
    model = TaskGraphModel(_spec(kind, "poly", family, config=WIDE[family]))
    _perturb(model)
    model.save_pretrained(tmp_path / "q")
    manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert manifest["base"]["weights_included"] is False and manifest["base"]["quantize"] == kind
    assert manifest["spec"]["model"]["quantize"] == kind
    saved = manifest["weights"]["tensors"]
    assert all(k.startswith(("router.", "heads.")) or k.endswith((".A", ".B")) for k in saved)
    plain = TaskGraphModel(_spec("none", "poly", family, config=WIDE[family]))
    plain.save_pretrained(tmp_path / "plain")  # the same source base, full precision: the same fingerprint
    plain_manifest = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert manifest["base"]["fingerprint"] == plain_manifest["base"]["fingerprint"]
    loaded = TaskGraphModel.from_pretrained(tmp_path / "q")
    assert is_quantized(loaded.adapted[0][1].base.weight)
    assert torch.equal(_logits(loaded), _logits(model))


# ----------------------------------------------------------------------------- fold, merge, export
@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_folding_into_the_quantized_weights_is_refused_and_the_dequantized_fold_is_the_routed_model(family):
    torch.manual_seed(0)
    model = TaskGraphModel(_spec("int8", "poly", family))
    _perturb(model)
    with pytest.raises(ModelError, match=r"model.quantize: int8.*--format peft.*dequantize=True"):
        model.merge_task("b")
    merged = model.merge_task("b", dequantize=True)
    assert not any(is_quantized(p) for p in merged.parameters())
    with torch.no_grad():
        want = _logits(model, "b")[:, :3]
        have = merged(IDS, MASK)
    assert_close(have, want, rtol=1e-4, atol=1e-5)
    folded = model.fold("b")  # the exact LoRA: the same factors a full-precision twin folds
    name, layer = model.adapted[0]
    assert folded.modules[name].A.shape == (4, layer.in_features)


def _quantized_run(folder: Path, router: str = "poly") -> Path:
    spec = planted(router)
    spec["model"]["quantize"] = "int8"
    return save_run(spec, folder, 1)


def test_peft_export_writes_the_exact_lora_beside_the_full_precision_source(tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModel

    from taskgraph.model.pooling import pool

    run = _quantized_run(tmp_path / "run")
    out = tmp_path / "peft"
    assert main(["export", str(run), "--format", "peft", "--task", "planted-1", "--out", str(out)]) == 0
    meta = json.loads((out / "taskgraph.json").read_text())
    assert meta["base"]["quantize"] == "int8"
    routed = TaskGraphModel.from_pretrained(run / "model").eval()
    source = AutoModel.from_pretrained(out / "base")
    assert not any(is_quantized(p) for p in source.parameters())  # written full precision, built from its config
    quantize_base(source, "int8")  # quantized as the run did: PEFT's LoRA on it gives the run's logits
    peft = PeftModel.from_pretrained(source, out).eval()
    head = load_file(out / "head.safetensors")
    with torch.no_grad():
        hidden = peft(input_ids=IDS, attention_mask=MASK).last_hidden_state
        have = pool("mean", hidden, MASK) @ head["weight"].T + head["bias"]
        want = routed(IDS, MASK, "planted-1").logits[:, : have.shape[1]]
    assert_close(have, want, rtol=1e-4, atol=1e-5)


def test_merge_works_and_fold_into_base_is_refused(tmp_path, capsys):
    run = _quantized_run(tmp_path / "run")
    out = tmp_path / "merged"
    args = ["merge", str(run), "--method", "task-arithmetic", "--lambda", "1", "--tasks", "planted-2"]
    assert main([*args, "--fold-into-base", "--out", str(tmp_path / "folded")]) == 2
    assert "--fold-into-base: the base is quantized (model.quantize: int8)" in capsys.readouterr().err
    assert not (tmp_path / "folded" / "model").exists()
    assert main([*args, "--out", str(out)]) == 0
    merged = TaskGraphModel.from_pretrained(out / "model")
    assert merged.spec.model.quantize == "int8" and is_quantized(merged.adapted[0][1].base.weight)
    manifest = json.loads((out / "model" / "manifest.json").read_text())
    assert manifest["base"]["weights_included"] is False
    routed = TaskGraphModel.from_pretrained(run / "model")
    assert_close(_logits(merged, "planted-2"), _logits(routed, "planted-2"), rtol=1e-4, atol=1e-5)


def test_the_readme_spec_for_your_model_quantizes_its_base():
    """The README's "Your 1–8 B model" spec on a tiny Llama built from its config (every layer a multiple of 64 × 256
    values): the seven projections of every block quantized as its ``model.quantize`` says, the LM head not."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Your 1–8 B model\n")
    (block,) = re.findall(r"```yaml\n(.*?)```", readme[start : readme.index("\n## ", start + 1)], flags=re.S)
    data = yaml.safe_load(block)
    kind = data["model"]["quantize"]
    del data["model"]["path"]
    data["model"]["config"] = WIDE["llama"]
    model = TaskGraphModel(Spec.model_validate(data))
    assert model.num_layers == 7 * 2 and all(is_quantized(layer.base.weight) for _, layer in model.adapted)
    assert type(model.adapted[0][1].base.weight).__name__ == {"nf4": "NF4Tensor", "int8": "Int8Tensor"}[kind]
    assert not is_quantized(model.base.get_output_embeddings().weight)


def test_train_eval_and_adapt_a_run_on_an_int8_base(tmp_path, capsys):
    """The command line end to end on a quantized run: it trains, evaluates, and adapts to a held-out task."""
    from tests.adapt.conftest import HELD_OUT, small_planted

    spec = small_planted("poly", steps=6)
    spec["model"]["quantize"] = "int8"
    spec["training"].update(eval_every=6, checkpoint_every=6)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "spec.yaml"), "--out", str(run)]) == 0
    assert main(["eval", str(run), "--json", str(tmp_path / "eval.json"), "--no-timing"]) == 0
    assert len(json.loads((tmp_path / "eval.json").read_text())["tasks"]) == 8
    adapt = ["adapt", str(run), "--task", f"planted-{HELD_OUT}", "--data", f"{{source: planted, task: {HELD_OUT}}}"]
    assert main([*adapt, "--shots", "8", "--mode", "full", "--steps", "3", "--out", str(tmp_path / "adapted")]) == 0
    adapted = TaskGraphModel.from_pretrained(tmp_path / "adapted" / "model")
    assert adapted.spec.model.quantize == "int8" and is_quantized(adapted.adapted[0][1].base.weight)
    assert json.loads((tmp_path / "adapted" / "model" / "manifest.json").read_text())["base"]["quantize"] == "int8"
    capsys.readouterr()
