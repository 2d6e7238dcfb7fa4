"""The planted compositional universe: held-out combinations, descriptions as token ids, Jaccard relations."""

from __future__ import annotations

import numpy as np
import pytest

from taskgraph.data import build_source, planted_universe
from taskgraph.data.planted import PlantedConfig, PlantedUniverse, build_universe
from taskgraph.data.planted_comp import (
    PlantedCompParams,
    PlantedCompSource,
    held_out_tasks,
    jaccard,
    planted_comp_spec,
    planted_description,
)
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.errors import DataError
from taskgraph.spec import spec_from_dict
from taskgraph.spec.models import TaskSpec

TINY = {"skills": 6, "seq_len": 12, "seen": 12, "held_out": 4, "examples_per_task": 40, "steps": 10}


def universe_of(spec: dict) -> tuple[PlantedCompParams, PlantedUniverse]:
    data = {k: v for k, v in spec["tasks"][0]["data"].items() if k != "source"}
    params = PlantedCompParams.model_validate(data)
    return params, planted_universe(params.universe_config())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_held_out_tasks_are_new_combinations_of_skills_seen_in_training(seed: int) -> None:
    spec = planted_comp_spec(seed=seed, **TINY)
    params, universe = universe_of(spec)
    assert universe.num_tasks == 16 and universe.held_out_tasks() == [12, 13, 14, 15]
    assert [t["data"]["task"] for t in spec["tasks"]] == list(range(12))  # the spec lists the seen tasks only
    seen_sets = {tuple(universe.skills_of(t)) for t in universe.seen_tasks()}
    assert len(seen_sets) == 12  # distinct among themselves
    uses = universe.incidence[universe.seen_tasks()].sum(0)  # [S] seen tasks per skill
    assert uses.min() >= params.min_tasks_per_skill == 2
    for t in universe.held_out_tasks():
        skills = universe.skills_of(t)
        assert tuple(skills) not in seen_sets and 2 <= len(skills) <= 3
        assert all(uses[k] >= 2 for k in skills)
    held = [tuple(universe.skills_of(t)) for t in universe.held_out_tasks()]
    assert len(set(held)) == 4


def test_a_description_names_each_skill_once_among_filler_tokens() -> None:
    universe = build_universe(PlantedConfig(skills=6, tasks=16, held_out=4, min_tasks_per_skill=2, seq_len=12))
    skill_token = {int(tok): k for k, row in enumerate(universe.skill_tokens) for tok in row}
    filler = set(universe.filler_tokens.tolist())
    descriptions = []
    for t in range(universe.num_tasks):
        ids = planted_description(universe, t, 8, rng_seed=0)
        assert len(ids) == 8
        named = sorted(skill_token[i] for i in ids if i in skill_token)
        assert named == universe.skills_of(t)  # each of its skills once, no other skill
        assert all(i in filler for i in ids if i not in skill_token) and sum(i in filler for i in ids) == 8 - len(named)
        assert ids == planted_description(universe, t, 8, rng_seed=0)
        assert ids == planted_description(build_universe(universe.config), t, 8, rng_seed=0)
        descriptions.append(tuple(ids))
    assert len(set(descriptions)) == 16
    assert planted_description(universe, 3, 8, rng_seed=1) != planted_description(universe, 3, 8, rng_seed=0)
    exact = planted_description(universe, 3, len(universe.skills_of(3)), rng_seed=0)
    assert sorted(skill_token[i] for i in exact) == universe.skills_of(3)  # no room for filler
    with pytest.raises(ValueError, match="cannot name each once: give a length of at least"):
        planted_description(universe, 3, 1, rng_seed=0)


def test_a_description_draws_one_of_a_skills_several_tokens() -> None:
    universe = build_universe(
        PlantedConfig(
            skills=4, tasks=6, held_out=0, min_tasks_per_skill=2, tokens_per_skill=3, seq_len=8, vocab_size=64
        )
    )
    drawn: set[int] = set()
    for seed in range(20):
        ids = planted_description(universe, 0, 6, rng_seed=seed)
        for k in universe.skills_of(0):
            mine = [i for i in ids if i in universe.skill_tokens[k]]
            assert len(mine) == 1
            drawn.add(mine[0])
    assert len(drawn) > len(universe.skills_of(0))  # not always the same token per skill


def test_jaccard_of_a_hand_checked_incidence() -> None:
    incidence = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=bool)
    w = jaccard(incidence)
    assert w[0, 1] == pytest.approx(1 / 3) and w[0, 2] == pytest.approx(2 / 3) and w[1, 2] == pytest.approx(2 / 3)
    assert w[0, 3] == 0 and np.allclose(np.diag(w), 1) and np.allclose(w, w.T)


def test_declared_relations_are_the_jaccard_weights_of_seen_pairs_that_share_a_skill() -> None:
    spec = planted_comp_spec(seed=0, **TINY)
    _, universe = universe_of(spec)
    declared = {(a, b): w for a, b, w in spec["relations"]["declared"]}
    seen = universe.seen_tasks()
    shared = universe.relations()[np.ix_(seen, seen)]  # [12, 12]
    assert len(declared) == int(np.triu(shared, k=1).sum()) > 0
    a, b = set(universe.skills_of(0)), set(universe.skills_of(1))
    expected = len(a & b) / len(a | b)
    assert declared.get(("comp-00", "comp-01"), 0.0) == pytest.approx(expected)
    for (x, y), w in declared.items():
        i, j = int(x[5:]), int(y[5:])
        si, sj = set(universe.skills_of(i)), set(universe.skills_of(j))
        assert i < j < 12 and w == pytest.approx(len(si & sj) / len(si | sj)) and 0 < w < 1


def test_spec_validates_and_held_out_entries_attach() -> None:
    data = planted_comp_spec(seed=0, **TINY)
    spec = spec_from_dict(data)
    params, universe = universe_of(data)
    assert spec.task_names == [f"comp-{t:02d}" for t in range(12)]
    assert spec.router.kind == "graph" and len(spec.relations.declared) == len(data["relations"]["declared"])
    for t, task in enumerate(spec.tasks):
        assert task.description is None and task.data.source == "planted-comp" and task.objective == "generate"
        assert isinstance(task.data.params, PlantedCompParams) and task.data.params.task == t
    held = held_out_tasks(data)
    assert held == held_out_tasks(spec.tasks[0].data.params)
    assert [h["name"] for h in held] == ["comp-12", "comp-13", "comp-14", "comp-15"]
    weights = jaccard(universe.incidence)
    for h in held:
        t = h["data"]["task"]
        assert set(h["data"]) == set(data["tasks"][0]["data"]) and h["max_new_tokens"] == 4
        assert h["relations"] == {f"comp-{s:02d}": pytest.approx(weights[t, s]) for s in range(12) if weights[t, s] > 0}
        task = TaskSpec.model_validate({k: v for k, v in h.items() if k not in ("relations", "description_ids")})
        source = build_source(task)
        assert isinstance(source, PlantedCompSource)
        assert source.description_ids() == h["description_ids"] == planted_description(universe, t, 8, 0)
        assert len(source.load("train")) == 32


@pytest.mark.parametrize("t", [3, 14])  # a seen and a held-out task
def test_examples_equal_planted_gen_for_the_same_task(t: int) -> None:
    gen = planted_gen_spec(skills=6, tasks=16, held_out=4, examples_per_task=40)["tasks"][0]["data"]
    comp = planted_comp_spec(seed=0, **TINY)["tasks"][0]["data"]
    a = build_source(TaskSpec.model_validate({"name": "a", "objective": "generate", "data": {**gen, "task": t}}))
    b = build_source(TaskSpec.model_validate({"name": "a", "objective": "generate", "data": {**comp, "task": t}}))
    assert type(a).__name__ == "PlantedGenSource" and isinstance(b, PlantedCompSource)
    for split in ("train", "val", "test"):
        x, y = a.load(split), b.load(split)
        assert len(x) == len(y) == {"train": 32, "val": 4, "test": 4}[split]
        assert x.token_ids == y.token_ids and x.target_ids == y.target_ids and x.labels == y.labels
    assert a.description_ids() is None and len(b.description_ids()) == 8


def test_other_sources_have_no_description_ids(tmp_path) -> None:
    (tmp_path / "a.jsonl").write_text('{"text": "x", "label": 0}\n' * 10, encoding="utf-8")
    task = TaskSpec.model_validate({"name": "a", "num_labels": 2, "data": {"source": "jsonl", "path": "a.jsonl"}})
    assert build_source(task, tmp_path).description_ids() is None


def test_bad_settings_are_data_errors_that_say_what_is_allowed() -> None:
    with pytest.raises(DataError, match=r"description_length \(2\) must be at least .*\(skills_per_task\[1\] = 3\)"):
        planted_comp_spec(description_length=2, **TINY)
    with pytest.raises(DataError, match=r"seq_len \(12\) must be at least 2 x skills \(20\)"):
        planted_comp_spec(skills=10, seq_len=12)
    with pytest.raises(DataError, match="data.source 'planted-gen'"):
        held_out_tasks(planted_gen_spec(examples_per_task=40))
