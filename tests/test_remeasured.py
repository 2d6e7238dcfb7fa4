"""The re-measurement's comparison: verdicts computed on both sides by one rule, a change flagged only when the
verdict moved."""

from __future__ import annotations

from benchmarks.remeasured import PUBLISHED, change_rows, changes_table, today


def _record(test_by_router: dict[str, list[float]], alloc_by_router: dict[str, list[float]] | None = None) -> dict:
    rows = []
    for name, values in test_by_router.items():
        alloc = (alloc_by_router or {}).get(name)
        rows.append(
            {
                "router": name,
                "lr": 0.003,
                "seeds": list(range(len(values))),
                "test": {"values": values},
                "allocation": {"precision": {"values": alloc}} if alloc else None,
            }
        )
    return {"routers": rows}


def test_paired_by_seed_and_missing_routers_give_none():
    record = _record({"graph": [0.8, 0.9, 0.85], "poly": [0.7, 0.8, 0.75]})
    mean, low, high, n = today(record, "graph", "poly", "test")
    assert n == 3 and abs(mean - 0.1) < 1e-12 and low <= mean <= high
    assert today(record, "graph", "mhr", "test") is None


def test_a_verdict_that_moves_is_flagged_and_one_that_holds_is_not():
    # published graph − poly on real-few 256 was a win; a noisy tie now is a change
    tie = _record({"graph": [0.80, 0.90, 0.70], "poly": [0.85, 0.80, 0.75], "mhr": [0.8, 0.9, 0.7]})
    rows = {(r["suite"], r["comparison"], r["metric"]): r for r in change_rows({"real-few-256": tie})}
    moved = rows[("real-few-256", "graph − poly", "test")]
    assert moved["published_verdict"] == "win" and moved["now_verdict"] == "tie" and moved["changed"]
    held = rows[("real-few-256", "graph − mhr", "test")]  # published a tie; identical figures now: still a tie
    assert held["published_verdict"] == "tie" and held["now_verdict"] == "tie" and not held["changed"]
    absent = rows[("planted-gen-declared", "graph − poly", "test")]  # suite not measured: no verdict, no change
    assert absent["now_verdict"] is None and not absent["changed"]
    table = changes_table({"real-few-256": tie})
    assert len(table) == 2 + len(PUBLISHED) and "**win → tie**" in "\n".join(table)
    assert "not re-measured" in "\n".join(table)  # planted-gen-declared: no record given
