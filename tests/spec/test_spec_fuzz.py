"""Fuzzing: whatever the document, load_spec raises SpecError or returns a Spec — nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskgraph.errors import SpecError
from taskgraph.spec import Spec, load_spec
from tests.conftest import minimal_spec

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["a", "b", "poly", "mhr", "bert", "query"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
keys = st.sampled_from(
    [
        "name",
        "model",
        "adapters",
        "router",
        "relations",
        "tasks",
        "training",
        "rank",
        "kind",
        "declared",
        "num_labels",
        "config",
        "bogus",
    ]
)


def check(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            assert isinstance(load_spec(path), Spec)
        except SpecError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, values, max_size=6))
def test_random_documents(doc):
    check(yaml.safe_dump(doc))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["model", "adapters", "router", "relations", "tasks", "training"]), values)
def test_mutated_valid_spec(section, value):
    data = minimal_spec()
    data[section] = value
    check(yaml.safe_dump(data))


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(raw):
    check(raw)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}[]:-&*!|>'\"#,? \n\tab1")), max_size=80))
def test_yaml_punctuation_soup(text):
    check(text)
