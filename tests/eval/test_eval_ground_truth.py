"""Ground truth of a spec's tasks: planted (one universe, rows by params.task), family, or none."""

from __future__ import annotations

import numpy as np

from taskgraph.data import planted_spec, planted_universe
from taskgraph.data.planted import PlantedConfig
from taskgraph.eval import declared_mask, ground_truth
from taskgraph.spec import Spec
from tests.conftest import minimal_spec

SMALL = dict(
    seed=0,
    skills=4,
    tasks=7,
    held_out=1,
    skills_per_task=(2, 3),
    min_tasks_per_skill=2,
    seq_len=8,
    vocab_size=64,
    examples_per_task=30,
)


def small_universe():
    return planted_universe(PlantedConfig(**SMALL))


def test_planted_truth_follows_params_task():
    data = planted_spec(**SMALL, hidden_size=32, num_layers=1, num_heads=2, rank=2)
    data["tasks"] = data["tasks"][::-1]  # spec order is not universe order
    truth = ground_truth(Spec.model_validate(data))
    universe = small_universe()
    rows = [t["data"]["task"] for t in data["tasks"]]
    assert rows == [5, 4, 3, 2, 1, 0]  # the seen tasks, reversed; task 6 is held out
    assert truth.kind == "planted"
    assert np.array_equal(truth.incidence, universe.incidence[rows])
    assert np.array_equal(truth.related, universe.relations()[np.ix_(rows, rows)])
    assert not truth.related.diagonal().any() and np.array_equal(truth.related, truth.related.T)
    assert "planted" in repr(truth)


def test_planted_takes_precedence_over_family_and_needs_one_universe():
    data = planted_spec(**SMALL, hidden_size=32, num_layers=1, num_heads=2, rank=2)
    for i, task in enumerate(data["tasks"]):
        task["family"] = "even" if i % 2 == 0 else "odd"
    assert ground_truth(Spec.model_validate(data)).kind == "planted"
    data["tasks"][0]["data"]["seed"] = 1  # another universe: skills are not comparable
    truth = ground_truth(Spec.model_validate(data))
    assert truth.kind == "family" and truth.incidence is None
    assert truth.related[1, 3] and not truth.related[0, 1] and not truth.related[2, 2]


def test_family_truth_and_none():
    data = minimal_spec()
    assert ground_truth(Spec.model_validate(data)) is None  # no data, no family
    data["tasks"][0]["family"] = "sentiment"
    data["tasks"][2]["family"] = "sentiment"
    assert ground_truth(Spec.model_validate(data)) is None  # task b has no family
    data["tasks"][1]["family"] = "topic"
    truth = ground_truth(Spec.model_validate(data))
    assert truth.kind == "family"
    assert truth.related.tolist() == [[False, False, True], [False, False, False], [True, False, False]]


def test_declared_mask():
    spec = Spec.model_validate(minimal_spec())  # declares a–b and b–c
    assert declared_mask(spec).tolist() == [[False, True, False], [True, False, True], [False, True, False]]
