"""The quality bench's rules with no training: cell specs, cell paths and states, figures, targets, tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.quality.cells import DONE, adapt_cell_dir, lr_tag, step_ms, train_cell_dir, train_cell_state
from benchmarks.quality.planted_suites import TINY_UNIVERSE, planted_suite
from benchmarks.quality.real_suites import choose_held_out
from benchmarks.quality.report import (
    few_shot_table,
    lr_table,
    paired_table,
    params,
    pm,
    router_table,
    targets_table,
)
from benchmarks.quality.suites import PLANTED_BUDGET, TINY_BUDGET, QualityError, cell_spec, with_overrides
from benchmarks.quality.summary import adapt_accuracy, family_accuracy, few_shot_rows, router_row, val_by_lr
from benchmarks.quality.targets import paper_targets, planted_targets, real_targets
from taskgraph.spec import Spec
from taskgraph.sweep.resumable import FINISHED, FRESH, RESUME

# ----------------------------------------------------------------------------- cell specs
BASE = {
    "name": "real",
    "model": {"config": {"model_type": "bert"}, "max_length": 64},
    "adapters": {"rank": 8, "alpha": 16.0, "skills": 8, "heads": 2},
    "router": {"kind": "graph", "temperature": 0.5, "gnn": {"layers": 2}},
    "relations": {"declared": [["a", "b", 0.9]], "regularization": 0.02},
    "tasks": [{"name": "a", "num_labels": 2}, {"name": "b", "num_labels": 2}],
    "training": {"steps": 999, "warmup_steps": 10},
}


def test_cell_spec_sets_router_rates_seed_and_budget_and_drops_declared_relations():
    budget = with_overrides(PLANTED_BUDGET, steps=200, batch_size=8, max_length=32, train_examples=50)
    mhr = cell_spec(BASE, budget, "mhr", 3e-3, 2)
    assert mhr["router"] == {"kind": "mhr", "temperature": 0.5}  # the graph's own keys are not mhr's
    assert mhr["adapters"] == {"rank": 8, "alpha": 16.0, "skills": 8, "splits": 4}  # equal adapter parameters
    assert mhr["training"]["lr"] == {"adapters": 3e-3, "heads": 3e-3, "router": 0.1}
    assert (mhr["training"]["seed"], mhr["training"]["steps"], mhr["training"]["batch_size"]) == (2, 200, 8)
    assert mhr["training"]["warmup_steps"] == 10 and mhr["training"]["train_examples"] == 50
    assert mhr["training"]["eval_every"] == 200 and mhr["training"]["checkpoint_every"] == 50
    assert mhr["relations"] == {"declared": [], "regularization": 0.02}
    assert mhr["model"]["max_length"] == 32 and mhr["name"] == "real-mhr"
    graph = cell_spec(BASE, budget, "graph", 1e-3, 0)
    assert graph["router"] == {"kind": "graph", "temperature": 0.5, "gnn": {"layers": 2}}
    assert graph["adapters"]["splits"] == 1 and graph["training"]["lr"]["router"] == 3e-3
    assert cell_spec(BASE, budget, "shared", 1e-3, 0)["training"]["lr"]["router"] == 0.01  # unused
    assert BASE["relations"]["declared"] == [["a", "b", 0.9]]  # the base is not changed


def test_planted_suite_holds_out_the_last_tasks_and_relates_them_by_shared_skills():
    from taskgraph.data.planted import PlantedConfig, planted_universe

    suite = planted_suite(TINY_BUDGET, TINY_UNIVERSE)
    world = planted_universe(
        PlantedConfig(**{k: v for k, v in TINY_UNIVERSE.items() if k in PlantedConfig.model_fields})
    )
    assert suite.seen_tasks == [f"planted-{t}" for t in range(6)]
    (held,) = suite.held_out
    assert held.name == "planted-6" and held.num_labels == 3 and held.data["task"] == 6
    sharing = {f"planted-{t}" for t in world.seen_tasks() if set(world.skills_of(t)) & set(world.skills_of(6))}
    assert set(held.relate) == sharing and set(held.relate.values()) == {1.0}
    spec = Spec.model_validate(suite.cell_spec("mhr", 1e-3, 1))
    assert spec.router.kind == "mhr" and spec.adapters.splits == 4 and len(spec.tasks) == 6


def test_planted_universe_changes_reach_the_suite_and_bad_ones_are_refused():
    import inspect

    from benchmarks.quality.planted_suites import UNIVERSE_KEYS
    from taskgraph.data.planted import planted_spec

    fixed = {"include_held_out", "router", "steps", "batch_size", "name"}
    assert set(UNIVERSE_KEYS) == set(inspect.signature(planted_spec).parameters) - fixed
    suite = planted_suite(TINY_BUDGET, {**TINY_UNIVERSE, "tasks": 10, "held_out": 2, "rank": 3})
    assert suite.seen_tasks == [f"planted-{t}" for t in range(8)]
    assert [h.name for h in suite.held_out] == ["planted-8", "planted-9"]
    spec = Spec.model_validate(suite.cell_spec("poly", 1e-3, 0))
    assert spec.adapters.rank == 3 and {t.data.tasks for t in spec.tasks} == {10}
    with pytest.raises(QualityError, match=r"unknown key\(s\) \['layers'\]; choose from"):
        planted_suite(TINY_BUDGET, {"layers": 3})
    with pytest.raises(QualityError, match="not a valid planted universe: .*held_out"):
        planted_suite(TINY_BUDGET, {**TINY_UNIVERSE, "held_out": 7})
    with pytest.raises(QualityError, match="skills: "):
        planted_suite(TINY_BUDGET, {"skills": "many"})


def test_real_held_out_rule_takes_the_last_task_of_two_families_that_keep_one_seen():
    tasks = [{"name": n} for n in ("s1", "t1", "s2", "lang", "t2", "t3", "a1", "a2")]
    families = {
        "s1": "sentiment",
        "s2": "sentiment",
        "t1": "topic",
        "t2": "topic",
        "t3": "topic",
        "lang": "language",
        "a1": "authorship",
        "a2": "authorship",
    }
    assert choose_held_out(tasks, families) == ["s2", "t3"]
    # one sentiment task left (it stays seen): topic and authorship
    assert choose_held_out(tasks, {**families, "s1": None}) == ["t3", "a2"]
    assert choose_held_out(tasks, families, ["lang"]) == ["lang"]
    with pytest.raises(QualityError, match="not tasks of the config"):
        choose_held_out(tasks, families, ["nope"])


# ----------------------------------------------------------------------------- cells
def test_cell_paths():
    assert [lr_tag(x) for x in (1e-3, 3e-3, 1e-2, 1e-4)] == ["lr0.001", "lr0.003", "lr0.01", "lr0.0001"]
    assert train_cell_dir(Path("OUT"), "planted", "graph", 1e-2, 2) == Path("OUT/planted/train/graph/lr0.01/seed2")
    assert adapt_cell_dir(Path("OUT"), "real", "mhr", 3e-3, "mhr-mu", 16, 0, "bbc") == Path(
        "OUT/real/adapt/mhr/lr0.003/mhr-mu/shots16/seed0/bbc"
    )


def test_train_cell_state(tmp_path: Path):
    cell = tmp_path / "seed0"
    assert train_cell_state(cell) == FRESH  # absent
    (cell / "checkpoints" / "step-000004").mkdir(parents=True)
    assert train_cell_state(cell) == RESUME
    (cell / "model").mkdir()
    (cell / "train.json").write_text(json.dumps({"completed": False}))
    assert train_cell_state(cell) == RESUME
    (cell / "train.json").write_text(json.dumps({"completed": True}))
    assert train_cell_state(cell) == FINISHED  # only evaluated
    (cell / "eval.json").write_text("{not json")
    assert train_cell_state(cell) == FINISHED  # a torn record is not a finished cell
    (cell / "eval.json").write_text(json.dumps({"val": None}))
    assert train_cell_state(cell) == DONE


def test_step_ms_is_the_median_of_the_last_row_of_each_step():
    rows = [
        {"step": 1, "split": "train", "examples_per_s": 100.0},
        {"step": 2, "split": "train", "examples_per_s": 50.0},
        {"step": 2, "split": "train", "examples_per_s": 200.0},  # re-done after a resume: this one counts
        {"step": 2, "split": "val", "mean_acc": 0.5},
        {"step": 3, "split": "train", "examples_per_s": 25.0},
    ]
    assert step_ms(rows, batch_size=10) == pytest.approx(100.0)  # 100, 50, 400 ms → median 100
    assert step_ms([], 10) is None


# ----------------------------------------------------------------------------- figures
def _record(
    val: float,
    test: float,
    tasks: dict[str, float] | None = None,
    alloc: float | None = None,
    learned: float | None = None,
) -> dict:
    return {
        "error": None,
        "trainable": {"adapters": 1000, "router": 24, "heads": 30, "total": 1054},
        "step_ms": 12.0,
        "val": {"mean": {"accuracy": val}},
        "test": {
            "mean": {"accuracy": test},
            "tasks": {k: {"accuracy": v} for k, v in (tasks or {}).items()},
            "allocation": None if alloc is None else {"precision": alloc, "random": 0.3},
            "relations": {"auroc": {"learned": learned, "routing_cosine": 0.6, "gradient_cosine": 0.55, "random": 0.5}},
        },
    }


def test_router_row_means_families_and_lr_table():
    families = {"a": "sentiment", "b": "sentiment", "c": "topic"}
    train = {
        ("graph", 1e-3, 0): _record(0.7, 0.0),
        ("graph", 3e-3, 0): _record(0.8, 0.8, {"a": 0.9, "b": 0.7, "c": 0.8}),
        ("graph", 3e-3, 1): _record(0.6, 0.6, {"a": 0.5, "b": 0.5, "c": 0.8}),
    }
    assert val_by_lr(train, "graph", [0]) == {1e-3: {0: 0.7}, 3e-3: {0: 0.8}}
    assert val_by_lr(train, "graph", [0, 1]) == {1e-3: {0: 0.7, 1: None}, 3e-3: {0: 0.8, 1: 0.6}}
    assert family_accuracy(train[("graph", 3e-3, 0)], families) == pytest.approx({"sentiment": 0.8, "topic": 0.8})
    records = {0: train[("graph", 3e-3, 0)], 1: train[("graph", 3e-3, 1)]}
    row = router_row("graph", 3e-3, records, val_by_lr(train, "graph", [0, 1]), families)
    assert row["test"]["mean"] == pytest.approx(0.7) and row["test"]["std"] == pytest.approx(0.1414213562)
    assert row["families"]["sentiment"]["values"] == pytest.approx([0.8, 0.5])
    assert row["relations"]["gradient_cosine"]["mean"] == pytest.approx(0.55)
    assert row["val_by_lr"] == {  # a rate missing a selection seed has no mean
        "0.001": {"mean": None, "seeds": {"0": 0.7, "1": None}},
        "0.003": {"mean": pytest.approx(0.7), "seeds": {"0": 0.8, "1": 0.6}},
    }
    assert lr_table([row]) == [
        "| router | lr 0.001 | lr 0.003 | chosen |",
        "|---|---|---|---|",
        "| graph | – (0.700 / –) | 0.700 (0.800 / 0.600) | 0.003 |",
    ]
    lines = router_table([row], "real")
    assert lines[0] == (
        "| router | lr (adapters, heads) | trainable (adapters + router) | step (ms) | val acc | test acc "
        "| test: sentiment | test: topic | relation AUROC learned / routing-cos / grad-cos / random |"
    )
    assert lines[2] == (
        "| graph | 0.003 | 1,024 (+30 heads) | 12.0 ± 0.0 | 0.700 ± 0.141 | 0.700 ± 0.141 "
        "| 0.650 ± 0.212 | 0.800 ± 0.000 | – / 0.600 / 0.550 / 0.500 |"
    )


def test_formatting_helpers():
    assert pm({"mean": 0.5, "std": None}) == "0.500"
    assert pm({"mean": None}) == "–" and pm(None) == "–"
    assert pm({"mean": 12.345, "std": 1.0}, 1) == "12.3 ± 1.0"
    assert params(None) == "–"
    pair = {
        "a": "graph",
        "b": "poly",
        "mean": 0.05,
        "ci_low": 0.01,
        "ci_high": 0.09,
        "seeds": [0, 1, 2],
        "verdict": "win",
    }
    assert paired_table([pair])[2] == "| graph − poly | +0.050 | [+0.010, +0.090] | 3 | **win** |"
    tie = {**pair, "ci_low": -0.01, "verdict": "no difference", "shots": 16}
    assert paired_table([tie])[2] == "| graph − poly, 16 shots | +0.050 | [-0.010, +0.090] | 3 | no difference |"
    target = {"name": "t", "figure": 0.9, "rule": "≥ 0.95", "met": False, "detail": "d"}
    assert targets_table([target])[2] == "| t | 0.900 | ≥ 0.95 | **missed** | d |"
    assert targets_table([{**target, "figure": None, "met": None}])[2] == "| t | – | ≥ 0.95 | not measured | d |"


def _adapt(router: str, mode: str, shots: int, seed: int, task: str, acc: float | None) -> dict:
    return {
        "router": router,
        "mode": mode,
        "shots": shots,
        "seed": seed,
        "task": task,
        "test": None if acc is None else {"accuracy": acc},
        "error": None if acc is not None else "DataError: x",
    }


def test_adaptation_means_over_held_out_tasks_then_seeds():
    records = [
        _adapt("graph", "zero-shot", 16, 0, "x", 0.6),
        _adapt("graph", "zero-shot", 16, 0, "y", 0.8),
        _adapt("graph", "zero-shot", 16, 1, "x", 0.5),
        _adapt("graph", "zero-shot", 16, 1, "y", None),
        _adapt("mhr", "mhr-mu", 16, 0, "x", 0.5),
        _adapt("mhr", "mhr-mu", 16, 0, "y", 0.5),
    ]
    table = adapt_accuracy(records)
    assert table[("graph", "zero-shot", 16)] == {0: pytest.approx(0.7), 1: None}  # a failed task voids the seed
    (graph, mhr) = few_shot_rows(records)
    assert (graph["mean"], graph["n"], graph["errors"]) == (pytest.approx(0.7), 1, ["DataError: x"])
    assert few_shot_table([mhr])[2] == "| mhr | mhr-mu | 16 | 0.500 | 1 |  |"


def test_targets_are_judged_on_the_declared_rules():
    rows = {
        r: router_row(
            r,
            1e-3,
            {k: _record(0.8, acc, {"a": acc, "c": acc}, alloc=0.96, learned=0.9) for k, acc in enumerate(accs)},
            {},
            {"a": "sentiment", "c": "topic"},
        )
        for r, accs in {
            "graph": [0.80, 0.82, 0.84],
            "poly": [0.70, 0.71, 0.75],
            "mhr": [0.78, 0.80, 0.83],
            "shared": [0.81, 0.80, 0.86],
            "private": [0.805, 0.83, 0.85],
        }.items()
    }
    planted = {t["name"]: t for t in planted_targets(rows, [], [16])}
    assert planted["graph allocation precision (mean over seeds)"]["met"] is True
    assert planted["graph relation AUROC vs planted truth (mean over seeds)"]["met"] is False  # 0.9 < 0.95
    assert planted["zero-shot graph − MHR-μ on held-out tasks, head fit on 16 shots"]["met"] is None
    real = {t["name"]: t for t in real_targets(rows)}
    assert real["graph ≥ max(poly, mhr) (test mean)"]["figure"] == pytest.approx(0.82 - 0.80333333)
    assert real["graph ≥ max(poly, mhr) (test mean)"]["met"] is True
    assert real["graph ≥ shared (test mean)"]["met"] is False  # 0.82 < 0.8233
    family = real["no family: graph more than 0.01 below private"]
    assert family["figure"] == pytest.approx(0.82 - 0.828333333) and family["met"] is True  # < 1 point below
    assert real["graph relation AUROC vs families, none declared (mean over seeds)"]["met"] is True
    paper = paper_targets(rows, [], [16])
    assert paper[0]["figure"] == pytest.approx((0.08 + 0.09 + 0.08) / 3) and paper[0]["met"] is True
    assert paper[1]["met"] is None
