"""taskgraph adapt to a generative task of the planted generative universe (tiny GPT-2 from a config): routing
(MHR-z) moves the new task's routing alone and no head is fit; full fits the shots' targets; zero-shot on the graph router; the adapted run
evaluates to the scores adapt recorded; generate-only flags without --objective generate are exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taskgraph.cli import main
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.eval import evaluate_run
from taskgraph.model import TaskGraphModel
from taskgraph.spec import spec_from_dict
from tests.adapt.conftest import perturb

HELD_OUT = 3  # the universe's last task, kept out of the run
DATA = f"{{source: planted-gen, task: {HELD_OUT}}}"


def gen_run(folder: Path, router: str) -> Path:
    spec = planted_gen_spec(
        router=router,
        tasks=4,
        held_out=1,
        skills=3,
        examples_per_task=60,
        hidden_size=16,
        num_heads=2,
        seq_len=8,
        vocab_size=24,
        steps=10,
        batch_size=8,
    )
    if router == "graph":
        spec["router"]["gnn"] = {"hidden": 8}
    torch.manual_seed(0)
    model = TaskGraphModel(spec_from_dict(spec))
    perturb(model)
    model.save_pretrained(folder / "run" / "model")
    return folder / "run"


def adapt(run: Path, out: Path, mode: str, *extra: str) -> int:
    """8 shots, one batch of 8 (the run's batch size): every phase-1 step sees the same examples."""
    return main(
        [
            "adapt",
            str(run),
            "--task",
            "new",
            "--data",
            DATA,
            "--shots",
            "8",
            "--mode",
            mode,
            "--objective",
            "generate",
            "--max-new-tokens",
            "4",
            "--out",
            str(out),
            *extra,
        ]
    )


def test_routing_mode_learns_the_new_tasks_routing_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = gen_run(tmp_path, "poly")
    assert adapt(run, tmp_path / "out", "routing", "--steps", "8", "--lr", "0.05") == 0
    printed = capsys.readouterr().out
    assert "(no head: a generative task)" in printed and "exact match" in printed and "ROUGE-L" in printed
    record = json.loads((tmp_path / "out" / "adapt.json").read_text())
    assert record["head"] is None and record["objective"] == "generate" and record["steps"] == 8
    source = TaskGraphModel.from_pretrained(run / "model")
    adapted = TaskGraphModel.from_pretrained(tmp_path / "out" / "model")
    pairs = list(zip(source.adapter_parameters(), adapted.adapter_parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in pairs)  # every skill frozen: the other tasks do not change
    source.eval(), adapted.eval()  # inference routing
    assert torch.equal(source.router(torch.arange(3)).weights, adapted.router(torch.arange(3)).weights)
    assert adapted.spec.tasks[-1].generative and adapted.spec.tasks[-1].max_new_tokens == 4
    result = evaluate_run(tmp_path / "out", tasks=["new"], timing=False, alignment=False)
    assert result["tasks"]["new"]["exact_match"] == pytest.approx(record["test"]["exact_match"])
    assert result["tasks"]["new"]["rouge_l"] == pytest.approx(record["test"]["rouge_l"])


def test_full_mode_fits_the_shots_targets(tmp_path: Path) -> None:
    run = gen_run(tmp_path, "poly")
    assert adapt(run, tmp_path / "out", "full", "--steps", "10", "--lr", "0.05") == 0
    record = json.loads((tmp_path / "out" / "adapt.json").read_text())
    assert record["loss"]["last"] < record["loss"]["first"] - 1.0, record["loss"]  # measured 4.81 -> 1.70 nats
    assert record["other_tasks_change"] and record["head"] is None


@pytest.mark.parametrize("router", ["poly", "private"])
def test_mhr_mu_tunes_the_skills_average_as_the_new_tasks_own_adapter(tmp_path: Path, router: str) -> None:
    """MHR-μ on a generative task: the new task starts from the average of the skills (poly) or of the private
    LoRAs (private), tunes that one adapter on its shots' targets, and the other tasks do not change."""
    run = gen_run(tmp_path, router)
    assert adapt(run, tmp_path / "out", "mhr-mu", "--steps", "10", "--lr", "0.05") == 0
    record = json.loads((tmp_path / "out" / "adapt.json").read_text())
    assert record["head"] is None and record["mode"] == "mhr-mu" and not record["other_tasks_change"]
    assert record["loss"]["last"] < record["loss"]["first"], record["loss"]
    source = TaskGraphModel.from_pretrained(run / "model").eval()
    adapted = TaskGraphModel.from_pretrained(tmp_path / "out" / "model").eval()
    prompts = torch.randint(1, 20, (4, 8), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(prompts)
    with torch.no_grad():
        for task in source.task_names:  # the source tasks' outputs are untouched
            before = source(prompts, mask, task).logits
            assert torch.equal(before, adapted(prompts, mask, task).logits), task
    result = evaluate_run(tmp_path / "out", tasks=["new"], timing=False, alignment=False)
    assert result["tasks"]["new"]["exact_match"] == pytest.approx(record["test"]["exact_match"])


def test_zero_shot_routes_a_generative_task_from_its_relations(tmp_path: Path) -> None:
    run = gen_run(tmp_path, "graph")
    assert adapt(run, tmp_path / "out", "zero-shot", "--relate", "gen-0=0.9", "--relate", "gen-2=0.5") == 0
    record = json.loads((tmp_path / "out" / "adapt.json").read_text())
    assert record["steps"] == 0 and record["head"] is None and record["relate"] == {"gen-0": 0.9, "gen-2": 0.5}
    assert set(record["test"]) >= {"exact_match", "token_f1", "rouge_l"}


def test_generate_flags_need_the_generate_objective(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = gen_run(tmp_path, "poly")
    assert (
        main(
            [
                "adapt",
                str(run),
                "--task",
                "new",
                "--data",
                DATA,
                "--shots",
                "4",
                "--mode",
                "routing",
                "--choice",
                "a",
                "--stop",
                ".",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 2
    )
    assert "--choice, --stop describe a generative task; add --objective generate" in capsys.readouterr().err
    assert adapt(run, tmp_path / "out", "routing", "--labels", "3") == 2
    assert "drop --labels" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
