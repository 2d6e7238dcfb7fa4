"""benchmarks/quality/real_descriptions.py: the regime's tasks, relations and spec, and its verdicts from a record."""

from __future__ import annotations

from benchmarks.quality.real_descriptions import (
    ARMS,
    CANDIDATES,
    METHODS,
    TASKS,
    real_descriptions_block,
    relation,
    universe_spec,
)
from taskgraph.spec import spec_from_dict

HELD = ["nyt", "polarity", "speaker"]


def record(shift: dict[str, float], val: dict[str, float] | None = None, seeds: int = 6) -> dict:
    out = {}
    for seed in range(seeds):
        noise = 0.01 * seed
        held = {m: 0.60 + shift.get(m, 0.0) + noise for m in METHODS}
        per_task = {m: [v, v, v] for m, v in held.items()}
        chosen = {c: (val or {}).get(c, 0.5) + noise for c in CANDIDATES}
        out[str(seed)] = {
            "held_out": held,
            "held_out_val": chosen,
            "held_out_per_task": per_task,
            "seen_val": {arm: 0.7 + noise for arm in ARMS},
        }
    return {"steps": 10, "methods": list(METHODS), "seeds": out, "held_out_tasks": HELD, "command": "python -m ..."}


def test_relations_are_jaccard_of_family_and_domain() -> None:
    by = {t["name"]: t for t in TASKS}
    assert relation(by["amazon"], by["movies"]) == 1.0  # sentiment, reviews
    assert abs(relation(by["tweets"], by["amazon"]) - 1 / 3) < 1e-9  # sentiment only
    assert relation(by["news"], by["party"]) == 0.0
    assert [t["name"] for t in TASKS if t.get("held_out")] == HELD


def test_every_arm_spec_validates_and_trains_only_the_seen_tasks() -> None:
    for arm in ARMS:
        spec = spec_from_dict(universe_spec(arm, 0, 10))
        assert [t.name for t in spec.tasks] == ["tweets", "amazon", "movies", "subjectivity", "news", "party"]
        assert all(t.description for t in spec.tasks)
    everything = spec_from_dict(universe_spec("poly", 0, 10, held_out=True))
    assert [t.name for t in everything.tasks][-3:] == HELD


def test_targets_on_the_mean_and_the_chosen_configuration() -> None:
    lead = {m: -0.05 for m in METHODS if m != "graph"}
    text = real_descriptions_block(record(lead), "x")
    assert "→ **graph**" in text
    assert "| **graph** | 0 | 0.625 ± 0.019 | – | – | 0.625 ± 0.019 | 0.625 ± 0.019 | 0.625 ± 0.019 |" in text
    assert "- graph ≥ mhr-z-16 on the mean: met (0.625 vs 0.575; paired +0.050 [+0.050, +0.050], win)" in text
    assert "graph > arrow on the mean: met" in text and "graph > nearest-task on the mean: met" in text
    assert "seeds declared" not in text
    behind = real_descriptions_block(record({"mhr-z-16": 0.02}, val={"graph-side": 0.6}, seeds=3), "x")
    assert "→ **graph-side**" in behind
    assert "graph-side ≥ mhr-z-16 on the mean: missed" in behind and "(on 3 of the 6 seeds declared)" in behind
    assert "the no-edge MLP (mlp-side) against the graph" in behind


def test_record_merges_refuse_missing_lying_and_mismatched_records(tmp_path, capsys) -> None:
    import json

    from benchmarks.quality.real_descriptions import main

    a, b, lying = tmp_path / "a", tmp_path / "b", tmp_path / "lying"
    for folder in (a, b, lying):
        folder.mkdir()
    (a / "real-descriptions.json").write_text(json.dumps(record({})))
    (b / "real-descriptions.json").write_text(json.dumps({**record({}), "steps": 20}))
    (lying / "real-descriptions.json").write_text(json.dumps({"seeds": {}}))
    assert main(["--out", str(tmp_path / "absent"), "--record", "x"]) == 2
    assert "cannot read the regime record" in capsys.readouterr().err
    assert main(["--out", str(lying), "--record", "x"]) == 2
    assert "not a regime record (no steps, methods" in capsys.readouterr().err
    assert main(["--out", str(a), "--record", "x", "--merge", str(b)]) == 2
    assert "measured with other settings (steps, methods)" in capsys.readouterr().err
