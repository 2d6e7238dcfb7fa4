"""The pre-declared quality targets of issue 7, checked against the bench's figures (reported either way).

Planted suite:

* the graph router's allocation precision ≥ 0.95 (mean over seeds), beside random routing;
* its learned relations' AUROC against the ground truth ≥ 0.95 (mean over seeds), beside random R
  and R from the cosine of per-task adapter gradients;
* zero-shot graph routing of the held-out tasks ≥ the MHR-μ baseline + 5 points (mean over seeds,
  one line per shot count; the baseline is the first of :data:`MU_BASELINES` the run has: MHR-μ
  adaptation on the same shots — it tunes the averaged adapter, the zero-shot graph takes no step).

and issue 15's, beside the oracle-relearn ceiling the suite measures (:mod:`benchmarks.quality.oracle`):

* graph allocation ≥ :data:`CEILING_ALLOCATION` (the ceiling's neighbourhood) and > poly's, paired interval above 0;
* learned-R relation AUROC (graph and each graph variant) ≥ max(poly, mhr routing-cosine AUROC), means over seeds.

Planted-few suite (issue 15's first regime): graph (and each graph variant) > max(poly, mhr, shared, private) on
the test mean, each paired interval above 0.

Compositional transfer (issue 15; planted and planted-few, whose held-out tasks are made of seen skills), against
MHR-z (``mhr`` adapted in ``routing`` mode: the skills frozen, routing learned on the shots):

* graph zero-shot (routed from the declared relations, no step) ≥ MHR-z at the fewest shots: the paired mean ≥ 0;
* graph few-shot routing > MHR-z at every shot count: the paired 95 % interval above 0.

Real suite:

* graph ≥ max(poly, mhr) and graph ≥ shared on the overall test mean (means over seeds);
* no family's graph mean more than 1 point below ``private``'s;
* the learned relations' AUROC against the families ≥ 0.85, with no declared relations.

Both suites, the seed papers' claims: MHR > Poly at equal adapter parameters (a *win*: the paired
95 % interval above 0), and MHR-μ helps few-shot (``mhr`` adapted by ``mhr-mu`` beats ``full``
adaptation of the same runs: a win, one line per shot count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.quality.stats import WIN, paired_difference
from benchmarks.quality.summary import adapt_accuracy, adapt_pair, by_seed

ALLOCATION_MIN = 0.95
CEILING_ALLOCATION = 0.80  # issue 15: the oracle-relearn ceiling measured 0.82 ± 0.08 on the default universe
FEW_BASELINES = ("poly", "mhr", "shared", "private")
PLANTED_AUROC_MIN = 0.95
REAL_AUROC_MIN = 0.85
ZERO_SHOT_MARGIN = 0.05
FAMILY_SLACK = 0.01
# The target's "mhr-mu": MHR-μ adaptation (the average of the skills, tuned on the same shots) of the first of these
# runs present. Only the graph router routes zero-shot; the baseline takes adaptation steps the graph does not.
MU_BASELINES = (("mhr", "mhr-mu"), ("mhr-mu", "mhr-mu"), ("poly", "mhr-mu"))
FEW_SHOT_REFERENCE = ("mhr", "full")  # what MHR-μ adaptation must beat
MHR_Z = ("mhr", "routing")  # the compositional-transfer baseline: routing learned on the shots, skills frozen


def target(name: str, figure: float | None, rule: str, met: bool | None, detail: str = "") -> dict[str, Any]:
    """One line of the targets table (``met`` None: not measured)."""
    return {"name": name, "figure": figure, "rule": rule, "met": met, "detail": detail}


def _mean(rows: Mapping[str, Mapping[str, Any]], router: str, *keys: str) -> float | None:
    block: Any = rows.get(router)
    for key in keys:
        block = block.get(key) if isinstance(block, Mapping) else None
    return block.get("mean") if isinstance(block, Mapping) else None


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _at_least(name: str, figure: float | None, limit: float, detail: str) -> dict[str, Any]:
    return target(name, figure, f"mean ≥ {limit:g}", None if figure is None else figure >= limit, detail)


def _graphs(rows: Mapping[str, Any]) -> list[str]:
    return [r for r in rows if r == "graph" or r.startswith("graph-")]


def allocation_targets(
    rows: Mapping[str, Mapping[str, Any]], ceiling: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Issue 15: graph allocation near the measured ceiling and above poly; learned R ≥ the routing cosines."""
    out = []
    top = _fmt(_mean(ceiling or {}, "precision")) if ceiling else "not measured"
    for g in _graphs(rows):
        out.append(
            _at_least(
                f"{g} allocation precision ≥ {CEILING_ALLOCATION:g} (ceiling's neighbourhood)",
                _mean(rows, g, "allocation", "precision"),
                CEILING_ALLOCATION,
                f"oracle-relearn ceiling {top}",
            )
        )
        if "poly" in rows:
            diff = paired_difference(
                g, by_seed(rows[g], "allocation", "precision"), "poly", by_seed(rows["poly"], "allocation", "precision")
            )
            out.append(
                target(
                    f"{g} allocation precision > poly",
                    diff.mean,
                    "paired 95 % CI > 0",
                    None if diff.low is None else diff.verdict == WIN,
                    f"[{_fmt(diff.low)}, {_fmt(diff.high)}]: {diff.verdict}",
                )
            )
        cosines = {r: _mean(rows, r, "relations", "routing_cosine") for r in ("poly", "mhr") if r in rows}
        best = max((v for v in cosines.values() if v is not None), default=None)
        learned = _mean(rows, g, "relations", "learned")
        out.append(
            target(
                f"{g} learned-R relation AUROC ≥ max(poly, mhr routing-cosine AUROC)",
                learned,
                f"mean ≥ {_fmt(best)}",
                None if learned is None or best is None else learned >= best,
                "; ".join(f"{r} routing-cosine {_fmt(v)}" for r, v in cosines.items()),
            )
        )
    return out


def few_targets(rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Planted-few: every graph row > max(poly, mhr, shared, private) on test accuracy, each paired CI above 0."""
    out = []
    others = [o for o in FEW_BASELINES if o in rows]
    for g in _graphs(rows):
        name = f"{g} > max({', '.join(FEW_BASELINES)}) (test mean, every paired CI > 0)"
        if not others:
            out.append(target(name, None, "paired 95 % CI > 0", None, "no baseline ran"))
            continue
        pairs = [paired_difference(g, by_seed(rows[g], "test"), o, by_seed(rows[o], "test")) for o in others]
        worst = min(pairs, key=lambda p: float("inf") if p.mean is None else p.mean)
        met = None if any(p.low is None for p in pairs) else all(p.verdict == WIN for p in pairs)
        out.append(
            target(
                name,
                worst.mean,
                "paired 95 % CI > 0",
                met,
                "; ".join(f"− {p.b}: {_fmt(p.mean)} [{_fmt(p.low)}, {_fmt(p.high)}] {p.verdict}" for p in pairs),
            )
        )
    return out


def planted_targets(
    rows: Mapping[str, Mapping[str, Any]],
    adapt: Sequence[Mapping[str, Any]],
    shots: Sequence[int],
    ceiling: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    out = []
    per_seed = (
        [None if v is None else round(v, 3) for v in by_seed(rows["graph"], "allocation", "precision").values()]
        if "graph" in rows
        else []
    )
    detail = f"random routing {_fmt(_mean(rows, 'graph', 'allocation', 'random'))}; per seed {per_seed}"
    out.append(
        _at_least(
            "graph allocation precision (mean over seeds)",
            _mean(rows, "graph", "allocation", "precision"),
            ALLOCATION_MIN,
            detail,
        )
    )

    def rel(kind: str) -> str:
        return _fmt(_mean(rows, "graph", "relations", kind))

    out.append(
        _at_least(
            "graph relation AUROC vs planted truth (mean over seeds)",
            _mean(rows, "graph", "relations", "learned"),
            PLANTED_AUROC_MIN,
            f"random R {rel('random')}, gradient-cosine R {rel('gradient_cosine')}, "
            f"routing-cosine {rel('routing_cosine')}",
        )
    )
    out += zero_shot_targets(adapt, shots)
    out += allocation_targets(rows, ceiling)
    return out


def zero_shot_targets(adapt: Sequence[Mapping[str, Any]], shots: Sequence[int]) -> list[dict[str, Any]]:
    table = adapt_accuracy(adapt)
    baseline = next((b for b in MU_BASELINES if any((b[0], b[1], n) in table for n in shots)), None)
    out = []
    for n in shots:
        name = f"zero-shot graph − MHR-μ on held-out tasks, head fit on {n} shots"
        if baseline is None or ("graph", "zero-shot", n) not in table:
            out.append(
                target(name, None, f"mean ≥ {ZERO_SHOT_MARGIN:g}", None, "graph zero-shot or the baseline not run")
            )
            continue
        pair = adapt_pair(adapt, ("graph", "zero-shot"), baseline, n)
        figure = None if pair is None else pair["mean"]
        detail = (
            f"baseline {baseline[0]}/{baseline[1]}; paired 95 % CI "
            f"[{_fmt(pair and pair['ci_low'])}, {_fmt(pair and pair['ci_high'])}]: "
            f"{pair['verdict'] if pair else 'not measured'} against the baseline"
        )
        out.append(
            target(
                name,
                figure,
                f"mean ≥ {ZERO_SHOT_MARGIN:g}",
                None if figure is None else figure >= ZERO_SHOT_MARGIN,
                detail,
            )
        )
    return out


def transfer_targets(adapt: Sequence[Mapping[str, Any]], shots: Sequence[int]) -> list[dict[str, Any]]:
    """Compositional transfer: each graph router's zero-shot (fewest shots) and routing (every count) vs MHR-z."""
    table = adapt_accuracy(adapt)
    graphs = sorted({router for router, _, _ in table if router == "graph" or router.startswith("graph-")})
    out = []
    for g in graphs:
        lines = [("zero-shot", n, "≥", "paired mean ≥ 0") for n in sorted(shots)[:1]]
        lines += [("routing", n, ">", "paired 95 % CI > 0") for n in sorted(shots)]
        for mode, n, sign, rule in lines:
            name = f"{g} {mode} {sign} MHR-z ({MHR_Z[0]}/{MHR_Z[1]}), held-out tasks, {n} shots"
            pair = adapt_pair(adapt, (g, mode), MHR_Z, n)
            if pair is None or pair["ci_low"] is None:
                out.append(target(name, None, rule, None, f"{g}/{mode} or MHR-z not run at {n} shots"))
                continue
            met = pair["verdict"] == WIN if sign == ">" else pair["mean"] >= 0
            detail = f"[{_fmt(pair['ci_low'])}, {_fmt(pair['ci_high'])}] {pair['verdict']}, {len(pair['seeds'])} seeds"
            out.append(target(name, pair["mean"], rule, met, detail))
    return out


def real_targets(rows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    graph = _mean(rows, "graph", "test")
    for others in (("poly", "mhr"), ("shared",)):
        means = [_mean(rows, o, "test") for o in others]
        name = f"graph ≥ {'max(' + ', '.join(others) + ')' if len(others) > 1 else others[0]} (test mean)"
        if graph is None or any(m is None for m in means):
            out.append(target(name, None, "≥ 0", None, "not every router ran"))
            continue
        best = max(m for m in means if m is not None)
        pairs = [
            paired_difference("graph", by_seed(rows["graph"], "test"), o, by_seed(rows[o], "test")) for o in others
        ]
        detail = "; ".join(f"graph − {p.b}: {_fmt(p.mean)} [{_fmt(p.low)}, {_fmt(p.high)}] {p.verdict}" for p in pairs)
        out.append(target(name, graph - best, "≥ 0", graph - best >= 0, detail))
    name = f"no family: graph more than {FAMILY_SLACK:g} below private"
    fams_g, fams_p = (rows.get(r, {}).get("families", {}) for r in ("graph", "private"))
    gaps = {
        f: fams_g[f]["mean"] - fams_p[f]["mean"]
        for f in fams_g
        if f in fams_p and fams_g[f]["mean"] is not None and fams_p[f]["mean"] is not None
    }
    if gaps:
        worst = min(gaps.values())
        out.append(
            target(
                name,
                worst,
                f"≥ −{FAMILY_SLACK:g}",
                worst >= -FAMILY_SLACK,
                "; ".join(f"{f} {g:+.3f}" for f, g in sorted(gaps.items())),
            )
        )
    else:
        out.append(target(name, None, f"≥ −{FAMILY_SLACK:g}", None, "no family figures for graph and private"))
    out.append(
        _at_least(
            "graph relation AUROC vs families, none declared (mean over seeds)",
            _mean(rows, "graph", "relations", "learned"),
            REAL_AUROC_MIN,
            f"random R {_fmt(_mean(rows, 'graph', 'relations', 'random'))}, gradient-cosine R "
            f"{_fmt(_mean(rows, 'graph', 'relations', 'gradient_cosine'))}",
        )
    )
    return out


def paper_targets(
    rows: Mapping[str, Mapping[str, Any]], adapt: Sequence[Mapping[str, Any]], shots: Sequence[int]
) -> list[dict[str, Any]]:
    out = []
    if "mhr" in rows and "poly" in rows:
        diff = paired_difference("mhr", by_seed(rows["mhr"], "test"), "poly", by_seed(rows["poly"], "test"))
        out.append(
            target(
                "seed paper: MHR > Poly at equal adapter parameters (test mean)",
                diff.mean,
                "paired 95 % CI > 0",
                None if diff.low is None else diff.verdict == WIN,
                f"[{_fmt(diff.low)}, {_fmt(diff.high)}] over seeds {list(diff.seeds)}: {diff.verdict}",
            )
        )
    else:
        out.append(
            target(
                "seed paper: MHR > Poly at equal adapter parameters (test mean)",
                None,
                "paired 95 % CI > 0",
                None,
                "mhr or poly not run",
            )
        )
    for n in shots:
        pair = adapt_pair(adapt, ("mhr", "mhr-mu"), FEW_SHOT_REFERENCE, n)
        name = f"seed paper: MHR-μ helps few-shot ({n} shots: mhr/mhr-mu − mhr/full)"
        if pair is None:
            out.append(target(name, None, "paired 95 % CI > 0", None, "mhr-mu or full adaptation not run"))
            continue
        out.append(
            target(
                name,
                pair["mean"],
                "paired 95 % CI > 0",
                None if pair["ci_low"] is None else pair["verdict"] == WIN,
                f"[{_fmt(pair['ci_low'])}, {_fmt(pair['ci_high'])}]: {pair['verdict']}",
            )
        )
    return out
