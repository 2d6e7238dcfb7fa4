"""Decisions declared before their runs (docs/graph-prior.md), taken by code from the committed records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmarks.verdicts import paired, verdict

SUITES = {"quality-planted": "planted", "quality-planted-few": "planted-few"}


def _row(record: Mapping[str, Any], router: str) -> Mapping[str, Any] | None:
    return next((r for r in record["routers"] if r["router"] == router), None)


def _by_seed(row: Mapping[str, Any], *keys: str) -> dict[int, float | None]:
    block: Any = row
    for key in keys:
        block = (block or {}).get(key)
    values = (block or {}).get("values") or []
    return dict(zip(row["seeds"], values))


def _paired(a: Mapping[str, Any], b: Mapping[str, Any], *keys: str) -> tuple[float, float, float, int]:
    left, right = _by_seed(a, *keys), _by_seed(b, *keys)
    seeds = sorted(set(left) & set(right))
    return paired([left[k] for k in seeds], [right[k] for k in seeds])


def graph_slow(records: Mapping[str, Mapping[str, Any]]) -> str:
    """The rule of docs/graph-prior.md §13: ``graph-slow`` (router rate 3e-3) replaces the graph router's rate if its
    test accuracy's and allocation precision's mean differences against ``graph``, paired by seed, are ≥ 0 on both
    planted and planted-few."""
    lines = ["| suite | seeds | test accuracy graph-slow − graph | allocation precision | rates chosen (graph, slow) |"]
    lines.append("|---|---:|---|---|---|")
    holds, missing = [], []
    for name, suite in SUITES.items():
        record = records.get(name)
        slow, graph = (None, None) if record is None else (_row(record, "graph-slow"), _row(record, "graph"))
        if slow is None or graph is None:
            missing.append(suite)
            lines.append(f"| {suite} | – | not measured yet | – | – |")
            continue
        acc = _paired(slow, graph, "test")
        alloc = _paired(slow, graph, "allocation", "precision")
        holds.append(acc[0] >= 0 and alloc[0] >= 0)
        lines.append(
            f"| {suite} | {acc[3]} | {acc[0]:+.3f} [{acc[1]:+.3f}, {acc[2]:+.3f}] ({verdict(acc[1], acc[2])}) | "
            f"{alloc[0]:+.3f} [{alloc[1]:+.3f}, {alloc[2]:+.3f}] ({verdict(alloc[1], alloc[2])}) | "
            f"{graph['lr']:g}, {slow['lr']:g} |"
        )
    if missing:
        outcome = f"not decided: {' and '.join(missing)} not measured yet; the graph router keeps 1e-2"
    elif all(holds):
        outcome = (
            "the rule holds: 3e-3 is the graph router's own rate since (the bench's ROUTER_LR, "
            "configs/routers/graph.yaml and the quality guard's record changed together)"
        )
    else:
        outcome = "the rule does not hold: graph-slow stays a variant, the graph router keeps 1e-2"
    return "\n".join([*lines, "", f"Decision (computed from the records): **{outcome}**.", ""])
