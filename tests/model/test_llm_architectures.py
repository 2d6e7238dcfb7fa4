"""Causal LMs of the families people fine-tune at 1–8 B parameters, from a local folder: Llama, Qwen2, Qwen3, Mistral,
Phi-3, Gemma, Gemma 2, Gemma 3 — each a tiny random-init model built from its config and saved with a tokenizer
trained here (a WordLevel vocabulary, a chat template), then loaded through ``model.path`` and trained on two
generative tasks. Nothing is downloaded.

For every family: the target modules adapt every block; at step 0 (B = 0) the routed model's target loss is the
plain model's own and routed greedy generation writes the plain model's tokens; a few steps lower the loss; and
zeroing the adapters' B after training gives the plain model's loss again (the base changed only through the
adapters). Beside them: Gemma 2's final logit soft-capping is in the target loss, a family whose forward rescales
its logits is refused, Llama's module names on a Phi-3 (fused ``qkv_proj``, ``gate_up_proj``) warn, and the
tokenizer's chat template is loaded but not applied (a task's ``template`` is the prompt as written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

from taskgraph.data import Batch, collate
from taskgraph.data.lm_inputs import IGNORE
from taskgraph.errors import ModelError, TaskgraphWarning
from taskgraph.model import TaskGraphModel
from taskgraph.model.generation import generate_ids
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import Spec
from taskgraph.spec.template import render
from taskgraph.train import train
from taskgraph.train.batches import MultiTaskSampler, load_task_data
from taskgraph.train.optim import build_optimizer
from taskgraph.train.step import step_gradients

LLAMA_STYLE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PHI3 = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]  # Phi-3 fuses q, k, v and gate, up
SHAPE = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    initializer_range=0.3,  # wide enough that the frozen LM head can tell tokens apart: the loss can fall
)
ARCHITECTURES: dict[str, tuple[dict[str, Any], list[str]]] = {  # model_type -> (config beyond SHAPE, targets)
    "llama": ({}, LLAMA_STYLE),
    "qwen2": ({}, LLAMA_STYLE),
    "qwen3": ({"head_dim": 8}, LLAMA_STYLE),
    "mistral": ({}, LLAMA_STYLE),
    "phi3": ({}, PHI3),
    "gemma": ({"head_dim": 8}, LLAMA_STYLE),
    "gemma2": ({"head_dim": 8}, LLAMA_STYLE),
    "gemma3_text": ({"head_dim": 8}, LLAMA_STYLE),
}

SPECIAL = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>"]
COLOURS = {"sky": "blue", "grass": "green", "snow": "white", "coal": "black", "blood": "red", "sun": "yellow"}
WORDS = ["what", "colour", "is", "the", "?", "name", "a", "thing", *COLOURS, *COLOURS.values()]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
TEMPLATES = {  # the chat format written into each task's template (the tokenizer's chat template is not applied)
    "colour": "<|user|> what colour is the {thing} ? <|assistant|>",
    "thing": "<|user|> name a {colour} thing <|assistant|>",
}


def save_tokenizer(folder: Path) -> PreTrainedTokenizerFast:
    """A word-level tokenizer trained here (BOS added, ``</s>`` ends a target) with a chat template, saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(WORDS)], trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>"],
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(str(folder))
    return fast


def save_model(folder: Path, model_type: str) -> Path:
    """A tiny random-init ``model_type`` causal LM and the tokenizer, saved as a Hugging Face folder."""
    if model_type not in CONFIG_MAPPING_NAMES:
        pytest.skip(f"transformers {model_type!r} is not in the installed transformers")
    tokenizer = save_tokenizer(folder)
    extra, _ = ARCHITECTURES[model_type]
    config = AutoConfig.for_model(
        model_type,
        **SHAPE,
        **extra,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config).save_pretrained(str(folder))
    return folder


def write_data(folder: Path) -> None:
    rows = [{"thing": thing, "colour": colour} for thing, colour in COLOURS.items()] * 5
    (folder / "colours.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def spec_for(model_dir: Path, targets: list[str], **training: Any) -> Spec:
    return spec_from_dict(
        {
            "name": "llm",
            "model": {"path": str(model_dir), "max_length": 16, "pooling": "last", "target_modules": targets},
            "adapters": {"rank": 2, "alpha": 4, "skills": 2},
            "router": {"kind": "poly"},
            "tasks": [
                {
                    "name": task,
                    "objective": "generate",
                    "template": template,
                    "max_new_tokens": 3,
                    "data": {"source": "jsonl", "path": "colours.jsonl", "target": task},
                }
                for task, template in TEMPLATES.items()
            ],
            "training": {"batch_size": 8, "lr": {"adapters": 1e-2, "router": 1e-2}, **training},
        }
    )


def every_row(data: list[Any], pad_id: int) -> Batch:
    """Every training row of every task, as one batch."""
    return collate([(t, r) for t, task in enumerate(data) for r in range(len(task))], data, pad_id)


def reference_nll(plain: torch.nn.Module, batch: Batch) -> Tensor:
    """``[B]`` mean target NLL per row from the plain model's own full logits."""
    logits = plain(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits  # [B, S, V]
    gold = batch.targets[:, 1:]  # [B, S-1]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2).float(), gold, ignore_index=IGNORE, reduction="none")
    return nll.sum(1) / (gold != IGNORE).sum(1)  # [B]


def routed_nll(model: TaskGraphModel, batch: Batch) -> Tensor:
    with torch.no_grad():
        out = model(batch.input_ids, batch.attention_mask, batch.task_ids, targets=batch.targets)
    return out.example_loss  # [B]


@pytest.mark.parametrize("model_type", list(ARCHITECTURES))
def test_a_causal_lm_from_a_local_folder_trains_through_its_adapters_only(model_type: str, tmp_path: Path) -> None:
    model_dir = save_model(tmp_path / "model", model_type)
    write_data(tmp_path)
    targets = ARCHITECTURES[model_type][1]
    spec = spec_for(model_dir, targets)
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    plain = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    layers = plain.config.num_hidden_layers
    assert model.tokenizer is not None and model.tokenizer.chat_template == CHAT_TEMPLATE  # the folder's own
    assert sorted(name.rsplit(".", 1)[-1] for name in model.adapted_names) == sorted(targets * layers)

    data = load_task_data(spec, tmp_path, tokenizer=model.tokenizer, pad_id=0, lm=model.lm_info())["train"]
    batch = every_row(data, pad_id=0)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(routed_nll(model, batch), reference_nll(plain, batch), rtol=1e-5, atol=1e-5)
    prompt, end = _prompt(batch, 0), model.tokenizer.eos_token_id
    with torch.no_grad():
        written = plain.generate(
            input_ids=torch.tensor([prompt]), max_new_tokens=3, do_sample=False, eos_token_id=end, pad_token_id=0
        )[0, len(prompt) :].tolist()
    routed = generate_ids(model, torch.tensor([0]), [prompt], [3])[0]
    assert routed == written[: written.index(end) + 1 if end in written else None]  # B = 0: the base's own tokens

    before = float(routed_nll(model, batch).mean())
    sampler = MultiTaskSampler([len(t) for t in data], "uniform", 1.0, seed=0)
    optimizer = build_optimizer(model, spec.training)
    trainable = [p for group in optimizer.param_groups for p in group["params"]]
    for step in range(1, 13):
        optimizer.zero_grad(set_to_none=True)
        step_gradients(model, collate(sampler.sample(8), data, 0), trainable, torch.device("cpu"), step, 0)
        optimizer.step()
    model.eval()
    after = float(routed_nll(model, batch).mean())
    assert after < 0.8 * before, (before, after)

    with torch.no_grad():
        for _, layer in model.adapted:
            layer.B.zero_()
        torch.testing.assert_close(routed_nll(model, batch), reference_nll(plain, batch), rtol=1e-5, atol=1e-5)


def _prompt(batch: Batch, row: int) -> list[int]:
    """Row ``row``'s prompt: its tokens before the first target position."""
    first = int((batch.targets[row] != IGNORE).nonzero()[0, 0])
    return batch.input_ids[row, :first].tolist()


def test_gemma2_final_logit_softcapping_is_in_the_target_loss(tmp_path: Path) -> None:
    """``cap · tanh(z / cap)`` as Gemma 2's own forward applies it: a small cap makes it matter (the LM head's plain
    logits give losses up to 4.7 nats off here)."""
    model_dir = save_model(tmp_path / "model", "gemma2")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "final_logit_softcapping": 0.5}))
    write_data(tmp_path)
    spec = spec_for(model_dir, LLAMA_STYLE)
    model = TaskGraphModel(spec).eval()
    plain = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    assert plain.config.final_logit_softcapping == 0.5
    data = load_task_data(spec, tmp_path, tokenizer=model.tokenizer, pad_id=0, lm=model.lm_info())["train"]
    batch = every_row(data, pad_id=0)
    with torch.no_grad():
        torch.testing.assert_close(routed_nll(model, batch), reference_nll(plain, batch), rtol=1e-6, atol=1e-6)


def test_a_family_that_rescales_its_logits_is_refused_for_generate_tasks(tmp_path: Path) -> None:
    """Cohere multiplies its logits by ``logit_scale`` in its forward: a target loss without it would not be the
    model's own, so a generate task on it is refused with what to do."""
    if "cohere" not in CONFIG_MAPPING_NAMES:
        pytest.skip("no cohere in the installed transformers")
    data = {
        "model": {
            "config": {"model_type": "cohere", **SHAPE, "vocab_size": 40},
            "target_modules": LLAMA_STYLE,
            "pooling": "last",
        },
        "tasks": [{"name": "g", "objective": "generate"}],
    }
    with pytest.raises(ModelError, match=r"rescales the logits \(\{'logit_scale': 0.0625\}\)"):
        TaskGraphModel(Spec.model_validate(data))


def test_llama_module_names_on_a_phi3_warn_and_name_what_matched_nothing(tmp_path: Path) -> None:
    model_dir = save_model(tmp_path / "model", "phi3")
    write_data(tmp_path)
    with pytest.warns(TaskgraphWarning, match=r"\['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj'\] match no"):
        model = TaskGraphModel(spec_for(model_dir, LLAMA_STYLE))
    assert sorted({name.rsplit(".", 1)[-1] for name in model.adapted_names}) == ["down_proj", "o_proj"]


def test_the_chat_template_is_loaded_but_not_applied(tmp_path: Path) -> None:
    """A prompt is the task's template rendered and tokenized as written: written in the chat format, it is the
    tokenizer's ``apply_chat_template`` text token for token; the chat template itself is never run."""
    model_dir = save_model(tmp_path / "model", "llama")
    write_data(tmp_path)
    spec = spec_for(model_dir, LLAMA_STYLE)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = TaskGraphModel(spec)
    data = load_task_data(spec, tmp_path, tokenizer=model.tokenizer, pad_id=0, lm=model.lm_info())["train"]
    batch = every_row(data, pad_id=0)
    row = {"thing": "sky", "colour": "blue"}
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "what colour is the sky ?"}], add_generation_prompt=True, tokenize=False
    )
    assert chat == render(TEMPLATES["colour"], row)
    sky = tokenizer.convert_tokens_to_ids("sky")
    first = next(r for r in range(batch.size) if batch.task_ids[r] == 0 and sky in _prompt(batch, r))
    assert _prompt(batch, first) == tokenizer(chat)["input_ids"]  # BOS, then the template's tokens, nothing else
    assert _prompt(batch, first).count(tokenizer.convert_tokens_to_ids("<|user|>")) == 1  # not wrapped twice


def test_train_runs_from_a_local_folder_with_gradient_checkpointing(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """``taskgraph train``'s loop on a Qwen2 folder, checkpointed: the run folder's model loads back from the same
    folder, with its tokenizer, and writes completions."""
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    model_dir = save_model(tmp_path / "model", "qwen2")
    write_data(tmp_path)
    spec = spec_for(model_dir, LLAMA_STYLE, steps=4, eval_every=4, checkpoint_every=4, gradient_checkpointing=True)
    result = train(spec, tmp_path / "run", base_dir=tmp_path)
    assert set(result.final.acc) == {"colour", "thing"}
    back = TaskGraphModel.from_pretrained(tmp_path / "run" / "model")
    assert back.spec.training.gradient_checkpointing and back.tokenizer.chat_template == CHAT_TEMPLATE
    assert all(len(row) <= 3 for row in generate_ids(back, torch.tensor([0, 1]), [[2, 4], [2, 4]], [3, 3]))


def test_the_readme_spec_for_your_model_plans_on_a_local_folder(tmp_path: Path) -> None:
    """The README's "Your 1–8 B model" spec, as written but for its folder (a tiny Qwen2 here): valid, every block's
    seven projections adapted, checkpointing on, its ChatML templates render."""
    import re

    import yaml

    from taskgraph.model.footprint import plan_model

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Your 1–8 B model\n")
    (block,) = re.findall(r"```yaml\n(.*?)```", readme[start : readme.index("\n## ", start + 1)], flags=re.S)
    data = yaml.safe_load(block)
    model_dir = save_model(tmp_path / "model", "qwen2")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 1024}))
    data["model"]["path"] = str(model_dir)
    spec = spec_from_dict(data)
    assert len(plan_model(spec).adapted) == 7 * SHAPE["num_hidden_layers"] and spec.training.gradient_checkpointing
    prompt = render(spec.tasks[0].template, {"question": "where is my order?"})
    assert prompt == "<|im_start|>user\nwhere is my order?<|im_end|>\n<|im_start|>assistant\n"
