"""Importing PEFT LoRA folders as skills or task adapters: exact updates, round trips, and folders that do not fit."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from pydantic import ValidationError
from torch.testing import assert_close

from taskgraph.cli import main
from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel
from taskgraph.model.base import model_from_config
from taskgraph.spec import Spec
from tests.model.conftest import TASKS, TINY

IDS = torch.randint(3, 100, (4, 7), generator=torch.Generator().manual_seed(0))
MASK = torch.ones_like(IDS)


def spec(
    router: str = "poly",
    *,
    rank: int = 2,
    heads: int = 1,
    hidden: int = 32,
    imports: list | None = None,
    linearized: bool = False,
) -> Spec:
    config = {**TINY["bert"], "hidden_size": hidden}
    return Spec.model_validate(
        {
            "model": {"config": config, "target_modules": ["query", "value"]},
            "adapters": {
                "rank": rank,
                "alpha": 8,
                "skills": 3,
                "splits": heads,
                "linearized": linearized,
                "imports": imports or [],
            },
            "router": {"kind": router},
            "tasks": TASKS,
            "training": {"seed": 0},
        }
    )


def peft_folder(
    folder: Path,
    *,
    rank: int = 2,
    alpha: float = 6.0,
    targets: tuple[str, ...] = ("query", "value"),
    hidden: int = 32,
    seed: int = 5,
) -> tuple[Path, dict[str, torch.Tensor]]:
    """A LoRA saved by PEFT itself over the base the specs build; returns the folder and every module's ΔW."""
    base = model_from_config({**TINY["bert"], "hidden_size": hidden}, seed=0)
    model = get_peft_model(base, LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets)))
    gen = torch.Generator().manual_seed(seed)
    deltas = {}
    with torch.no_grad():
        for name, module in model.base_model.model.named_modules():
            if hasattr(module, "lora_A") and "default" in module.lora_A:
                module.lora_A["default"].weight.copy_(torch.randn(module.lora_A["default"].weight.shape, generator=gen))
                module.lora_B["default"].weight.copy_(torch.randn(module.lora_B["default"].weight.shape, generator=gen))
                deltas[name] = (alpha / rank) * module.lora_B["default"].weight @ module.lora_A["default"].weight
    model.save_pretrained(folder)
    return folder, deltas


@pytest.mark.parametrize("heads, linearized", [(1, False), (2, False), (2, True)])
def test_a_peft_lora_becomes_a_skill_exactly(tmp_path, heads, linearized):
    folder, deltas = peft_folder(tmp_path / "lora")
    torch.manual_seed(0)
    model = TaskGraphModel(
        spec(
            "mhr" if heads > 1 else "poly",
            heads=heads,
            linearized=linearized,
            imports=[{"path": str(folder), "skill": 1}],
        )
    )
    one_hot = torch.zeros(heads, 3)
    one_hot[:, 1] = 1.0
    for name, layer in model.adapted:
        assert_close(layer.delta_weight(one_hot, 1.0), deltas[name], rtol=1e-5, atol=1e-5)
        if linearized:  # linearised around the imported LoRA: its fold is rank 2r, the update at φ₀ is the LoRA
            assert layer.fold(one_hot, 1.0)[0].shape[0] == 4 and torch.equal(layer.B0[:, 1], layer.B[:, 1])
    torch.manual_seed(0)
    untouched = TaskGraphModel(spec("mhr" if heads > 1 else "poly", heads=heads, linearized=linearized))
    for (_, a), (_, b) in zip(model.adapted, untouched.adapted):  # the other skills keep their seeded start
        assert torch.equal(a.A[:, 0], b.A[:, 0]) and torch.equal(a.B[:, 2], b.B[:, 2])


def test_export_then_import_as_a_task_is_a_round_trip(tmp_path):
    torch.manual_seed(0)
    source = TaskGraphModel(spec("private"))
    with torch.no_grad():
        for p in source.adapter_parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3)
    source.save_pretrained(tmp_path / "run" / "model")
    assert (
        main(["export", str(tmp_path / "run"), "--format", "peft", "--task", "beta", "--out", str(tmp_path / "peft")])
        == 0
    )
    torch.manual_seed(0)
    target = TaskGraphModel(spec("private", imports=[{"path": str(tmp_path / "peft"), "task": "beta"}]))
    target.heads.load_state_dict(source.heads.state_dict())
    with torch.no_grad():
        assert_close(
            target.eval()(IDS, MASK, "beta").logits, source.eval()(IDS, MASK, "beta").logits, rtol=1e-5, atol=1e-5
        )
    # saved and loaded again, the imports are not re-read: the weights hold them
    target.save_pretrained(tmp_path / "target")
    shutil.rmtree(tmp_path / "peft")
    again = TaskGraphModel.from_pretrained(tmp_path / "target")
    with torch.no_grad():
        assert_close(again.eval()(IDS, MASK, "beta").logits, target(IDS, MASK, "beta").logits)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("rank", "another rank: r = 4 in the folder, adapters.rank = 2 here"),
        ("missing", "it has no LoRA for 2 module(s) the model adapts: encoder.layer.0.attention.self.value"),
        ("base", "another base model: encoder.layer.0.attention.self.query is 32x32 here but 16x16 in the folder"),
        ("skill", "skill 7 is out of range; every inventory has 3 skills (0..2)"),
        ("task", "needs router.kind 'private'"),
        ("not-peft", "no adapter_config.json; it is not a PEFT adapter folder"),
    ],
)
def test_a_folder_that_does_not_fit_is_named_with_what_differs(tmp_path, case, needle):
    folder = tmp_path / "lora"
    if case == "rank":
        peft_folder(folder, rank=4)
    elif case == "missing":
        peft_folder(folder, targets=("query",))
    elif case == "base":
        peft_folder(folder, hidden=16)
    elif case == "not-peft":
        folder.mkdir()
    else:
        peft_folder(folder)
    model = TaskGraphModel(spec())
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ModelError) as err:
        if case == "task":
            model.import_lora(folder, task="alpha")
        else:
            model.import_lora(folder, skill=7 if case == "skill" else 0)
    assert needle in str(err.value) and str(folder) in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing written


def test_a_spec_import_that_does_not_fit_is_exit_2_naming_the_folder(tmp_path, capsys):
    peft_folder(tmp_path / "lora", rank=4)
    data = spec(imports=[{"path": str(tmp_path / "lora"), "skill": 0}]).model_dump(mode="json", exclude_none=True)
    data["tasks"] = [
        {**t, "data": {"source": "planted", "task": i, "vocab_size": 100}} for i, t in enumerate(data["tasks"])
    ]
    import yaml

    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    assert main(["train", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"PEFT folder {str(tmp_path / 'lora')!r} does not fit the model: another rank" in err
    assert "Traceback" not in err


def test_spec_imports_are_checked_with_everything_else():
    with pytest.raises(ValidationError) as err:
        spec(
            imports=[{"path": "a", "task": "nope"}, {"path": "b"}, {"path": "c", "skill": 0}, {"path": "d", "skill": 0}]
        )
    text = str(err.value)
    for needle in (
        "unknown task 'nope'",
        "needs router.kind 'private'",
        "give exactly one of 'skill'",
        "skill 0 is imported twice",
    ):
        assert needle in text
    assert "imports" not in spec().model_dump()["adapters"]  # specs without imports dump as before
