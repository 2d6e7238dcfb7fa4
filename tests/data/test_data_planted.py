"""The planted benchmark: determinism, ground-truth structure, labels, and the spec helper."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from taskgraph.data import build_source, planted_spec, planted_universe
from taskgraph.data.planted import (
    PlantedConfig,
    PlantedParams,
    PlantedSource,
    build_universe,
)
from taskgraph.errors import DataError
from taskgraph.spec import spec_from_dict

SMALL = PlantedConfig(examples_per_task=200)


def test_same_seed_same_universe_other_seed_another() -> None:
    a, b = build_universe(SMALL), build_universe(SMALL)
    assert a is not b
    assert np.array_equal(a.incidence, b.incidence) and np.array_equal(a.skill_tokens, b.skill_tokens)
    for task in (0, 5):
        for x, y in zip(a.examples(task, "train"), b.examples(task, "train")):
            assert np.array_equal(x, y)
    c = build_universe(SMALL.model_copy(update={"seed": 1}))
    assert not np.array_equal(a.incidence, c.incidence)
    assert not np.array_equal(a.examples(0, "train")[0], c.examples(0, "train")[0])


def test_a_task_does_not_depend_on_what_else_was_built() -> None:
    a, b = build_universe(SMALL), build_universe(SMALL)
    b.examples(3, "test")
    assert np.array_equal(a.examples(7, "val")[0], b.examples(7, "val")[0])
    assert not np.array_equal(a.examples(7, "val")[0][:20], a.examples(7, "test")[0][:20])


@pytest.mark.parametrize("seed", range(5))
def test_incidence_ground_truth(seed: int) -> None:
    u = build_universe(PlantedConfig(seed=seed))
    assert u.incidence.shape == (24, 8) and u.incidence.dtype == bool
    sizes = u.incidence.sum(1)
    assert set(sizes.tolist()) <= {2, 3}
    assert len({tuple(row) for row in u.incidence.tolist()}) == 24  # distinct skill sets
    assert u.held_out_tasks() == [20, 21, 22, 23] and u.seen_tasks() == list(range(20))
    assert u.incidence[u.seen_tasks()].sum(0).min() >= 3  # every skill in >= 3 seen tasks
    rel = u.relations()
    assert rel.shape == (24, 24) and (rel == rel.T).all() and not rel.diagonal().any()
    i, j = np.argwhere(rel)[0]
    assert (u.incidence[i] & u.incidence[j]).any()
    assert [u.num_labels(t) for t in range(24)] == (sizes + 1).tolist()


def test_skill_tokens_are_disjoint_and_avoid_padding() -> None:
    u = build_universe(SMALL)
    skill = u.skill_tokens.ravel()
    assert u.skill_tokens.shape == (8, SMALL.tokens_per_skill)
    assert len(set(skill.tolist())) == skill.size and not set(skill.tolist()) & set(u.filler_tokens.tolist())
    assert len(skill) + len(u.filler_tokens) == SMALL.vocab_size - 1 and 0 not in set(u.filler_tokens.tolist())


def test_labels_count_skills_in_the_first_half_and_are_balanced() -> None:
    u = build_universe(PlantedConfig(examples_per_task=400))
    half = u.config.seq_len // 2
    for task in (0, 1, 21):
        ids, labels, bits = u.examples(task, "train")
        k = u.num_labels(task)
        assert ids.shape == (320, u.config.seq_len) and ids.min() >= 1 and ids.max() < u.config.vocab_size
        counts = np.bincount(labels, minlength=k)
        assert counts.max() - counts.min() <= 1  # exactly balanced
        # Every skill's token occurs exactly once; its half is the skill's bit; the label counts the task's bits.
        where = np.stack([np.isin(ids, u.skill_tokens[s]) for s in range(u.num_skills)], 1)  # [n, S, L]
        assert (where.sum(2) == 1).all()
        assert np.array_equal(where[:, :, :half].any(2), bits)
        assert np.array_equal(labels, bits[:, u.skills_of(task)].sum(1))
        others = np.setdiff1d(np.arange(u.num_skills), u.skills_of(task))
        assert abs(bits[:, others].mean() - 0.5) < 0.08  # other skills: either half, evenly


def test_the_bag_of_tokens_says_nothing_about_the_label() -> None:
    """Every example holds the same skill tokens; only their positions differ (why heads-only fails)."""
    u = build_universe(PlantedConfig(examples_per_task=400))
    ids, _, _ = u.examples(0, "train")
    skill_bag = np.sort(np.where(np.isin(ids, u.skill_tokens), ids, 0), axis=1)[:, -u.num_skills :]  # [n, S]
    assert (skill_bag == np.sort(u.skill_tokens.ravel())).all()
    filler = np.isin(ids, u.filler_tokens).sum(1)  # [n]
    assert (filler == u.config.seq_len - u.num_skills).all()


def test_source_loads_token_ids_and_checks_num_labels() -> None:
    params = PlantedParams(task=2, examples_per_task=100)
    universe = planted_universe(params.universe_config())
    k = universe.num_labels(2)
    src = PlantedSource(params, task="p2", num_labels=k)
    train, val, test = (src.load(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert train.is_tokenized and train.texts is None and len(train.token_ids[0]) == params.seq_len
    assert np.array_equal(np.array(test.token_ids), universe.examples(2, "test")[0])
    assert src.universe is universe  # every task of one config shares one cached universe
    with pytest.raises(DataError, match=rf"task 'p2': planted task 2 uses skills .* so it has {k} labels"):
        PlantedSource(params, task="p2", num_labels=k + 1).load("train")


def test_params_are_checked() -> None:
    with pytest.raises(ValidationError, match="task 24 does not exist"):
        PlantedParams(task=24)
    with pytest.raises(ValidationError, match="cannot use each of 8 skills 3 times"):
        PlantedConfig(tasks=8, held_out=2)
    with pytest.raises(ValidationError, match="fewer than 30 distinct tasks"):
        PlantedConfig(skills=4, tasks=30)
    with pytest.raises(ValidationError, match="leaves too few filler tokens"):
        PlantedConfig(vocab_size=16)
    with pytest.raises(ValidationError, match="seq_len \\(12\\) must be at least 2 x skills \\(16\\)"):
        PlantedConfig(seq_len=12)
    with pytest.raises(ValidationError, match="extra"):
        PlantedParams(task=0, skill=3)


def test_planted_spec_is_a_valid_spec_whose_tasks_load() -> None:
    data = planted_spec(seed=3, examples_per_task=50, steps=10)
    spec = spec_from_dict(data)
    universe = planted_universe(PlantedConfig(seed=3, examples_per_task=50))
    assert spec.task_names == [f"planted-{t:02d}" for t in universe.seen_tasks()]
    assert spec.model.config["vocab_size"] == universe.config.vocab_size
    assert spec.model.max_length == universe.config.seq_len and spec.relations.declared == []
    for t, task in enumerate(spec.tasks):
        assert task.num_labels == universe.num_labels(t)
        assert task.data.params.task == t and task.data.params.universe_config() == universe.config
    loaded = build_source(spec.tasks[4]).load("val")
    assert np.array_equal(np.array(loaded.token_ids), universe.examples(4, "val")[0])
    everything = planted_spec(seed=3, include_held_out=True, examples_per_task=50)
    assert len(everything["tasks"]) == 24 and everything["tasks"][-1]["data"]["task"] == 23


def test_an_unlucky_feasible_config_is_a_data_error() -> None:
    # Passes the counting check (7 tasks x 3 >= 3 skills x 5), but 3 skills make only 7 distinct
    # sets, in which each skill occurs 4 times: no draw can work.
    config = PlantedConfig(skills=3, tasks=7, held_out=0, skills_per_task=(1, 3), min_tasks_per_skill=5)
    with pytest.raises(DataError, match="no task × skill incidence found"):
        build_universe(config)
