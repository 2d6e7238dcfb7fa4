"""Training with generative tasks: a mixed run (text-to-text, choices, classification) on a tiny GPT-2 with a real
WordPiece tokenizer, validate's checks for generative specs, and the planted generative universe's capacity test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import BertTokenizerFast

from taskgraph.data import collate
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.model import TaskGraphModel
from taskgraph.spec import spec_from_dict
from taskgraph.train import train
from taskgraph.train.batches import MultiTaskSampler, load_task_data
from taskgraph.train.evaluate import evaluate
from taskgraph.train.loop import step_gradients
from taskgraph.train.optim import build_optimizer
from taskgraph.train.preflight import preflight

WORDS = [
    "the",
    "movie",
    "was",
    "good",
    "bad",
    "fun",
    "dull",
    "yes",
    "no",
    "what",
    "is",
    "one",
    "two",
    "three",
    "plus",
    "answer",
    "review",
    ":",
    "?",
]
NUMBERS = ["one", "two", "three"]


def write_data(folder: Path) -> None:
    (folder / "tok").mkdir()
    (folder / "tok" / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS) + "\n")
    BertTokenizerFast.from_pretrained(str(folder / "tok"), local_files_only=True).save_pretrained(str(folder / "tok"))
    qa = [{"a": x, "b": y, "sum": NUMBERS[(i + j) % 3]} for i, x in enumerate(NUMBERS) for j, y in enumerate(NUMBERS)]
    (folder / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qa * 3))
    reviews = [
        {"text": f"the movie was {w}", "label": int(w in ("good", "fun"))} for w in ("good", "bad", "fun", "dull")
    ]
    (folder / "rt.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews * 5))


def mixed_spec(folder: Path, **task_extra: Any) -> dict[str, Any]:
    return {
        "name": "gen-mixed",
        "model": {
            "config": {"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64},
            "tokenizer": str(folder / "tok"),
            "max_length": 16,
            "pooling": "last",
            "target_modules": ["c_attn"],
        },
        "adapters": {"rank": 2, "skills": 2},
        "router": {"kind": "poly"},
        "tasks": [
            {
                "name": "sum",
                "objective": "generate",
                "template": "what is {a} plus {b} ? answer :",
                "max_new_tokens": 4,
                "data": {"source": "jsonl", "path": "qa.jsonl", "target": "sum"},
                **task_extra,
            },
            {
                "name": "rt-gen",
                "objective": "generate",
                "choices": ["bad", "good"],
                "template": "review : {text}",
                "data": {"source": "jsonl", "path": "rt.jsonl"},
            },
            {"name": "rt", "num_labels": 2, "data": {"source": "jsonl", "path": "rt.jsonl"}},
        ],
        "training": {"steps": 4, "batch_size": 8, "eval_every": 2, "checkpoint_every": 2},
    }


def test_a_mixed_generative_run_trains_validates_and_resumes(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = spec_from_dict(mixed_spec(tmp_path))
    assert preflight(spec, tmp_path).ok
    result = train(spec, tmp_path / "run", base_dir=tmp_path, max_steps=2)
    assert set(result.final.acc) == {"sum", "rt-gen", "rt"} and all(0 <= a <= 1 for a in result.final.acc.values())
    resumed = train(spec, tmp_path / "run", base_dir=tmp_path, resume=True)
    whole = train(spec, tmp_path / "whole", base_dir=tmp_path)
    for a, b in zip(resumed.model.adapter_parameters(), whole.model.adapter_parameters()):
        assert torch.equal(a, b)  # a resumed generative run equals an uninterrupted one
    logged = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "val"] == [2, 4]
    back = TaskGraphModel.from_pretrained(tmp_path / "whole" / "model")
    assert back.spec.tasks[0].generative and back.tokenizer is not None


def test_validate_names_every_generative_problem_at_once(tmp_path: Path) -> None:
    write_data(tmp_path)
    data = mixed_spec(tmp_path, max_new_tokens=1)  # "two [SEP]" is 2 tokens
    data["tasks"][1]["data"]["path"] = "qa.jsonl"  # no label column, no target column
    found = preflight(spec_from_dict(data), tmp_path)
    text = "\n".join(found.problems)
    assert (
        "tasks[0] (sum): task 'sum': example 0 has a target of 2 tokens (with the end token), more than the "
        "task's max_new_tokens 1" in text
    )
    assert "tasks[1] (rt-gen): " in text and "no column 'text' for the template's slot {text}" in text
    data = mixed_spec(tmp_path)
    data["model"]["config"] = {
        "model_type": "bert",
        "num_hidden_layers": 1,
        "hidden_size": 32,
        "num_attention_heads": 2,
        "intermediate_size": 32,
    }
    data["model"]["target_modules"] = ["query"]
    found = preflight(spec_from_dict(data), tmp_path)
    assert found.problems and "'bert' is an encoder" in found.problems[0]


@pytest.mark.slow
def test_planted_generative_universe_shared_lora_underfits_where_private_learns() -> None:
    """60 steps of 16 examples: per-task LoRAs fit the targets (each task's own skill tokens) far better than one
    LoRA shared by all tasks, which cannot tell the tasks apart (no head, and the input does not name its task)."""
    losses = {}
    for router in ("shared", "private"):
        spec = spec_from_dict(
            planted_gen_spec(
                router=router, tasks=4, skills=4, examples_per_task=160, hidden_size=32, num_heads=2, batch_size=16
            )
        )
        torch.manual_seed(0)
        model = TaskGraphModel(spec)
        data = load_task_data(spec, ".", tokenizer=None, pad_id=0, lm=model.lm_info())
        sampler = MultiTaskSampler([len(t) for t in data["train"]], "uniform", 1.0, seed=0)
        optimizer = build_optimizer(model, spec.training)
        trainable = [p for group in optimizer.param_groups for p in group["params"]]
        for step in range(60):
            optimizer.zero_grad()
            step_gradients(
                model, collate(sampler.sample(16), data["train"], 0), trainable, torch.device("cpu"), step, 0
            )
            optimizer.step()
        losses[router] = evaluate(model, data["val"], pad_id=0).loss
    assert losses["private"] < losses["shared"] - 0.1, losses
