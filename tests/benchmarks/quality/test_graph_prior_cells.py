"""Issue 15's parts of the quality bench with no training: the planted-few suite (few examples, every pair declared),
router variants, per-(layer, head) allocation, the oracle-relearn ceiling's summary and the new targets."""

from __future__ import annotations

from itertools import combinations

import pytest

from benchmarks.quality.oracle import oracle_summary
from benchmarks.quality.planted_suites import TINY_UNIVERSE, planted_few_suite
from benchmarks.quality.real_suites import real_few_suite
from benchmarks.quality.report import allocation_table, oracle_lines
from benchmarks.quality.suites import (
    REAL_FEW_BUDGET,
    ROUTER_VARIANTS,
    TINY_BUDGET,
    QualityError,
    cell_spec,
    router_kind,
    with_overrides,
)
from benchmarks.quality.summary import paired_figure, paired_rows, per_layer_head
from benchmarks.quality.targets import allocation_targets, few_targets, transfer_targets
from taskgraph.data.planted import PlantedConfig, planted_universe
from taskgraph.spec import Spec


def test_planted_few_declares_every_seen_pair_by_shared_skills_in_every_cell():
    budget = with_overrides(TINY_BUDGET, train_examples=16)
    suite = planted_few_suite(budget, TINY_UNIVERSE)
    world = planted_universe(
        PlantedConfig(**{k: v for k, v in TINY_UNIVERSE.items() if k in PlantedConfig.model_fields})
    )
    row = {t["name"]: t["data"]["task"] for t in suite.base["tasks"]}
    assert [(a, b) for a, b, _ in suite.declared] == list(combinations(suite.seen_tasks, 2))  # every seen pair, once
    for a, b, w in suite.declared:
        assert w == (1.0 if set(world.skills_of(row[a])) & set(world.skills_of(row[b])) else 0.0)
    assert {w for *_, w in suite.declared} == {0.0, 1.0}  # both kinds occur in the tiny universe
    for router in ("shared", "poly", "graph", "graph-strong"):
        spec = suite.cell_spec(router, 1e-2, 1)
        assert spec["relations"]["declared"] == [list(d) for d in suite.declared]
        assert spec["training"]["train_examples"] == 16
        Spec.model_validate(spec)  # a valid spec for every router


def test_real_few_declares_the_families_and_holds_out_family_members(tmp_path):
    config = tmp_path / "real.yaml"
    config.write_text(
        "name: r\nmodel: {path: m}\ntasks:\n"
        + "".join(
            f"  - {{name: {n}, num_labels: 2, family: {f}, data: {{source: jsonl, path: {n}.jsonl}}}}\n"
            for n, f in [
                ("s1", "sentiment"),
                ("s2", "sentiment"),
                ("s3", "sentiment"),
                ("t1", "topic"),
                ("a1", "authorship"),
                ("a2", "authorship"),
            ]
        )
    )
    suite = real_few_suite(REAL_FEW_BUDGET, config)
    assert suite.name == "real-few" and suite.budget.train_examples == 128
    assert [t.name for t in suite.held_out] == ["s3", "a2"]  # a member of each of two seen families
    assert suite.held_out[0].relate == {"s1": 1.0, "s2": 1.0} and suite.held_out[1].relate == {"a1": 1.0}
    assert suite.seen_tasks == ["s1", "s2", "t1", "a1"]
    assert [(a, b) for a, b, _ in suite.declared] == list(combinations(suite.seen_tasks, 2))
    assert {(a, b) for a, b, w in suite.declared if w == 1.0} == {("s1", "s2")}  # within a family only
    spec = suite.cell_spec("graph-strong", 3e-3, 2)
    assert spec["relations"]["declared"] == [list(d) for d in suite.declared]
    assert spec["training"]["train_examples"] == 128


def test_a_variant_cell_is_its_kinds_cell_with_its_keys():
    suite = planted_few_suite(TINY_BUDGET, TINY_UNIVERSE)
    plain, variant = suite.cell_spec("graph", 1e-2, 0), suite.cell_spec("graph-strong", 1e-2, 0)
    assert router_kind("graph-strong") == "graph" and router_kind("mhr") == "mhr"
    assert variant["router"] == {**plain["router"], "smoothness": 3.0}
    assert variant["training"]["lr"] == plain["training"]["lr"]  # the graph router's own rate
    assert {k: v for k, v in variant.items() if k not in ("router", "name")} == {
        k: v for k, v in plain.items() if k not in ("router", "name")
    }
    assert cell_spec(suite.base, suite.budget, "poly", 1e-2, 0)["relations"]["declared"] == []  # default: none


def test_every_variant_cell_is_a_valid_spec():
    """No variant names a retired router key (a spec naming one does not load)."""
    suite = planted_few_suite(TINY_BUDGET, TINY_UNIVERSE)
    assert set(ROUTER_VARIANTS) == {"graph-strong", "graph-contrast", "graph-warm", "graph-warm-contrast", "graph-slow"}
    for variant in ROUTER_VARIANTS:
        assert Spec.model_validate(suite.cell_spec(variant, 1e-2, 0)).router.kind == "graph"


def row(
    name: str,
    test: list[float],
    alloc: list[float],
    learned: list[float] | None = None,
    cosine: list[float] | None = None,
) -> dict:
    def block(values):  # noqa: ANN001, ANN202
        return {"values": values, "mean": None if values is None else sum(values) / len(values)}

    return {
        "router": name,
        "seeds": [0, 1, 2],
        "test": block(test),
        "allocation": {"precision": block(alloc)},
        "relations": {"learned": block(learned) if learned else {}, "routing_cosine": block(cosine) if cosine else {}},
    }


def test_few_targets_need_every_paired_interval_above_zero():
    rows = {
        "graph": row("graph", [0.60, 0.62, 0.61], [0.5] * 3),
        "poly": row("poly", [0.50, 0.51, 0.52], [0.5] * 3),
        "shared": row("shared", [0.59, 0.63, 0.60], [0.5] * 3),
    }
    (t,) = few_targets(rows)
    assert t["figure"] == pytest.approx(min(0.61 - 0.5067, 0.61 - 0.6067), abs=1e-3) and t["met"] is False
    rows["shared"] = row("shared", [0.40, 0.42, 0.41], [0.5] * 3)
    assert few_targets(rows)[0]["met"] is True


def test_allocation_targets_against_poly_and_the_routing_cosines():
    rows = {
        "graph": row("graph", [0.9] * 3, [0.82, 0.84, 0.83], learned=[0.9, 0.92, 0.91]),
        "poly": row("poly", [0.9] * 3, [0.50, 0.55, 0.52], cosine=[0.8, 0.8, 0.8]),
        "mhr": row("mhr", [0.9] * 3, [0.5] * 3, cosine=[0.85, 0.85, 0.85]),
    }
    ceiling = {"precision": {"mean": 0.82}}
    near, above, auroc = allocation_targets(rows, ceiling)
    assert near["met"] is True and "0.820" in near["detail"]
    assert above["met"] is True and above["figure"] == pytest.approx(0.83 - 0.5233, abs=1e-3)
    assert auroc["met"] is True and auroc["rule"] == "mean ≥ 0.850"
    assert paired_figure(rows, "graph", "poly", "allocation", "precision")["verdict"] == "win"
    rows["graph-strong"] = rows["graph"]
    assert ("graph-strong", "graph") in {(p["a"], p["b"]) for p in paired_rows(rows)}  # a variant against its kind
    assert ("graph", "graph-strong") not in {(p["a"], p["b"]) for p in paired_rows(rows)}


def test_per_layer_head_oracle_summary_and_report():
    tables = [[[0.9], [0.7]], [[1.0], [0.8]], None]
    spread = per_layer_head(tables)
    assert [[round(h["mean"], 3) for h in layer] for layer in spread] == [[0.95], [0.75]]
    assert per_layer_head([[[0.9]], [[0.9, 0.8]]]) == []  # shapes differ: no table
    records = [
        {
            "seed": k,
            "precision": p,
            "per_layer_head": t,
            "random": 0.3125,
            "layers": ["q", "v"],
            "train_steps": 10,
            "relearn_steps": 10,
            "error": None,
        }
        for k, (p, t) in enumerate([(0.8, [[0.9], [0.7]]), (0.9, [[1.0], [0.8]])])
    ]
    records.append({"seed": 2, "error": "ModelError: boom", "train_steps": 10, "relearn_steps": 10})
    summary = oracle_summary(records)
    assert summary["precision"]["mean"] == pytest.approx(0.85) and summary["seeds"] == [0, 1]
    assert summary["errors"] == {2: "ModelError: boom"} and summary["layers"] == ["q", "v"]
    assert oracle_summary([]) is None
    text = "\n".join(
        oracle_lines(summary)
        + allocation_table(
            [
                {
                    "router": "graph",
                    "allocation_per_layer_head": [[{"mean": 0.5, "std": 0.1}], [{"mean": 0.4, "std": 0.0}]],
                }
            ],
            summary,
        )
    )
    assert "**0.850 ± 0.071**" in text and "| q | v |" in text
    assert "| graph | 0.500 ± 0.100 | 0.400 ± 0.000 |" in text and "| oracle-relearn ceiling | 0.950 ± 0.071 |" in text


def adapt_records(router: str, mode: str, shots: int, by_seed: list[float]) -> list[dict]:
    """Two held-out tasks per seed whose mean test accuracy is ``by_seed[seed]``."""
    return [
        {"router": router, "mode": mode, "shots": shots, "seed": seed, "task": task, "test": {"accuracy": acc + d}}
        for seed, acc in enumerate(by_seed)
        for task, d in (("a", -0.05), ("b", 0.05))
    ]


def test_transfer_targets_against_mhr_z():
    adapt = (
        adapt_records("mhr", "routing", 16, [0.50, 0.52, 0.51])
        + adapt_records("mhr", "routing", 64, [0.70, 0.72, 0.71])
        + adapt_records("graph", "zero-shot", 16, [0.50, 0.53, 0.51])  # +0.003 on the mean: ≥ holds
        + adapt_records("graph", "routing", 16, [0.60, 0.63, 0.61])  # +0.103, the same sign every seed: a win
        + adapt_records("graph", "routing", 64, [0.70, 0.75, 0.68])  # a tie
    )
    zero, r16, r64 = transfer_targets(adapt, [16, 64])
    assert zero["name"].startswith("graph zero-shot ≥ MHR-z") and zero["met"] is True
    assert zero["figure"] == pytest.approx(0.0033, abs=1e-3)
    assert r16["met"] is True and "win" in r16["detail"] and r64["met"] is False
    worse = [dict(r, test={"accuracy": r["test"]["accuracy"] - 0.02}) for r in adapt if r["mode"] == "zero-shot"]
    no_zero = [r for r in adapt if r["mode"] != "zero-shot"]
    assert transfer_targets(no_zero + worse, [16, 64])[0]["met"] is False  # −0.017: the ≥ target is missed
    assert transfer_targets([r for r in adapt if r["router"] == "graph"], [16, 64])[0]["met"] is None  # no MHR-z


def test_planted_gen_is_the_generative_universe_every_task_seen_with_its_oracle():
    from benchmarks.quality.oracle import ORACLE_SUITES
    from benchmarks.quality.planted_suites import GEN_UNIVERSE, planted_gen_suite
    from benchmarks.quality.suites import PLANTED_GEN_BUDGET

    suite = planted_gen_suite()
    assert suite.name == "planted-gen" and suite.held_out == () and "planted-gen" in ORACLE_SUITES
    world = planted_universe(PlantedConfig(**GEN_UNIVERSE))
    assert len(suite.seen_tasks) == len(world.seen_tasks()) == GEN_UNIVERSE["tasks"]
    for router in ("poly", "graph", "private"):
        spec = Spec.model_validate(suite.cell_spec(router, 1e-2, 1))
        assert all(t.generative and t.data.source == "planted-gen" for t in spec.tasks)
        assert spec.training.steps == PLANTED_GEN_BUDGET.steps and spec.relations.declared == []
    with pytest.raises(QualityError, match="holds no task out"):
        planted_gen_suite(universe={"held_out": 2})
    with pytest.raises(QualityError, match=r"unknown key\(s\) \['tokens_per_skill'\]"):
        planted_gen_suite(universe={"tokens_per_skill": 2})
    with pytest.raises(QualityError, match="not a valid planted universe"):
        planted_gen_suite(universe={"skills": 2, "tasks": 12})


@pytest.mark.parametrize("suite_name", ["planted", "planted-gen"])
def test_declare_gives_every_seen_pair_its_planted_truth_in_every_cell(suite_name: str):
    from benchmarks.quality.planted_suites import planted_gen_suite, planted_suite

    build = planted_suite if suite_name == "planted" else planted_gen_suite
    plain, suite = build(), build(declare=True)
    assert plain.declared == () and suite.name == suite_name and suite.base == plain.base
    data = suite.base["tasks"][0]["data"]  # the universe the tasks were drawn from, not PlantedConfig's defaults
    world = planted_universe(PlantedConfig(**{k: v for k, v in data.items() if k in PlantedConfig.model_fields}))
    row = {t["name"]: t["data"]["task"] for t in suite.base["tasks"]}
    assert [(a, b) for a, b, _ in suite.declared] == list(combinations(suite.seen_tasks, 2))
    for a, b, w in suite.declared:
        assert w == (1.0 if set(world.skills_of(row[a])) & set(world.skills_of(row[b])) else 0.0)
    assert {w for *_, w in suite.declared} == {0.0, 1.0}
    for router in ("poly", "graph-strong"):
        spec = Spec.model_validate(suite.cell_spec(router, 1e-2, 0))
        assert len(spec.relations.declared) == len(suite.declared)


def test_generative_cells_score_exact_match_as_their_accuracy():
    from benchmarks.quality.summary import mean_accuracy

    assert mean_accuracy({"test": {"mean": {"exact_match": 0.25, "token_f1": 0.5}}}, "test") == 0.25
    assert mean_accuracy({"test": {"mean": {"accuracy": 0.75, "exact_match": 0.25}}}, "test") == 0.75  # choices
    assert mean_accuracy({"test": {"mean": {}}}, "test") is None and mean_accuracy(None, "test") is None
