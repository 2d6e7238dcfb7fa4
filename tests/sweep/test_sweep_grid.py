"""The grid: --param parsing and typing, wildcard and index keys, seeds, the step cap, folder names,
and every bad key / value reported naming its --param. No training here."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgraph.errors import SpecError
from taskgraph.sweep import build_grid, cell_slug, parse_param, split_values
from tests.sweep.conftest import write_spec


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path, seed=3)


def test_split_values_respects_brackets_and_quotes() -> None:
    assert split_values("0.5,1, 2") == ["0.5", "1", "2"]
    assert split_values("[query, value],[query]") == ["[query, value]", "[query]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert parse_param("router.temperature=0.5,1,2") == ("router.temperature", ["0.5", "1", "2"])
    for bad in ("router.temperature", "=1,2", "router.temperature="):
        with pytest.raises(SpecError, match="write it as KEY=v1,v2"):
            parse_param(bad)


def test_cells_are_the_product_times_seeds_with_typed_values(spec: Path) -> None:
    grid = build_grid(spec, {"router.temperature": ["0.5", "2"], "training.label_noise": ["0", "1e-1"]}, seeds=2)
    assert grid.seeds == (3, 4)  # training.seed + 0 .. N-1
    assert [p.values for p in grid.params] == [(0.5, 2), (0, 0.1)]
    assert len(grid.cells) == 8 and len(grid.points()) == 4
    first, last = grid.cells[0], grid.cells[-1]
    assert first.params == {"router.temperature": 0.5, "training.label_noise": 0} and first.seed == 3
    assert last.params == {"router.temperature": 2, "training.label_noise": 0.1} and last.seed == 4
    assert (last.spec.router.temperature, last.spec.training.label_noise, last.spec.training.seed) == (2.0, 0.1, 4)
    assert first.slug == "router.temperature=0.5_training.label_noise=0_seed=3"
    assert last.slug == "router.temperature=2_training.label_noise=1e-1_seed=4"
    assert len({c.slug for c in grid.cells}) == 8
    assert [c.seed for c in grid.cells] == [3, 4] * 4  # seeds innermost


def test_null_and_data_sensitivity_values(spec: Path) -> None:
    grid = build_grid(spec, {"training.train_examples": ["10", "null"]})
    assert [c.spec.training.train_examples for c in grid.cells] == [10, None]


def test_wildcard_and_index_keys(spec: Path) -> None:
    every = build_grid(spec, {"tasks.*.data.examples_per_task": ["30", "50"]})
    assert every.params[0].keys == tuple(f"tasks[{i}].data.examples_per_task" for i in range(6))
    for cell, n in zip(every.cells, (30, 50)):
        assert [t.data.params.examples_per_task for t in cell.spec.tasks] == [n] * 6
    assert every.cells[0].slug == "tasks.all.data.examples_per_task=30_seed=3"
    brackets = build_grid(spec, {"tasks[*].data.examples_per_task": ["30"]})
    assert [t.data.params.examples_per_task for t in brackets.cells[0].spec.tasks] == [30] * 6
    for key in ("tasks[1].data.examples_per_task", "tasks.1.data.examples_per_task"):
        one = build_grid(spec, {key: ["30"]}).cells[0].spec
        assert [t.data.params.examples_per_task for t in one.tasks] == [40, 30, 40, 40, 40, 40]


def test_list_values(spec: Path) -> None:
    grid = build_grid(spec, {"model.target_modules": ["[query]", "[query, value]"]}, seeds=2)
    assert [c.spec.model.target_modules for c in grid.cells] == [["query"]] * 2 + [["query", "value"]] * 2
    assert grid.points() == [(("model.target_modules", ["query"]),), (("model.target_modules", ["query", "value"]),)]
    assert grid.cells[0].slug.startswith("model.target_modules=-query-_seed=3_")  # brackets: hashed name
    assert len({c.slug for c in grid.cells}) == 4


def test_max_steps_caps_training_steps(spec: Path) -> None:
    assert build_grid(spec, {"router.temperature": ["1"]}, max_steps=3).cells[0].spec.training.steps == 3
    assert build_grid(spec, {"router.temperature": ["1"]}, max_steps=100).cells[0].spec.training.steps == 4
    swept = build_grid(spec, {"training.steps": ["2", "10"]}, max_steps=5)
    assert [c.spec.training.steps for c in swept.cells] == [2, 5]


def _problems(spec: Path, params: dict[str, list[str]], **kw: int) -> str:
    with pytest.raises(SpecError) as info:
        build_grid(spec, params, **kw)
    return str(info.value)


def test_bad_keys_and_values_name_the_param_and_what_is_allowed(spec: Path) -> None:
    text = _problems(spec, {"router.temprature": ["1"]})
    assert "--param router.temprature=1" in text and "did you mean 'temperature'" in text
    text = _problems(spec, {"router.temperature": ["0.5", "-1"]})
    assert "--param router.temperature=-1: router.temperature: Input should be greater than 0" in text
    assert "=0.5" not in text  # the good value is not reported
    text = _problems(spec, {"tasks.9.num_labels": ["2"]})
    assert "--param tasks.9.num_labels: tasks has 6 items (indices 0..5)" in text and "--set" not in text
    assert "is not a non-empty list" in _problems(spec, {"router.*.x": ["1"]})
    assert "--seeds" in _problems(spec, {"training.seed": ["1", "2"]})
    assert "repeats '1'" in _problems(spec, {"router.temperature": ["1", "1.0"]})
    assert "is empty" in _problems(spec, {"router.temperature": ["1", ""]})
    text = _problems(spec, {"router.temperature": ["0"], "training.label_noise": ["1.5"]}, seeds=0)
    assert "invalid spec (3 problems)" in text  # everything at once: --seeds, both params
    assert "--param training.label_noise=1.5: training.label_noise: Input should be less than 1" in text


def test_slugs_of_unsafe_values_are_hashed_and_distinct() -> None:
    point = (("tasks[0].description", "a b"),)
    assert cell_slug(point, ["a b"], 0).startswith("tasks-0-.description=a-b_seed=0_")
    assert cell_slug(point, ["a b"], 0) != cell_slug(point, ["a/b"], 0)
    long = cell_slug((("x", 1),), ["1" * 300], 0)
    assert len(long) < 140
