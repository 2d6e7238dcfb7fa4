"""Every kind of bad spec is one SpecError listing file:line: path: message — never a traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec
from tests.conftest import minimal_spec


def problems_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def spec_yaml(**overrides):
    return yaml.safe_dump(minimal_spec(**overrides), sort_keys=False)


def test_valid_minimal_spec_loads(write):
    spec = load_spec(write(spec_yaml()))
    assert spec.task_names == ["a", "b", "c"]
    assert spec.router.kind == "poly"


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- a\n- b\n", "a list, not a mapping"),
        ("just a string\n", "a str, not a mapping"),
        ("model: {config: {model_type: bert}\ntasks: []\n", "YAML syntax error"),
        ('name: "unterminated\ntasks: []\n', "YAML syntax error"),
        ("a: b: c\n", "YAML syntax error"),
    ],
)
def test_unreadable_documents(write, text, needle):
    problems = problems_of(write(text))
    assert len(problems) == 1 and needle in problems[0], problems


def test_syntax_error_names_the_line(write):
    path = write("name: x\nmodel:\n  config: {model_type: bert}\ntasks:\n  - {name: a, num_labels: 2\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:") and "YAML syntax error" in problem
    line = int(problem.split(":")[1])
    assert 5 <= line <= 6


def test_binary_garbage(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    (problem,) = problems_of(path)
    assert "not a text file" in problem or "not UTF-8" in problem


def test_control_characters(tmp_path):
    path = tmp_path / "ctl.yaml"
    path.write_bytes(b"name: \x07bell\n")
    (problem,) = problems_of(path)
    assert "YAML" in problem


def test_missing_file_and_directory(tmp_path):
    assert "no such file" in problems_of(tmp_path / "nope.yaml")[0]
    assert "is a directory" in problems_of(tmp_path)[0]


def test_alias_bomb_is_rejected_fast(write):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write("\n".join(lines) + "\n")
    start = time.perf_counter()
    (problem,) = problems_of(path)
    assert time.perf_counter() - start < 2.0
    assert "expands to more than" in problem


def test_deep_nesting(write):
    path = write("a: " + "[" * 5000 + "]" * 5000 + "\n")
    (problem,) = problems_of(path)
    assert "too deep" in problem


def test_deep_block_nesting(write):
    text = "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v\n"
    (problem,) = problems_of(write(text))
    assert "too deep" in problem


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['echo pwned > /tmp/taskgraph-pwned']",
        "!!python/name:os.system",
        "!!python/object:builtins.dict {}",
        "!custom 3",
    ],
)
def test_python_tags_never_execute(write, tag, tmp_path):
    marker = Path("/tmp/taskgraph-pwned")
    marker.unlink(missing_ok=True)
    (problem,) = problems_of(write(f"name: {tag}\n"))
    assert "is not allowed" in problem
    assert not marker.exists()


def test_too_large_file(tmp_path):
    from taskgraph.spec.loader import MAX_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\n")
    assert "at most" in problems_of(path)[0]


def one_problem(write, **overrides) -> str:
    problems = problems_of(write(spec_yaml(**overrides)))
    assert len(problems) == 1, problems
    return problems[0]


def test_duplicate_task_names(write):
    p = one_problem(
        write, tasks=[{"name": "a", "num_labels": 2}, {"name": "a", "num_labels": 2}], relations={"declared": []}
    )
    assert "tasks[1].name: duplicate task name 'a'" in p


def test_relation_to_unknown_task(write):
    p = one_problem(write, relations={"declared": [["a", "zz", 0.5]]})
    assert "relations.declared[0]" in p and "unknown task 'zz'" in p and "['a', 'b', 'c']" in p


def test_self_relation(write):
    assert "related to itself" in one_problem(write, relations={"declared": [["a", "a", 0.5]]})


def test_duplicate_relation(write):
    p = one_problem(write, relations={"declared": [["a", "b", 0.5], ["b", "a", 0.2]]})
    assert "declared twice" in p


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_weight_outside_unit_interval(write, weight):
    p = one_problem(write, relations={"declared": [["a", "b", weight]]})
    assert "relations.declared[0][2]" in p and str(weight) in p


@pytest.mark.parametrize(
    "section, field, value, needle",
    [
        ("adapters", "rank", 0, "adapters.rank"),
        ("adapters", "rank", -3, "adapters.rank"),
        ("adapters", "splits", 0, "adapters.splits"),
        ("adapters", "skills", 0, "adapters.skills"),
        ("router", "temperature", 0, "router.temperature"),
        ("router", "temperature", -1.0, "router.temperature"),
        ("router", "gate_threshold", 1.0, "router.gate_threshold"),
        ("router", "gate_threshold", -0.1, "router.gate_threshold"),
    ],
)
def test_out_of_range_numbers(write, section, field, value, needle):
    data = minimal_spec()
    data[section][field] = value
    p = one_problem(write, **{section: data[section]})
    assert needle in p and f"(got {value})" in p


def test_num_labels_below_two(write):
    tasks = minimal_spec()["tasks"]
    tasks[1]["num_labels"] = 1
    assert "tasks[1].num_labels" in one_problem(write, tasks=tasks)


def test_unknown_router_lists_choices(write):
    p = one_problem(write, router={"kind": "mlp"})
    assert "router.kind: unknown router 'mlp'; choose from [" in p
    for kind in ("mhr", "mhr-mu", "poly", "private", "shared"):
        assert f"'{kind}'" in p


@pytest.mark.parametrize("tasks", [[], None])
def test_no_tasks(write, tasks):
    p = one_problem(write, tasks=tasks, relations={"declared": []})
    assert p.split(": ", 1)[1].startswith("tasks") and "no tasks" in p


def test_missing_tasks_key(write):
    data = minimal_spec()
    del data["tasks"]
    data["relations"] = {"declared": []}
    (p,) = problems_of(write(yaml.safe_dump(data)))
    assert "tasks: required field is missing" in p


def test_unknown_key_suggests(write):
    data = minimal_spec()
    data["adapters"]["rnak"] = 4
    p = one_problem(write, adapters=data["adapters"])
    assert "adapters.rnak: unknown key 'rnak'; did you mean 'rank'?" in p


def test_unknown_top_level_key_suggests(write):
    path = write(spec_yaml() + "trainig: {steps: 3}\n")
    (p,) = problems_of(path)
    assert "did you mean 'training'?" in p


def test_router_params_of_a_kind_without_params(write):
    p = one_problem(write, router={"kind": "shared", "gnn": {"layers": 2}})
    assert "router.gnn: unknown key 'gnn'; allowed keys are ['gate_threshold', 'kind', 'temperature']" in p


def test_router_params_another_kind_owns(write):
    p = one_problem(write, router={"kind": "poly", "gnn": {"layers": 2}})
    assert (
        "router.gnn: unknown key 'gnn'; allowed keys are ['gate_threshold', 'kind', 'share_layers', 'temperature']" in p
    )


def test_every_problem_reported_at_once_with_lines(write):
    path = write(
        """\
        name: demo
        model:
          config: {model_type: bert}
          max_lenght: 10
        adapters: {rank: 0, heads: 0}
        router: {kind: mlp, temperature: 0}
        relations:
          declared:
            - [a, b, 1.5]
            - [a, a, 0.5]
        tasks:
          - {name: a, num_labels: 1}
          - {name: b, num_labels: 2}
          - {name: a, num_labels: 3}
        """
    )
    problems = problems_of(path)
    got = {(int(p.split(":")[1]), p.split(": ")[1]) for p in problems}
    assert got == {
        (4, "model.max_lenght"),
        (5, "adapters.rank"),
        (5, "adapters.splits"),
        (6, "router.temperature"),
        (6, "router.kind"),
        (9, "relations.declared[0][2]"),
        (10, "relations.declared[1]"),
        (12, "tasks[0].num_labels"),
        (14, "tasks[2].name"),
    }
    assert all(p.startswith(f"{path}:") for p in problems)
    assert [int(p.split(":")[1]) for p in problems] == sorted(int(p.split(":")[1]) for p in problems)


def test_model_needs_exactly_one_source(write):
    p = one_problem(write, model={"path": "/x", "config": {"model_type": "bert"}})
    assert "exactly one of 'path'" in p
    p = one_problem(write, model={"max_length": 8})
    assert "exactly one of 'path'" in p


def test_bad_task_name(write):
    tasks = minimal_spec()["tasks"]
    tasks[0]["name"] = "has space"
    p = one_problem(write, tasks=tasks, relations={"declared": [["b", "c", 0.3]]})
    assert "tasks[0].name" in p
