"""TaskGraph: the Python API, the spec round trip and the networkx view."""

from __future__ import annotations

import pytest

from taskgraph.errors import GraphError
from taskgraph.graph import TaskGraph
from taskgraph.spec import Spec, dump_spec, load_spec
from tests.conftest import minimal_spec


def three() -> TaskGraph:
    g = TaskGraph("toy")
    g.add_task("a", 2)
    g.add_task("b", 3, description="three labels")
    g.add_task("c", 2, relate={"a": 0.7, "b": 0.2})
    return g


def test_add_relate_remove():
    g = three()
    assert g.tasks == ["a", "b", "c"] and len(g) == 3 and "b" in g
    assert g.relations == [("c", "a", 0.7), ("c", "b", 0.2)]
    g.relate("a", "c", 0.9)  # update, undirected
    assert g.weight("c", "a") == 0.9 and len(g.relations) == 2
    assert g.neighbours("c") == {"a": 0.9, "b": 0.2}
    g.remove_task("a")
    assert g.tasks == ["b", "c"] and g.relations == [("c", "b", 0.2)]
    assert repr(g) == "TaskGraph('toy', tasks=2, relations=1)"


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda g: g.add_task("a", 2), "already exists"),
        (lambda g: g.add_task("d", 1), "num_labels"),
        (lambda g: g.add_task("d", 2, relate={"zz": 0.5}), "unknown task 'zz'"),
        (lambda g: g.relate("a", "a", 0.5), "itself"),
        (lambda g: g.relate("a", "b", 1.5), "in [0, 1]"),
        (lambda g: g.relate("a", "q", 0.5), "unknown task 'q'; tasks are ['a', 'b', 'c']"),
        (lambda g: g.remove_task("q"), "unknown task 'q'"),
    ],
)
def test_errors(call, needle):
    g = three()
    with pytest.raises(GraphError) as info:
        call(g)
    assert needle in str(info.value)
    assert g.tasks == ["a", "b", "c"]  # a failed call changes nothing


def test_failed_add_with_bad_relation_adds_nothing():
    g = three()
    with pytest.raises(GraphError):
        g.add_task("d", 2, relate={"a": 2.0})
    assert "d" not in g and g.tasks == ["a", "b", "c"]


def test_spec_round_trip(tmp_path):
    spec = Spec.model_validate(minimal_spec())
    g = TaskGraph.from_spec(spec)
    assert g.to_spec() == spec
    path = tmp_path / "g.yaml"
    path.write_text(dump_spec(g.to_spec()))
    assert load_spec(path) == spec


def test_to_spec_from_python_graph():
    spec = three().to_spec(model={"config": {"model_type": "bert"}}, router={"kind": "mhr"})
    assert spec.task_names == ["a", "b", "c"]
    assert [tuple(r) for r in spec.relations.declared] == [("c", "a", 0.7), ("c", "b", 0.2)]
    assert spec.router.kind == "mhr"


def test_networkx_tasks_only():
    nxg = three().to_networkx()
    assert sorted(nxg.nodes) == ["task:a", "task:b", "task:c"]
    assert nxg.nodes["task:b"] == {"type": "task", "label": "b", "num_labels": 3, "description": "three labels"}
    assert nxg.edges["task:a", "task:c"] == {"type": "relates", "weight": 0.7, "declared": True}
    assert nxg.graph["name"] == "toy"


def test_networkx_with_inventory():
    L, K = 3, 2
    nxg = three().to_networkx(num_layers=L, skills=K)
    types = [d["type"] for _, d in nxg.nodes(data=True)]
    assert types.count("task") == 3 and types.count("layer") == L and types.count("adapter") == L * K
    etypes = [d["type"] for _, _, d in nxg.edges(data=True)]
    assert etypes.count("uses") == 3 * L * K
    assert etypes.count("in") == L * K
    assert etypes.count("next") == (L - 1) * K * K
    assert etypes.count("relates") == 2
    assert nxg.edges["task:a", "adapter:1:0"]["weight"] == pytest.approx(1 / K)
