"""Generative tasks on tiny GPT-2, Llama and T5 built from configs: the target loss and routed generation against
PEFT LoRA, mixed batches against per-task batches, merged weights, save / load, rank classification, a zero-shot
task of the graph router.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch.testing import assert_close

from taskgraph.data.lm_inputs import IGNORE, causal_rows, decoder_inputs, left_pad, seq2seq_rows
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.model.fold import unload
from taskgraph.model.generation import Decoding, generate_ids
from taskgraph.model.lm_base import decoder_start_id
from taskgraph.model.rank_choices import choice_scores
from taskgraph.spec.models import Spec
from tests.model.conftest import TARGETS, TINY

LM_TINY = {
    **TINY,
    "gpt2": {**TINY["gpt2"], "eos_token_id": 1, "bos_token_id": 0},
    "t5": {**TINY["t5"], "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0},
}
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14, 15], [16, 17, 18]]
TARGETS_OF = [[20, 21, 22, 1], None, [23, 1], [24, 25, 1], [26, 1]]  # row 1 is a classification example
TASK_IDS = torch.tensor([1, 0, 2, 1, 2])  # 0 classifies, 1 and 2 generate
RANK, ALPHA = 2, 4.0


def lm_spec(family: str, router: str = "poly", skills: int = 3, **extra: Any) -> Spec:
    return Spec.model_validate(
        {
            "model": {
                "config": dict(LM_TINY[family]),
                "target_modules": TARGETS[family],
                "pooling": "last",
                "max_length": 16,
            },
            "adapters": {"rank": RANK, "alpha": ALPHA, "skills": skills},
            "router": {"kind": router, **extra},
            "tasks": [
                {"name": "c", "num_labels": 3},
                {"name": "g", "objective": "generate", "max_new_tokens": 6},
                {"name": "h", "objective": "generate", "choices": ["x", "y"], "max_new_tokens": 6},
            ],
        }
    )


def trained(spec: Spec, seed: int = 1) -> TaskGraphModel:
    """A model whose adapters, router and heads hold random values, as if trained."""
    model = TaskGraphModel(spec).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.8)
    return model


def rows(family: str, prompts: list[list[int]], targets: list[list[int] | None]) -> tuple[torch.Tensor, ...]:
    return (seq2seq_rows if family == "t5" else causal_rows)(prompts, targets, 0)


def reference_nll(
    family: str, lm: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """``[B]`` mean target NLL per example from a plain model's full logits (transformers' own shift)."""
    if family == "t5":
        dec, dec_mask = decoder_inputs(labels, decoder_start_id(lm), 0)
        logits = lm(input_ids=ids, attention_mask=mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask).logits
        gold = labels
    else:
        logits = lm(input_ids=ids, attention_mask=mask).logits[:, :-1]
        gold = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(
        logits.float().transpose(1, 2), gold, ignore_index=IGNORE, reduction="none"
    )  # [B, T]
    return nll.sum(1) / (gold != IGNORE).sum(1)


def plain_generate(family: str, lm: torch.nn.Module, prompts: list[list[int]], limit: int) -> list[list[int]]:
    """Greedy completions of a plain transformers model, cut like taskgraph's (end token kept)."""
    pad = 0
    ids, mask = left_pad(prompts, pad) if family != "t5" else seq2seq_rows(prompts, [None] * len(prompts), pad)[:2]
    out = lm.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=limit,
        do_sample=False,
        num_beams=1,
        eos_token_id=1 if family != "llama" else 2,
        pad_token_id=pad,
    )
    new = out[:, 1:] if family == "t5" else out[:, ids.shape[1] :]
    end = 1 if family != "llama" else 2
    cut = []
    for row in new.tolist():
        row = row[:limit]
        cut.append(row[: row.index(end) + 1] if end in row else row)
    return cut


def peft_of(model: TaskGraphModel, family: str, task: str) -> torch.nn.Module:
    """A PEFT LoRA on the plain base holding the task's folded adapter."""
    folded = model.fold(task)
    config = LoraConfig(
        r=RANK, lora_alpha=ALPHA, target_modules=TARGETS[family], lora_dropout=0.0, fan_in_fan_out=family == "gpt2"
    )
    peft = get_peft_model(unload(model), config).eval()
    with torch.no_grad():
        for name, module in folded.modules.items():
            target = peft.base_model.model.get_submodule(name)
            target.lora_A["default"].weight.copy_(module.A)
            target.lora_B["default"].weight.copy_(module.B)
    return peft


@pytest.mark.parametrize("family", ["gpt2", "llama", "t5"])
def test_poly_k1_is_one_peft_lora_in_loss_and_tokens(family: str) -> None:
    model = trained(lm_spec(family, skills=1))
    peft = peft_of(model, family, "g")
    prompts, targets = PROMPTS[:1] + PROMPTS[2:], [t for t in TARGETS_OF if t]
    ids, mask, labels = rows(family, prompts, targets)
    out = model(ids, mask, "g", targets=labels)
    with torch.no_grad():
        want = reference_nll(family, peft, ids, mask, labels)
    assert_close(out.example_loss.detach(), want, atol=1e-5, rtol=1e-5)
    assert_close(out.loss.detach(), want.mean(), atol=1e-5, rtol=1e-5)
    ours = generate_ids(model, torch.ones(len(prompts), dtype=torch.long), prompts, [6] * len(prompts))
    assert ours == plain_generate(family, peft, prompts, 6)


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_mixed_batch_equals_per_task_batches(family: str) -> None:
    model = trained(lm_spec(family))
    ids, mask, labels = rows(family, PROMPTS, TARGETS_OF)
    class_labels = torch.tensor([0, 2, 0, 0, 0])
    mixed = model(ids, mask, TASK_IDS, labels=class_labels, targets=labels)
    for task in range(3):
        keep = [i for i in range(len(PROMPTS)) if int(TASK_IDS[i]) == task]
        one = rows(family, [PROMPTS[i] for i in keep], [TARGETS_OF[i] for i in keep])
        alone = model(*one[:2], task, labels=class_labels[keep], targets=one[2])
        assert_close(mixed.example_loss[keep], alone.example_loss, atol=1e-5, rtol=1e-5)
    assert_close(mixed.loss, mixed.example_loss.mean())
    head_ce = torch.nn.functional.cross_entropy(mixed.logits[1:2], class_labels[1:2])
    assert_close(mixed.example_loss[1], head_ce)  # the classification row: its head's cross-entropy
    gen_rows = [0, 2, 3, 4]
    prompts, tasks = [PROMPTS[i] for i in gen_rows], TASK_IDS[gen_rows]
    together = generate_ids(model, tasks, prompts, [6] * 4)
    apart = [generate_ids(model, tasks[i : i + 1], prompts[i : i + 1], [6])[0] for i in range(4)]
    assert together == apart
    same_prompt = [generate_ids(model, torch.tensor([t]), PROMPTS[:1], [6])[0] for t in (1, 2)]
    assert same_prompt[0] != same_prompt[1]  # the tasks' routings differ, so the test could fail


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_beam_search_follows_each_prompts_routing(family: str) -> None:
    model = trained(lm_spec(family))
    prompts, tasks = PROMPTS[:3], torch.tensor([1, 2, 1])
    together = generate_ids(model, tasks, prompts, [5] * 3, Decoding(num_beams=3))
    apart = [generate_ids(model, tasks[i : i + 1], prompts[i : i + 1], [5], Decoding(num_beams=3))[0] for i in range(3)]
    assert together == apart


def test_sampling_is_seeded_and_max_new_tokens_is_per_task() -> None:
    model = trained(lm_spec("gpt2"))
    prompts, tasks = PROMPTS[:3], torch.tensor([1, 2, 1])
    sampled = generate_ids(model, tasks, prompts, [5] * 3, Decoding(do_sample=True, seed=5, top_k=20))
    assert sampled == generate_ids(model, tasks, prompts, [5] * 3, Decoding(do_sample=True, seed=5, top_k=20))
    greedy = generate_ids(model, tasks, prompts, [5] * 3)
    assert sampled != greedy
    short = generate_ids(model, tasks, prompts, [2, 5, 5])
    assert short[0] == greedy[0][:2] and short[1:] == greedy[1:]


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_merged_model_generates_the_routed_tokens(family: str) -> None:
    model = trained(lm_spec(family))
    merged = model.merge_task("h").base
    assert type(merged).__name__ in ("GPT2LMHeadModel", "T5ForConditionalGeneration")
    ours = generate_ids(model, torch.full((3,), 2), PROMPTS[:3], [6] * 3)
    assert ours == plain_generate(family, merged, PROMPTS[:3], 6)


def test_save_load_is_bit_identical(tmp_path: Any) -> None:
    model = trained(lm_spec("gpt2"))
    model.save_pretrained(tmp_path / "m")
    back = TaskGraphModel.from_pretrained(tmp_path / "m").eval()
    ids, mask, labels = rows("gpt2", PROMPTS, TARGETS_OF)
    a = model(ids, mask, TASK_IDS, labels=torch.zeros(5, dtype=torch.long), targets=labels)
    b = back(ids, mask, TASK_IDS, labels=torch.zeros(5, dtype=torch.long), targets=labels)
    assert torch.equal(a.example_loss, b.example_loss)
    tasks = torch.tensor([1, 2, 1])
    assert generate_ids(model, tasks, PROMPTS[:3], [6] * 3) == generate_ids(back, tasks, PROMPTS[:3], [6] * 3)


@pytest.mark.parametrize("family, router", [("gpt2", "poly"), ("t5", "poly"), ("t5", "graph"), ("t5", "private")])
def test_rank_classification_scores_every_choice_in_one_pass(family: str, router: str) -> None:
    """Each (prompt, choice) scored alone equals the batched scores — for an encoder-decoder too, which encodes each
    prompt once and decodes its choices from that encoding."""
    model = trained(lm_spec(family, router=router))
    choices = [[30, 1], [31, 32, 1], [33, 1]]
    scores = choice_scores(model, 2, PROMPTS[:3], choices, pairs_per_pass=4)  # [3, 3], split across passes
    for n in range(3):
        for c in range(3):
            ids, mask, labels = rows(family, [PROMPTS[n]], [choices[c]])
            alone = model(ids, mask, 2, targets=labels).example_loss
            assert float(scores[n, c]) == pytest.approx(-float(alone[0]), rel=1e-5, abs=1e-5)  # mean log-prob


def test_graph_router_zero_shot_task_generates() -> None:
    model = trained(lm_spec("gpt2", router="graph"))
    index = model.add_task_from_relations(
        "new", 1, {"g": 1.0, "h": 0.5}, generation={"objective": "generate", "max_new_tokens": 4}
    )
    model.eval()
    assert model.heads.num_labels[index] == 0 and model.spec.tasks[index].generative
    ours = generate_ids(model, torch.full((2,), index), PROMPTS[:2], [4, 4])
    assert all(1 <= len(row) <= 4 for row in ours)
    assert ours == plain_generate("gpt2", model.merge_task("new").base, PROMPTS[:2], 4)


def test_generate_task_on_an_encoder_is_a_clear_error() -> None:
    spec = Spec.model_validate(
        {
            "model": {"config": dict(TINY["bert"]), "target_modules": TARGETS["bert"]},
            "tasks": [{"name": "g", "objective": "generate"}],
        }
    )
    with pytest.raises(ModelError, match="encoder.*decoder \\(gpt2, llama"):
        TaskGraphModel(spec)


def test_generate_batch_without_targets_is_refused() -> None:
    model = trained(lm_spec("gpt2"))
    ids, mask, _ = rows("gpt2", PROMPTS[:2], [None, None])
    with pytest.raises(ModelError, match="targets"):
        model(ids, mask, torch.tensor([1, 0]), labels=torch.tensor([0, 1]))
    copy.deepcopy(model)  # a generative model copies (merge, export)
