"""``taskgraph export RUN --format peft`` of a generative run (tiny GPT-2 from a config, a WordPiece tokenizer):
PeftModel on AutoModelForCausalLM generates the routed model's greedy tokens, with no argument but the prompt and
max_new_tokens; the folder says how taskgraph generates; a mixed run's classification task keeps its head."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from taskgraph.cli import main
from taskgraph.data.lm_inputs import left_pad
from taskgraph.model import TaskGraphModel
from taskgraph.model.generation import generate_ids
from taskgraph.spec import spec_from_dict
from tests.model.test_generative import trained
from tests.train.test_generative_train import mixed_spec, write_data

PROMPTS = [
    "what is one plus two ? answer :",
    "what is three plus three ? answer :",
    "review : the movie was",
    "what is two plus one ?",
]


def test_a_generative_task_exports_to_peft_and_generates_the_routed_tokens(tmp_path: Path) -> None:
    write_data(tmp_path)
    spec = mixed_spec(tmp_path, stop=["three"])
    model = trained(spec_from_dict(spec), seed=7)  # the config's eos (GPT-2's 50256) is not the end: [SEP] (3) is
    model.save_pretrained(tmp_path / "run" / "model")
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--all-tasks", "--out", str(tmp_path / "peft")]) == 0
    )

    meta = json.loads((tmp_path / "peft" / "sum" / "taskgraph.json").read_text())
    assert meta["objective"] == "generate" and meta["task_type"] == "CAUSAL_LM" and meta["padding_side"] == "left"
    assert meta["end_token_id"] == 3 and meta["max_new_tokens"] == 4 and meta["stop"] == ["three"]
    assert not (tmp_path / "peft" / "sum" / "head.safetensors").exists()  # no head: the LM writes
    assert (tmp_path / "peft" / "rt" / "head.safetensors").exists()  # the classification task keeps its head
    config = json.loads((tmp_path / "peft" / "sum" / "adapter_config.json").read_text())
    assert config["task_type"] == "CAUSAL_LM" and config["fan_in_fan_out"] is True

    prompts = [model.tokenizer(p)["input_ids"] for p in PROMPTS]
    ids, mask = left_pad(prompts, 0)
    for task in ("sum", "rt-gen"):
        base = AutoModelForCausalLM.from_pretrained(tmp_path / "peft" / "base")
        peft = PeftModel.from_pretrained(base, tmp_path / "peft" / task).eval()
        with torch.no_grad():
            out = peft.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False)  # [B, S + M]
        written = [row[: row.index(3) + 1] if 3 in row else row for row in out[:, ids.shape[1] :].tolist()]
        routed = generate_ids(model, torch.full((len(prompts),), model.task_index(task)), prompts, [4] * len(prompts))
        assert written == routed, task
        assert any(len(row) > 1 for row in routed) or task == "rt-gen"  # not only an immediate end token
    back = TaskGraphModel.from_pretrained(tmp_path / "run" / "model")
    assert back.spec.tasks[0].stop == ["three"]


def test_an_encoder_decoder_task_exports_as_seq2seq_lm_and_generates_the_routed_tokens(tmp_path: Path) -> None:
    """T5 from a config: the folder's task_type is SEQ_2_SEQ_LM, and PeftModel on AutoModelForSeq2SeqLM writes the
    routed model's greedy tokens (decoder start, end token and padding from the exported base's configs)."""
    from transformers import AutoModelForSeq2SeqLM

    from tests.model.test_generative import PROMPTS as IDS
    from tests.model.test_generative import lm_spec, plain_generate
    from tests.model.test_generative import trained as trained_lm

    model = trained_lm(lm_spec("t5"), seed=3)
    model.save_pretrained(tmp_path / "run" / "model")
    assert main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "g", "--out", str(tmp_path / "p")]) == 0
    meta = json.loads((tmp_path / "p" / "taskgraph.json").read_text())
    assert meta["task_type"] == "SEQ_2_SEQ_LM" and meta["padding_side"] == "right"
    config = json.loads((tmp_path / "p" / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_2_SEQ_LM" and config["peft_type"] == "LORA"

    base = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "p" / "base")
    peft = PeftModel.from_pretrained(base, tmp_path / "p").eval()
    routed = generate_ids(model, torch.full((len(IDS),), model.task_index("g")), IDS, [6] * len(IDS))
    assert plain_generate("t5", peft, IDS, 6) == routed
    assert any(len(row) > 1 for row in routed)  # not only an immediate end token
    with peft.disable_adapter():
        assert plain_generate("t5", peft, IDS, 6) != routed  # the adapter is what writes these tokens


def test_a_warm_started_encoder_decoder_exports_its_own_base(tmp_path: Path) -> None:
    """A BERT2BERT warm-started from a local encoder: model.path names the encoder, not the trained model (the
    decoder's cross-attention is new and seeded), so the export writes DIR/base; PeftModel on
    AutoModelForSeq2SeqLM(DIR/base) writes the routed model's greedy tokens."""
    from transformers import AutoModelForSeq2SeqLM

    from taskgraph.data.lm_inputs import seq2seq_rows
    from tests.benchmarks.quality.test_real_gen import tiny_config

    spec = tiny_config(tmp_path)
    args = ["train", str(spec), "--out", str(tmp_path / "run"), "--max-steps", "6", "--threads", "1"]
    assert main([*args, "--set", "training.lr.adapters=0.05"]) == 0
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "rt", "--out", str(tmp_path / "p")]) == 0
    )
    meta = json.loads((tmp_path / "p" / "taskgraph.json").read_text())
    assert meta["base"]["folder"] == "base" and meta["base"]["class"] == "EncoderDecoderModel"
    assert json.loads((tmp_path / "p" / "adapter_config.json").read_text())["base_model_name_or_path"] == "base"

    model = TaskGraphModel.from_pretrained(tmp_path / "run" / "model").eval()
    prompts = [model.tokenizer(t)["input_ids"] for t in ("review : the movie was good", "review : the movie was bad")]
    routed = generate_ids(model, torch.full((2,), model.task_index("rt")), prompts, [3, 3])
    peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "p" / "base"), tmp_path / "p")
    ids, mask = seq2seq_rows(prompts, [None, None], model.tokenizer.pad_token_id)[:2]
    with torch.no_grad():
        out = peft.eval().generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False)  # [2, 1 + M]
    end = meta["end_token_id"]
    written = [row[: row.index(end) + 1] if end in row else row for row in out[:, 1:].tolist()]
    assert written == routed
