"""benchmarks/quality/compositional.py: the held-out table and the declared targets, computed from a record."""

from __future__ import annotations

from benchmarks.quality.compositional import ARMS, CANDIDATES, METHODS, compositional_block
from benchmarks.quality.new_task_methods import chosen_graph


def record(shift: dict[str, float], seen_shift: float = 0.0, val: dict[str, float] | None = None) -> dict:
    seeds = {}
    for seed in range(3):
        noise = 0.01 * seed
        held = {m: 0.30 + shift.get(m, 0.0) + noise for m in METHODS}
        seen = {arm: 0.5 + noise + (seen_shift if arm == "graph" else 0.0) for arm in ARMS}
        chosen = {c: (val or {}).get(c, 0.3) + noise for c in CANDIDATES}
        seeds[str(seed)] = {"held_out": held, "held_out_val": chosen, "seen_val": seen}
    return {"steps": 10, "methods": list(METHODS), "seeds": seeds, "command": "python -m ..."}


def test_every_target_met_when_the_graph_leads_by_a_margin() -> None:
    lead = {m: -0.1 for m in METHODS if m != "graph"}
    text = compositional_block(record(lead), "x")
    assert "→ **graph**" in text and "| **graph** | 0 | 0.310 ± 0.010 |" in text  # a validation tie: the first
    assert "| mhr-z-16 | 16 | 0.210 ± 0.010 | +0.100 [+0.100, +0.100] | win |" in text
    assert text.count(": met") == 8 and "missed" not in text
    assert "(on 3 of the 6 seeds declared)" in text
    assert "graph-free − poly-neighbour +0.000 [+0.000, +0.000] (tie)" in text  # what the GNN adds to relations


def test_the_configuration_judged_is_chosen_on_validation_with_its_own_ablation() -> None:
    data = record({"graph-side": 0.05}, val={"graph": 0.2, "graph-side": 0.4})
    assert chosen_graph(data, CANDIDATES) == "graph-side"
    text = compositional_block(data, "x")
    assert "| graph-side − method [95 % CI] |" in text and "the no-edge MLP (mlp-side)" in text
    assert "graph-side vs graph-free" in text
    worse = compositional_block(record({"mlp": 0.05}), "x")
    assert "the no-edge MLP is better: the edges cost held-out accuracy here" in worse


def test_ties_are_missed_targets_and_the_mlp_tie_says_the_features_carry_it() -> None:
    text = compositional_block(record({"graph": 0.0}, seen_shift=-0.05), "x")
    assert "graph > arrow: missed" in text and "graph ≥ mhr-z-16 + 0.05: missed" in text
    assert "the features, not the edges, carry" in text
    assert "the features cost nothing on seen tasks (graph vs graph-free): missed" in text
