"""Graph-router keys retired on 2026-12-07 (none won anything in any regime measured): an old spec naming one is
an error at its line that says so and names the results page, beside the spec's other problems; the CLI exits 2."""

from __future__ import annotations

import pytest

from taskgraph.cli import main
from taskgraph.errors import ModelError, SpecError
from taskgraph.routing.base import router_params
from taskgraph.spec import load_spec
from taskgraph.spec.models import RouterSpec
from taskgraph.spec.router_kinds import RETIRED_GRAPH_KEYS, GraphRouterParams

MESSAGE = "retired (no win in any regime measured: docs/graph-prior.md); remove it"

OLD_SPEC = """\
name: old-graph
model:
  config: {model_type: bert, vocab_size: 128, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 64}
  max_length: 16
router:
  kind: graph
  smoothness: 0.3
  sparsity: 0.1
  relation_estimate: update
  budget: -1
tasks:
  - {name: a, num_labels: 2}
  - {name: b, num_labels: 2}
"""


def test_two_retired_keys_are_two_problems_at_their_lines(write, capsys):  # noqa: ANN001
    path = write(OLD_SPEC)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.problems == [
        f"{path}:8: router.sparsity: {MESSAGE}",
        f"{path}:9: router.relation_estimate: {MESSAGE}",
        f"{path}:10: router.budget: Input should be greater than or equal to 0 (got -1)",  # reported beside them
    ]
    assert main(["validate", "--spec-only", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:8: router.sparsity: {MESSAGE}" in err and "Traceback" not in err


@pytest.mark.parametrize("key", RETIRED_GRAPH_KEYS)
def test_every_retired_key_says_so_even_at_its_old_default(key: str):
    old_defaults = {
        "sparsity": 0.0,
        "relation_estimate": "none",
        "estimate_every": 50,
        "estimate_weight": 1.0,
    }
    with pytest.raises(ModelError) as info:
        router_params(RouterSpec.model_validate({"kind": "graph", key: old_defaults[key]}), GraphRouterParams)
    assert str(info.value) == f"router.{key}: {MESSAGE}"
    assert key not in GraphRouterParams.model_fields


def test_a_spec_without_them_loads_as_before(write):  # noqa: ANN001
    kept = OLD_SPEC.replace("  sparsity: 0.1\n", "").replace("  relation_estimate: update\n", "")
    spec = load_spec(write(kept.replace("budget: -1", "budget: 0.5")))
    assert spec.router.params.smoothness == 0.3 and spec.router.params.budget == 0.5
