"""The quality bench's figures, gathered from the cells' records (pure functions over JSON-ready dicts).

Inputs are the records :mod:`benchmarks.quality.cells` writes: a training cell's ``eval.json``
(``val`` / ``test``: :func:`taskgraph.eval.evaluate_run` results, read defensively with ``.get``:
``mean.accuracy``, ``tasks.<name>.accuracy``, ``allocation.precision`` / ``.random``,
``relations.auroc.{learned, routing_cosine, gradient_cosine, random}``) and an adaptation cell's
``cell.json`` (``test.accuracy``). Every figure is reported as mean ± std over seeds; comparisons
are paired by seed (:mod:`benchmarks.quality.stats`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from benchmarks.quality.stats import paired_difference, selection_score
from taskgraph.metrics import finite, mean_std

AUROC_KINDS = ("learned", "routing_cosine", "gradient_cosine", "random")
TrainKey = tuple[str, float, int]  # (router, lr, seed)


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None where any level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def number(value: Any) -> float | None:
    values = finite([value])
    return values[0] if values else None


def mean_accuracy(record: Mapping[str, Any] | None, split: str) -> float | None:
    """The mean-over-tasks accuracy of a training cell on ``split`` (None when it failed); generative tasks without
    choices (planted-gen) score exact match."""
    accuracy = _get(record, split, "mean", "accuracy")
    return number(accuracy if accuracy is not None else _get(record, split, "mean", "exact_match"))


def family_accuracy(record: Mapping[str, Any] | None, families: Mapping[str, str]) -> dict[str, float]:
    """``{family: mean test accuracy of its tasks}`` of one training cell (tasks with no family left out)."""
    tasks = _get(record, "test", "tasks") or {}
    grouped: dict[str, list[float]] = {}
    for name, row in tasks.items():
        acc = number(_get(row, "accuracy"))
        if name in families and acc is not None:
            grouped.setdefault(families[name], []).append(acc)
    return {family: sum(v) / len(v) for family, v in sorted(grouped.items())}


def spread(values: Iterable[float | None]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` over seeds (None values skipped)."""
    xs = list(values)
    mean, std = mean_std(xs)
    return {"mean": mean, "std": std, "n": len(finite(xs)), "values": xs}


def val_by_lr(
    train: Mapping[TrainKey, Mapping[str, Any]], router: str, seeds: Sequence[int]
) -> dict[float, dict[int, float | None]]:
    """``{lr: {seed: validation mean accuracy}}`` of ``router`` over the selection ``seeds`` (the lr selection's
    input, :func:`~benchmarks.quality.stats.select_lr`); a rate lists every selection seed, None where its cell
    is missing or failed."""
    lrs = sorted({lr for (r, lr, _) in train if r == router})
    return {lr: {k: mean_accuracy(train.get((router, lr, k)), "val") for k in seeds} for lr in lrs}


def selection_table(lrs: Mapping[float, Mapping[int, float | None]]) -> dict[str, dict[str, Any]]:
    """The lr selection as it goes into the record: ``{"<lr>": {"mean": score or None, "seeds": {"<k>": value}}}``."""
    return {
        f"{lr:g}": {"mean": selection_score(by_seed), "seeds": {str(k): v for k, v in by_seed.items()}}
        for lr, by_seed in lrs.items()
    }


def chosen_records(
    train: Mapping[TrainKey, Mapping[str, Any]], router: str, lr: float, seeds: Sequence[int]
) -> dict[int, Mapping[str, Any]]:
    """``{seed: record}`` of ``router`` at its chosen ``lr``, over the reported ``seeds`` that have a cell."""
    return {k: rec for (r, x, k), rec in sorted(train.items()) if r == router and x == lr and k in seeds}


def router_row(
    router: str,
    lr: float,
    records: Mapping[int, Mapping[str, Any]],
    lrs: Mapping[float, Mapping[int, float | None]],
    families: Mapping[str, str],
) -> dict[str, Any]:
    """One router's line of the main table (see the module docstring)."""
    seeds = sorted(records)
    first = records[seeds[0]] if seeds else {}
    fams = [family_accuracy(records[k], families) for k in seeds]
    names = sorted({f for row in fams for f in row})
    return {
        "router": router,
        "lr": lr,
        "val_by_lr": selection_table(lrs),
        "seeds": seeds,
        "errors": {k: records[k]["error"] for k in seeds if records[k].get("error")},
        "trainable": first.get("trainable"),
        "step_ms": spread(number(records[k].get("step_ms")) for k in seeds),
        "val": spread(mean_accuracy(records[k], "val") for k in seeds),
        "test": spread(mean_accuracy(records[k], "test") for k in seeds),
        "families": {f: spread(row.get(f) for row in fams) for f in names},
        "allocation": {
            key: spread(number(_get(records[k], "test", "allocation", key)) for k in seeds)
            for key in ("precision", "random")
        },
        "allocation_per_layer_head": per_layer_head(
            [_get(records[k], "test", "allocation", "per_layer_head") for k in seeds]
        ),
        "relations": {
            kind: spread(number(_get(records[k], "test", "relations", "auroc", kind)) for k in seeds)
            for kind in AUROC_KINDS
        },
    }


def per_layer_head(tables: Sequence[Any]) -> list[list[dict[str, Any]]]:
    """``[L][H]`` spreads over seeds of per-seed ``[L][H]`` tables (allocation precision per (layer, head));
    empty when no seed has a table or the seeds' shapes differ."""
    shaped = [t for t in tables if isinstance(t, list) and all(isinstance(row, list) for row in t)]
    shapes = {tuple(len(row) for row in t) for t in shaped}
    if len(shapes) != 1:
        return []
    first = shaped[0]
    return [
        [spread(number(t[layer][head]) for t in shaped) for head in range(len(first[layer]))]
        for layer in range(len(first))
    ]


def by_seed(row: Mapping[str, Any], *keys: str) -> dict[int, float | None]:
    """``{seed: value}`` of a per-seed figure of a router row, e.g. ``by_seed(row, "test")``."""
    block = row
    for key in keys:
        block = block.get(key, {}) if isinstance(block, Mapping) else {}
    values = block.get("values", []) if isinstance(block, Mapping) else []
    return dict(zip(row["seeds"], values))


def paired_rows(rows: Mapping[str, Mapping[str, Any]], split: str = "test") -> list[dict[str, Any]]:
    """``graph − every other router``, ``mhr − poly`` and every graph variant − ``graph`` on ``split`` mean accuracy,
    paired by seed."""
    pairs = [
        ("graph", other) for other in rows if other != "graph" and not other.startswith("graph-") and "graph" in rows
    ]
    if "mhr" in rows and "poly" in rows:
        pairs.append(("mhr", "poly"))
    pairs += [(v, "graph") for v in rows if v.startswith("graph-") and "graph" in rows]
    out = []
    for a, b in pairs:
        diff = paired_difference(a, by_seed(rows[a], split), b, by_seed(rows[b], split))
        out.append({**diff.as_dict(), "split": split})
    return out


def paired_figure(rows: Mapping[str, Mapping[str, Any]], a: str, b: str, *keys: str) -> dict[str, Any] | None:
    """``a − b`` on the per-seed figure ``keys`` (e.g. ``"allocation", "precision"``), paired by seed; None when
    either router is absent."""
    if a not in rows or b not in rows:
        return None
    return {
        **paired_difference(a, by_seed(rows[a], *keys), b, by_seed(rows[b], *keys)).as_dict(),
        "figure": ".".join(keys),
    }


def adapt_accuracy(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int], dict[int, float | None]]:
    """``{(router, mode, shots): {seed: mean test accuracy over the held-out tasks}}``.

    A seed whose cells for some task failed gets None (no mean over a partial set of tasks).
    """
    grouped: dict[tuple[str, str, int], dict[int, list[float | None]]] = {}
    for rec in records:
        key = (str(rec["router"]), str(rec["mode"]), int(rec["shots"]))
        acc = number(_get(rec, "test", "accuracy"))
        grouped.setdefault(key, {}).setdefault(int(rec["seed"]), []).append(acc)
    out: dict[tuple[str, str, int], dict[int, float | None]] = {}
    for key, seeds in sorted(grouped.items()):
        out[key] = {
            k: (None if any(v is None for v in vs) else sum(vs) / len(vs))  # type: ignore[misc]
            for k, vs in sorted(seeds.items())
        }
    return out


def few_shot_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One line per (router, mode, shots): held-out mean test accuracy, mean ± std over seeds."""
    return [
        {
            "router": r,
            "mode": m,
            "shots": n,
            "seeds": sorted(values),
            **spread(values.values()),
            "errors": sorted(
                {
                    str(rec["error"])
                    for rec in records
                    if rec["router"] == r and rec["mode"] == m and rec["shots"] == n and rec.get("error")
                }
            ),
        }
        for (r, m, n), values in adapt_accuracy(records).items()
    ]


def adapt_pair(
    records: Sequence[Mapping[str, Any]], a: tuple[str, str], b: tuple[str, str], shots: int
) -> dict[str, Any] | None:
    """``a − b`` (each ``(router, mode)``) at ``shots``, paired by seed; None when either side is absent."""
    table = adapt_accuracy(records)
    left, right = table.get((a[0], a[1], shots)), table.get((b[0], b[1], shots))
    if left is None or right is None:
        return None
    diff = paired_difference(f"{a[0]}/{a[1]}", left, f"{b[0]}/{b[1]}", right)
    return {**diff.as_dict(), "shots": shots}
