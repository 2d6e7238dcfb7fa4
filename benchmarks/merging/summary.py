"""The figures of ``python -m benchmarks merge``, as pure functions over the cells' records.

For one merge of the task subset S (mode m, seed k), with ``single_t`` the test accuracy of task t's own
single-task run (same mode and seed) and ``heads_t`` its head on the bare base (ΔW = 0):

* absolute accuracy ``mean_{t∈S} merged_t``;
* normalised accuracy ``mean_{t∈S} merged_t / single_t`` (the L-LoRA paper's figure);
* normalised gain ``(mean merged − mean heads) / (mean single − mean heads)``: the share of what the adapters
  added that the merge keeps (1: all of it, 0: no better than the heads alone).

A (mode, method, T, seed) figure is the mean over the T-subsets; the tables give mean ± sample std over seeds,
and differences are paired by seed with Student-t 95 % intervals (:mod:`benchmarks.quality.stats`). The
"trained together" rows are normalised by the single-task **LoRA** runs of the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from benchmarks.merging.suites import MODE_NAMES, MODES, MergeBenchError, MergeSuite
from benchmarks.quality.stats import paired_difference
from taskgraph.metrics import mean_std

Scores = dict[str, float]
PRIMARY = "task-arithmetic"  # the seed paper's method: the L-LoRA target is judged on it
TIME_TARGET_S = 90 * 60


def merge_figures(
    test: Mapping[str, float], single: Mapping[str, float], heads: Mapping[str, float]
) -> dict[str, float]:
    """``{"absolute", "normalised", "gain"}`` of one merge (see the module docstring)."""
    tasks = list(test)
    merged = sum(test[t] for t in tasks) / len(tasks)
    alone = sum(single[t] for t in tasks) / len(tasks)
    bare = sum(heads[t] for t in tasks) / len(tasks)
    gain = (merged - bare) / (alone - bare) if alone != bare else float("nan")
    return {"absolute": merged, "normalised": sum(test[t] / single[t] for t in tasks) / len(tasks), "gain": gain}


def check_same_rows(record: Mapping[str, Any], rows_of: Mapping[tuple[str, int, str], int | None]) -> None:
    """A merge's test accuracy is divided by the single-task run's: both must count the same test rows.

    Raises:
        MergeBenchError: a merge cell scored another number of test rows than its task's single-task run (a cell
            written by an older bench that capped the test split: delete the ``merge`` folder to rescore).
    """
    for task, n in record.get("test_rows", {}).items():
        want = rows_of.get((record["mode"], record["seed"], task))
        if want is not None and int(n) != int(want):
            raise MergeBenchError(
                f"the {record['mode']} seed {record['seed']} merge {record['label']!r} scored {n} test rows of "
                f"{task!r}, its single-task run {want}: normalised accuracy needs the same rows; delete that "
                "merge folder and rerun (its cells rescore the whole test split)"
            )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def summarise(
    suite: MergeSuite,
    seeds: int,
    chosen: Mapping[str, float],
    single: Mapping[tuple[str, float, int, str], Mapping[str, Any]],
    heads: Mapping[tuple[str, int], Scores],
    merges: Sequence[Mapping[str, Any]],
    together: Sequence[Mapping[str, Any]],
    subsets: Mapping[int, Sequence[Sequence[str]]],
) -> dict[str, Any]:
    """The result dict: single-task and heads-only accuracy, the merge table, paired differences, the trained
    together rows, the targets."""
    acc = {
        (mode, seed): {t: float(single[(mode, lr, seed, t)]["test"]["tasks"][t]["accuracy"]) for t in suite.tasks}
        for mode, lr in chosen.items()
        for seed in range(seeds)
    }
    rows_of = {
        (mode, seed, t): single[(mode, lr, seed, t)]["test"]["tasks"][t].get("n")
        for mode, lr in chosen.items()
        for seed in range(seeds)
        for t in suite.tasks
    }
    for record in merges:
        check_same_rows(record, rows_of)
    by_cell: dict[tuple[str, str, int, int], list[dict[str, float]]] = {}
    for record in merges:
        key = (record["mode"], record["label"], record["size"], record["seed"])
        by_cell.setdefault(key, []).append(
            merge_figures(
                record["test"], acc[(record["mode"], record["seed"])], heads[(record["mode"], record["seed"])]
            )
        )
    per_seed = {
        key: {f: _mean([c[f] for c in cells]) for f in ("absolute", "normalised", "gain")}
        for key, cells in by_cell.items()
    }
    labels = list(dict.fromkeys(r["label"] for r in merges))
    sizes = sorted(subsets)
    rows = []
    for size in sizes:
        for label in labels:
            row: dict[str, Any] = {"size": size, "method": label}
            for mode in MODES:
                for figure in ("absolute", "normalised", "gain"):
                    values = [
                        per_seed[(mode, label, size, s)][figure]
                        for s in range(seeds)
                        if (mode, label, size, s) in per_seed
                    ]
                    row[f"{mode}_{figure}"] = mean_std(values)
            rows.append(row)
    paired = []
    for size in sizes:
        for label in labels:
            a = {s: per_seed.get(("llora", label, size, s), {}).get("normalised") for s in range(seeds)}
            b = {s: per_seed.get(("lora", label, size, s), {}).get("normalised") for s in range(seeds)}
            paired.append(
                {
                    "size": size,
                    "method": label,
                    "what": "L-LoRA − LoRA normalised accuracy",
                    **paired_difference("llora", a, "lora", b).as_dict(),
                }
            )
    subspace = []
    for size in sizes:
        for mode in MODES:
            for label in ("subspace", "subspace-ties"):
                if label not in labels or "ta-svd" not in labels:
                    continue
                a = {s: per_seed.get((mode, label, size, s), {}).get("normalised") for s in range(seeds)}
                b = {s: per_seed.get((mode, "ta-svd", size, s), {}).get("normalised") for s in range(seeds)}
                subspace.append(
                    {"size": size, "mode": mode, "method": label, **paired_difference(label, a, "ta-svd", b).as_dict()}
                )
    singles = {mode: mean_std([_mean(list(acc[(mode, s)].values())) for s in range(seeds)]) for mode in MODES}
    bare = {mode: mean_std([_mean(list(heads[(mode, s)].values())) for s in range(seeds)]) for mode in MODES}
    per_task = {mode: {t: mean_std([acc[(mode, s)][t] for s in range(seeds)]) for t in suite.tasks} for mode in MODES}
    together_rows = _together(together, merges, acc, heads, seeds, sizes)
    result = {
        "bench": "merge",
        **suite.describe(),
        "seeds": seeds,
        "chosen_lr": dict(chosen),
        "sizes": sizes,
        "subsets": {str(k): [list(s) for s in v] for k, v in subsets.items()},
        "single": {m: {"mean": singles[m], "heads_only": bare[m], "tasks": per_task[m]} for m in MODES},
        "rows": rows,
        "paired": paired,
        "subspace_vs_svd": subspace,
        "together": together_rows,
        "chosen_values": _chosen_values(merges),
    }
    result["targets"] = targets(result)
    return result


def _together(
    together: Sequence[Mapping[str, Any]],
    merges: Sequence[Mapping[str, Any]],
    acc: Mapping[tuple[str, int], Scores],
    heads: Mapping[tuple[str, int], Scores],
    seeds: int,
    sizes: Sequence[int],
) -> list[dict[str, Any]]:
    """Per T (the first subset): each router trained together, and each merge of the same subset, normalised by
    the single-task LoRA runs."""
    rows = []
    for size in sizes:
        for record_router in dict.fromkeys(r["router"] for r in together):
            cells = [r for r in together if r["router"] == record_router and r["size"] == size and not r.get("error")]
            figures = [
                merge_figures(
                    {t: r["test"]["tasks"][t]["accuracy"] for t in r["tasks"]},
                    acc[("lora", r["seed"])],
                    heads[("lora", r["seed"])],
                )
                for r in cells
            ]
            rows.append(
                {
                    "size": size,
                    "kind": "trained together",
                    "name": record_router,
                    **{f: mean_std([x[f] for x in figures]) for f in ("absolute", "normalised", "gain")},
                    "seeds": len(cells),
                }
            )
        for mode in MODES:
            for label in dict.fromkeys(r["label"] for r in merges):
                cells = [
                    r
                    for r in merges
                    if r["mode"] == mode and r["label"] == label and r["size"] == size and r["subset"] == 0
                ]
                figures = [
                    merge_figures(r["test"], acc[("lora", r["seed"])], heads[("lora", r["seed"])]) for r in cells
                ]
                rows.append(
                    {
                        "size": size,
                        "kind": f"merged {MODE_NAMES[mode]}",
                        "name": label,
                        **{f: mean_std([x[f] for x in figures]) for f in ("absolute", "normalised", "gain")},
                        "seeds": len(cells),
                    }
                )
    return rows


def _chosen_values(merges: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Every hyper-parameter value chosen on validation, per (mode, method): how the grid was used."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in merges:
        for name, value in r["chosen"].items():
            out.setdefault(f"{r['mode']} {r['label']}", {}).setdefault(name, []).append(value)
    return out


def targets(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pre-declared targets, each ``{"target", "measured", "verdict"}``."""
    out = []
    primary = {p["size"]: p for p in result["paired"] if p["method"] == PRIMARY}
    big = [s for s in (4, 8) if s in primary] or sorted(primary)[-1:]
    cells = [primary[s] for s in big]
    given_up = None
    lora, llora = result["single"]["lora"]["mean"][0], result["single"]["llora"]["mean"][0]
    if lora is not None and llora is not None:
        given_up = lora - llora
    measured = "; ".join(
        f"T = {p['size']}: {_fmt(p['mean'])} [{_fmt(p['ci_low'])}, {_fmt(p['ci_high'])}]" for p in cells
    )
    met = bool(cells) and all(p["ci_low"] is not None and p["ci_low"] > 0 for p in cells)
    out.append(
        {
            "target": f"L-LoRA normalised accuracy above LoRA's by more than the interval at T = "
            f"{' and '.join(str(s) for s in big)} ({PRIMARY}; seed paper 0.835 vs 0.672)",
            "measured": measured
            + (f"; single-task accuracy L-LoRA gives up: {_fmt(given_up)}" if given_up is not None else ""),
            "verdict": "met" if met else "missed",
        }
    )
    rows = result["subspace_vs_svd"]
    plain = [r for r in rows if r["method"] == "subspace"]
    if plain:
        losses = [r for r in plain if r["ci_high"] is not None and r["ci_high"] < 0]
        mean = _mean([r["mean"] for r in plain if r["mean"] is not None])
        measured = "; ".join(
            f"{MODE_NAMES[r['mode']]} T = {r['size']}: {_fmt(r['mean'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            for r in plain
        )
        out.append(
            {
                "target": "rank-r shared-subspace merge ≥ merge-then-SVD at equal rank (normalised accuracy)",
                "measured": measured,
                "verdict": "met" if mean >= 0 and not losses else "missed",
            }
        )
    return out


def time_target(compute_s: float, wall_s: float) -> dict[str, Any]:
    """Judged on the cells' recorded compute (a resumed suite's wall clock covers only what it ran)."""
    return {
        "target": "the whole suite ≤ 90 min on 2 cores",
        "measured": f"{compute_s / 60:.1f} min of cell compute ({wall_s / 60:.1f} min wall this invocation)",
        "verdict": "met" if compute_s <= TIME_TARGET_S else "missed",
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
