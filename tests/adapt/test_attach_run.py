"""``taskgraph attach`` / ``attach_run``: a graph-router run gains a task with no gradient step, into a new run dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from taskgraph.adapt import attach_run
from taskgraph.cli import main
from taskgraph.data import held_out_tasks, planted_comp_spec, planted_spec
from taskgraph.model import TaskGraphModel, find_model_dir
from taskgraph.report.run_graph import run_graph
from taskgraph.spec import spec_from_dict
from taskgraph.train import train

TINY = {"skills": 6, "seq_len": 12, "seen": 10, "held_out": 3, "examples_per_task": 24, "steps": 6, "batch_size": 8}


@pytest.fixture(scope="module")
def comp_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    spec = planted_comp_spec(seed=0, **TINY)
    spec["router"] = {"kind": "graph", "features": ["free", "description", "examples", "relations"]}
    run = tmp_path_factory.mktemp("attach-run") / "run"
    train(spec_from_dict(spec), run)
    return run, spec


def test_cli_attach_scores_the_task_and_writes_a_run_eval_reads(
    comp_run: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, spec = comp_run
    new = held_out_tasks(spec)[0]
    out = tmp_path / "attached"
    code = main(
        ["attach", str(run), "--task", new["name"], "--data", json.dumps(new["data"]), "--objective", "generate",
         "--max-new-tokens", str(new["max_new_tokens"]), "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "no gradient step" in printed and "from       description, examples; relations computed" in printed
    record = json.loads((out / "adapt.json").read_text())
    assert record["mode"] == "attach" and record["steps"] == 0 and record["test"]["n"] > 0
    assert 0.0 <= record["test"]["exact_match"] <= 1.0 and record["relations"]
    model = TaskGraphModel.from_pretrained(find_model_dir(out))
    assert model.task_names[-1] == new["name"]
    # the run's description came from the source's token ids, the examples from its training inputs
    assert model.router.side.block("description")[-1].abs().sum() > 0
    assert run_graph(out).nodes[f"task:{new['name']}"]["provenance"] == "attached"  # the exports and the view
    assert main(["eval", str(out), "--task", new["name"]]) == 0


def test_attach_run_with_given_relations_routes_as_the_api(comp_run: tuple[Path, dict], tmp_path: Path) -> None:
    run, spec = comp_run
    new = held_out_tasks(spec)[1]
    result = attach_run(
        run,
        task=new["name"],
        out_dir=tmp_path / "a",
        description=new["description_ids"],
        relate=new["relations"],
        generation={"objective": "generate", "max_new_tokens": new["max_new_tokens"]},
    )
    assert result.test is None and result.record["evidence"]["relations"] == "given"
    assert result.relations == pytest.approx(new["relations"])
    direct = TaskGraphModel.from_pretrained(find_model_dir(run))
    generation = {"objective": "generate", "max_new_tokens": new["max_new_tokens"]}
    i = direct.attach_task(
        new["name"], description=new["description_ids"], relations=new["relations"], generation=generation
    )
    loaded = TaskGraphModel.from_pretrained(find_model_dir(result.out_dir))
    for model in (direct, loaded):
        model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.router(torch.tensor([i])).weights, direct.router(torch.tensor([i])).weights)


def test_attach_a_classification_task_fits_its_head_on_shots(tmp_path: Path) -> None:
    spec = planted_spec(seed=0, skills=4, tasks=8, held_out=2, seq_len=8, vocab_size=64, examples_per_task=60,
                        router="graph", steps=4, batch_size=8)  # fmt: skip
    run = tmp_path / "run"
    train(spec_from_dict(spec), run)
    data = {**spec["tasks"][0]["data"], "task": 6}  # planted-6  # a held-out task of the universe
    result = attach_run(run, task="planted-6", out_dir=tmp_path / "a", relate={"planted-0": 0.5}, data=data, shots=8)
    head = result.record["head"]
    assert isinstance(head, dict) and head["parameters"] > 0
    assert 0.0 <= result.test["accuracy"] <= 1.0 and result.test["n"] > 0


def test_cli_attach_refusals_exit_2(
    comp_run: tuple[Path, dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, _ = comp_run
    bad = tmp_path / "inputs.csv"
    bad.write_text("a\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    cases = [
        (["--examples", str(tmp_path / "missing.txt")], "cannot read it"),
        (["--examples", str(bad)], "expected a .txt file"),
        (["--examples", str(empty)], "holds no input"),
        (["--relate", "nope=0.5"], "not a trained task"),
        ([], "nothing to route it from"),
    ]
    for extra, message in cases:
        code = main(
            ["attach", str(run), "--task", "x", "--objective", "generate", "--out", str(tmp_path / "o"), *extra]
        )
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)
    assert not (tmp_path / "o").exists()


def test_a_task_whose_prompt_and_target_pass_the_bases_positions_is_refused_before_anything_is_saved(
    comp_run: tuple[Path, dict], tmp_path: Path
) -> None:
    run, _ = comp_run
    model = TaskGraphModel.from_pretrained(find_model_dir(run))
    with pytest.raises(Exception, match="max_new_tokens 32"):
        model.attach_task("x", relations={"comp-00": 0.5}, generation={"objective": "generate"})
    assert len(model.task_names) == 10


def test_validate_names_a_description_feature_no_task_can_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """taskgraph validate runs train's side-feature step: description asked, no description anywhere -> exit 2."""
    import yaml

    spec = planted_spec(seed=0, skills=4, tasks=6, held_out=0, seq_len=8, vocab_size=64, examples_per_task=40,
                        router="graph", steps=2, batch_size=8)  # fmt: skip
    spec["router"]["features"] = ["description", "relations"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err + capsys.readouterr().out
    assert "router.features has description but no task has one" in err and "Traceback" not in err
