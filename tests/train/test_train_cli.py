"""``taskgraph train``: ``--set`` overrides and argument errors (exit 2, one message)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from taskgraph.cli import main
from taskgraph.errors import SpecError
from taskgraph.spec.overrides import apply_override, spec_with_overrides


def _doc() -> dict:
    return {
        "router": {"kind": "poly"},
        "tasks": [{"name": "a", "num_labels": 2}, {"name": "b", "num_labels": 3}],
        "training": {"steps": 10},
    }


def test_set_values_are_yaml_and_paths_reach_into_sections_and_lists() -> None:
    doc = _doc()
    apply_override(doc, "training.steps=5")
    apply_override(doc, "router.temperature=0.5")
    apply_override(doc, "training.lr.router=1e-1")  # a section absent from the file is created
    apply_override(doc, "tasks[1].num_labels=4")
    apply_override(doc, "tasks.0.description=first task")
    apply_override(doc, "model.target_modules=[query, value]")
    apply_override(doc, "training.grad_clip=null")
    assert doc["training"] == {"steps": 5, "lr": {"router": 0.1}, "grad_clip": None}
    assert doc["router"] == {"kind": "poly", "temperature": 0.5}
    assert doc["tasks"][1]["num_labels"] == 4 and doc["tasks"][0]["description"] == "first task"
    assert doc["model"]["target_modules"] == ["query", "value"]


@pytest.mark.parametrize(
    "item, message",
    [
        ("training.steps", "write it as key=value"),
        ("=5", "write it as key=value"),
        ("tasks[5].num_labels=2", r"tasks has 2 items \(indices 0..1\)"),
        ("tasks.name=x", r"tasks is a list; index it by number"),
        ("router.kind.x=1", r"router.kind is a str \('poly'\), not a section"),
        ("training..steps=1", "cannot read the key"),
        ("training.steps=[1", "YAML syntax error"),
    ],
)
def test_malformed_set_items_say_what_is_wrong(item: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        apply_override(_doc(), item)


def test_the_changed_spec_is_validated_whole_without_line_numbers(make_spec) -> None:  # noqa: ANN001
    path = make_spec()
    spec = spec_with_overrides(path, ["training.steps=3", "router.temperature=2"])
    assert spec.training.steps == 3 and spec.router.temperature == 2.0
    with pytest.raises(SpecError) as info:
        spec_with_overrides(path, ["training.steps=0", "training.sampling=square", "training.stepz=3"])
    problems = info.value.problems
    assert len(problems) == 3
    assert all(p.startswith(f"{path} with --set: training.") for p in problems)
    assert any("training.steps: Input should be greater than or equal to 1 (got 0)" in p for p in problems)
    assert any("unknown key 'stepz'; did you mean 'steps'?" in p for p in problems)


def test_a_broken_spec_file_reports_its_lines(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"model": {"config": {"model_type": "bert"}}, "tasks": [{"name": "a"}]}))
    assert main(["train", str(path), "--out", str(tmp_path / "run"), "--set", "training.steps=2"]) == 2
    assert f"{path}:" in capsys.readouterr().err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--max-steps", "0"], "must be at least 1"),
        (["--max-steps", "ten"], "expected a whole number"),
        (["--device", "tpu"], "invalid choice"),
    ],
)
def test_argument_errors_are_exit_2(make_spec, tmp_path, capsys, argv, message) -> None:  # noqa: ANN001
    assert main(["train", str(make_spec()), "--out", str(tmp_path / "run"), *argv]) == 2
    assert message in capsys.readouterr().err
