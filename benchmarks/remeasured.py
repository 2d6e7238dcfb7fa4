"""What the re-measurement under the three-seed rate selection changed: published verdicts beside today's records.

The verdicts of real-few at 256 rows (docs/graph-prior.md §6) and of planted-gen with every pair declared (§12) were
published before results were records: each router's rate was chosen on seed 0's validation alone (real-few: the
rate every router had chosen at 128 rows, not re-selected; planted-gen: one rate for all), and the graph router
trained its router at 1e-2. :data:`PUBLISHED` holds those figures as the docs printed them, transcribed once and
labelled so, because their run folders were never kept. Today's figures come from the records
``benchmarks/results/quality-real-few-256.json`` and ``quality-planted-gen-declared.json`` (rates chosen on the
mean over seeds 0–2, the graph router at its own rate 3e-3), and today's verdicts are computed here from the figures by the
rule the published ones used (a paired 95 % interval that excludes 0 is a win or a loss, else a tie); a published
verdict is kept as printed, since its interval was rounded (``[+0.000, +0.019]`` was a win).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.verdicts import interval, paired, pm, verdict


@dataclass(frozen=True)
class Published:
    """One paired comparison as the docs published it (test accuracy or allocation precision, ``a − b``)."""

    suite: str
    a: str
    b: str
    metric: str  # "test" | "allocation"
    mean: float
    low: float
    high: float
    where: str  # the section that printed it
    said: str  # the verdict it printed (its interval is rounded to 3 digits: +0.000 may have been a win)


PUBLISHED: tuple[Published, ...] = (
    Published("real-few-256", "graph", "poly", "test", 0.010, 0.000, 0.019, "§6", "win"),
    Published("real-few-256", "graph", "mhr", "test", 0.007, -0.002, 0.016, "§6", "tie"),
    Published("real-few-256", "graph", "shared", "test", 0.011, -0.000, 0.022, "§6", "tie"),
    Published("real-few-256", "graph", "private", "test", 0.030, -0.056, 0.115, "§6", "tie"),
    Published("planted-gen-declared", "graph", "poly", "test", -0.002, -0.178, 0.174, "§12", "tie"),
    Published("planted-gen-declared", "graph", "poly", "allocation", -0.004, -0.061, 0.053, "§12", "tie"),
    Published("planted-gen-declared", "graph-contrast", "poly", "test", -0.033, -0.231, 0.166, "§12", "tie"),
    Published("planted-gen-declared", "graph-contrast", "poly", "allocation", 0.040, 0.025, 0.055, "§12", "win"),
    Published("planted-few", "graph", "poly", "allocation", 0.044, 0.013, 0.075, "§4", "win"),
    Published("planted-few", "graph-warm", "poly", "allocation", 0.140, 0.109, 0.172, "§4", "win"),
    Published("planted-few", "graph-contrast", "poly", "allocation", 0.170, 0.144, 0.196, "§4", "win"),
)
METRIC_WORDS = {"test": "test accuracy", "allocation": "allocation precision"}
RECORDS = {
    "real-few-256": "quality-real-few-256",
    "planted-gen-declared": "quality-planted-gen-declared",
    "planted-few": "quality-planted-few",
}


def by_seed(router: Mapping[str, Any], metric: str) -> dict[int, float | None]:
    """A router row's per-seed figure of ``metric`` (``test``: test accuracy; ``allocation``: its precision)."""
    block = router.get("test") if metric == "test" else (router.get("allocation") or {}).get("precision")
    values = (block or {}).get("values") or []
    return dict(zip(router.get("seeds") or [], values))


def today(record: Mapping[str, Any], a: str, b: str, metric: str) -> tuple[float, float, float, int] | None:
    """``a − b`` paired by seed in a record, or None where a router is missing from it."""
    rows = {r["router"]: r for r in record["routers"]}
    if a not in rows or b not in rows:
        return None
    xa, xb = by_seed(rows[a], metric), by_seed(rows[b], metric)
    seeds = sorted(set(xa) & set(xb))
    return paired([xa[s] for s in seeds], [xb[s] for s in seeds])


def change_rows(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per published comparison: then and now, each with its verdict, and whether the verdict changed."""
    rows = []
    for p in PUBLISHED:
        now = today(records[p.suite], p.a, p.b, p.metric) if p.suite in records else None
        before = p.said
        after = None if now is None else verdict(now[1], now[2])
        rows.append(
            {
                "suite": p.suite,
                "comparison": f"{p.a} − {p.b}",
                "metric": p.metric,
                "published": interval(p.mean, p.low, p.high),
                "published_verdict": before,
                "where": p.where,
                "now": "–" if now is None else f"{interval(now[0], now[1], now[2])} ({now[3]} seeds)",
                "now_verdict": after,
                "changed": after is not None and after != before,
            }
        )
    return rows


def changes_table(records: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| suite | comparison | metric | published (rate on seed 0) | now (rate on seeds 0–2) | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in change_rows(records):
        if row["now_verdict"] is None:
            moved = "not re-measured"
        elif row["changed"]:
            moved = f"**{row['published_verdict']} → {row['now_verdict']}**"
        else:
            moved = f"{row['now_verdict']} (unchanged)"
        lines.append(
            f"| {row['suite']} | {row['comparison']} | {METRIC_WORDS[row['metric']]} | {row['published']} "
            f"({row['published_verdict']}; {row['where']}) | {row['now']} ({row['now_verdict'] or '–'}) | {moved} |"
        )
    return lines


def router_summary(record: Mapping[str, Any], metrics: Sequence[str] = ("test", "allocation")) -> list[str]:
    """Each router's chosen rate and ``mean ± std`` of each metric in a record."""
    head = "| router | rate chosen | " + " | ".join(METRIC_WORDS[m] for m in metrics) + " |"
    lines = [head, "|---|---|" + "---|" * len(metrics)]
    for r in record["routers"]:
        cells = [pm(list(by_seed(r, m).values())) for m in metrics]
        lines.append(f"| {r['router']} | {r['lr']} | " + " | ".join(cells) + " |")
    return lines
