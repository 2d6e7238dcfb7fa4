"""``taskgraph export RUN --format peft``: PEFT loads the folder and gives taskgraph's logits (≤ 1e-5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from torch.testing import assert_close
from transformers import AutoModel

from taskgraph.cli import main
from taskgraph.model import TaskGraphModel
from taskgraph.model.pooling import pool
from tests.merge.conftest import planted, save_run
from tests.model.conftest import TINY

IDS = torch.randint(1, 64, (5, 8), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 8, [1] * 2 + [0] * 6, [1] * 7 + [0]])


def export(*args: object) -> int:
    return main(["export", *map(str, args)])


def taskgraph_logits(run: Path, task: str) -> torch.Tensor:
    model = TaskGraphModel.from_pretrained(run / "model").eval()
    with torch.no_grad():
        return model(IDS, MASK, task).logits[:, : model.num_labels[model.task_index(task)]]


def peft_logits(model: torch.nn.Module, folder: Path, pooling: str = "mean") -> torch.Tensor:
    head = load_file(folder / "head.safetensors")
    with torch.no_grad():
        hidden = model(input_ids=IDS, attention_mask=MASK).last_hidden_state
        return pool(pooling, hidden, MASK) @ head["weight"].T + head["bias"]


@pytest.mark.parametrize("router", ["poly", "mhr", "private", "graph"])
def test_peft_loads_the_exported_task_with_equal_logits(tmp_path, router, capsys):
    run = save_run(planted(router, heads=2 if router == "mhr" else 1), tmp_path / "run", 1)
    out = tmp_path / "peft"
    assert export(run, "--format", "peft", "--task", "planted-1", "--out", out) == 0
    assert f"wrote {out} (peft: 1 adapter folder: planted-1 r=2" in capsys.readouterr().out
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 2 and config["lora_alpha"] == 4.0
    assert config["base_model_name_or_path"] == "base" and len(config["target_modules"]) == 4  # relative to out
    assert config["task_type"] == "FEATURE_EXTRACTION"  # the head is ours, beside the adapter
    base = AutoModel.from_pretrained(out / "base")  # the config-built base saved beside the adapter
    loaded = PeftModel.from_pretrained(base, out).eval()
    assert_close(peft_logits(loaded, out), taskgraph_logits(run, "planted-1"), rtol=0, atol=1e-5)
    meta = json.loads((out / "taskgraph.json").read_text())
    assert meta["task"] == "planted-1" and meta["pooling"] == "mean" and meta["base"]["folder"] == "base"


def test_all_tasks_are_named_adapters_of_one_peft_model(tmp_path):
    run = save_run(planted("poly"), tmp_path / "run", 2)
    out = tmp_path / "peft"
    assert export(run, "--format", "peft", "--all-tasks", "--out", out) == 0
    index = json.loads((out / "taskgraph.json").read_text())
    assert index["tasks"] == [f"planted-{t}" for t in range(4)]
    loaded = PeftModel.from_pretrained(
        AutoModel.from_pretrained(out / "base"), out / "planted-0", adapter_name="planted-0"
    )
    for task in index["tasks"][1:]:
        loaded.load_adapter(out / task, adapter_name=task)
    loaded.eval()
    for task in ("planted-3", "planted-0", "planted-2"):
        loaded.set_adapter(task)
        assert_close(peft_logits(loaded, out / task), taskgraph_logits(run, task), rtol=0, atol=1e-5)


def test_gpt2_conv1d_and_a_linearized_fold_of_rank_2r(tmp_path):
    """GPT-2 stores Conv1D weights [in, out] (fan_in_fan_out); an L-LoRA around B0 != 0 folds to rank 2r."""
    from taskgraph.spec import Spec

    spec = Spec.model_validate(
        {
            "model": {"config": dict(TINY["gpt2"]), "target_modules": ["c_attn"], "pooling": "last"},
            "adapters": {"rank": 2, "alpha": 4, "skills": 3, "linearized": True},
            "router": {"kind": "poly"},
            "tasks": [{"name": "a", "num_labels": 3}],
        }
    )
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    with torch.no_grad():
        for _, layer in model.adapted:
            layer.B0.normal_(generator=torch.Generator().manual_seed(1))
            layer.A.normal_(generator=torch.Generator().manual_seed(2))
            layer.B.normal_(generator=torch.Generator().manual_seed(3))
    model.save_pretrained(tmp_path / "run" / "model")
    out = tmp_path / "peft"
    assert export(tmp_path / "run", "--format", "peft", "--task", "a", "--out", out) == 0
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["fan_in_fan_out"] is True and config["r"] == 4  # rank 2r, exact
    ids = IDS % 100
    loaded = PeftModel.from_pretrained(AutoModel.from_pretrained(out / "base"), out).eval()
    head = load_file(out / "head.safetensors")
    with torch.no_grad():
        hidden = loaded(input_ids=ids, attention_mask=MASK).last_hidden_state
        got = pool("last", hidden, MASK) @ head["weight"].T + head["bias"]
        want = model.eval()(ids, MASK, "a").logits
    assert_close(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--task", "nope"], "unknown task 'nope'"),
        ([], "give --task NAME (one adapter folder) or --all-tasks"),
        (["--task", "planted-0", "--all-tasks"], "give --task NAME"),
    ],
)
def test_bad_peft_exports_are_exit_2(tmp_path, capsys, args, needle):
    run = save_run(planted("poly"), tmp_path / "run", 1)
    assert export(run, "--format", "peft", *args, "--out", tmp_path / "peft") == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "peft").exists()


def test_an_export_replaces_only_an_earlier_export(tmp_path, capsys):
    run = save_run(planted("poly"), tmp_path / "run", 1)
    out = tmp_path / "peft"
    assert export(run, "--format", "peft", "--task", "planted-0", "--out", out) == 0
    assert export(run, "--format", "peft", "--task", "planted-2", "--out", out) == 0  # an earlier export: replaced
    assert json.loads((out / "taskgraph.json").read_text())["task"] == "planted-2"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert export(run, "--format", "peft", "--task", "planted-0", "--out", other) == 2
    assert "is not a PEFT export" in capsys.readouterr().err and (other / "notes.txt").read_text() == "keep"
