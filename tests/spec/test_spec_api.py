"""The spec from Python: model_validate reports everything; YAML dump → load gives an equal spec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from taskgraph.errors import SpecError
from taskgraph.spec import Spec, dump_spec, load_spec, spec_from_dict
from tests.conftest import minimal_spec


def test_model_validate_reports_all_problems():
    data = minimal_spec()
    data["adapters"]["rank"] = 0
    data["router"]["kind"] = "nope"
    data["relations"]["declared"].append(["a", "q", 0.2])
    with pytest.raises(ValidationError) as info:
        Spec.model_validate(data)
    locs = {tuple(e["loc"]) for e in info.value.errors()}
    assert {("adapters", "rank"), ("router", "kind"), ("relations", "declared", 2)} <= locs


def test_spec_from_dict_raises_spec_error_without_lines():
    data = minimal_spec()
    data["tasks"][0]["num_labels"] = 0
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    assert info.value.problems == ["<spec>: tasks[0].num_labels: Input should be greater than or equal to 2 (got 0)"]


def test_defaults_are_filled():
    spec = Spec.model_validate(minimal_spec())
    assert spec.training.lr.router > spec.training.lr.adapters
    assert spec.model.pooling == "mean"
    assert spec.router.params.share_layers is False  # poly's own keys, defaulted


def test_yaml_round_trip(tmp_path):
    spec = Spec.model_validate(minimal_spec())
    path = tmp_path / "round.yaml"
    path.write_text(dump_spec(spec))
    again = load_spec(path)
    assert again == spec
    assert dump_spec(again) == dump_spec(spec)


def test_assignment_is_validated():
    spec = Spec.model_validate(minimal_spec())
    with pytest.raises(ValidationError):
        spec.adapters.rank = 0
