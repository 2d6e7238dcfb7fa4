"""The report of ``python -m benchmarks merge``: ``merge.md``, ``merge.json`` and ``plots/normalised_accuracy.png``.

The PNG has one panel per mode (LoRA, L-LoRA): normalised accuracy against the number of tasks T, one line
per merge method (mean over seeds, error bars ± one standard deviation), and the routers that trained the
same tasks together (normalised by the single-task LoRA runs) as dashed lines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.merging.suites import MODE_NAMES, MODES
from benchmarks.quality.plots import _figure, _save
from taskgraph.atomic import write_text

Pair = tuple[float | None, float | None]


def _ms(pair: Pair | Sequence[Any] | None, digits: int = 3) -> str:
    if not pair or pair[0] is None:
        return "–"
    mean, std = pair[0], pair[1]
    if mean != mean:  # NaN: a gain with nothing to gain
        return "n/a"
    return f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _ci(row: Mapping[str, Any]) -> str:
    if row.get("mean") is None:
        return "–"
    if row.get("ci_low") is None:
        return f"{row['mean']:+.3f}"
    return f"{row['mean']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] ({row['verdict']})"


def render(result: Mapping[str, Any]) -> str:
    """``merge.md`` of one suite."""
    seeds, lines = result["seeds"], []
    lines.append(f"# bench merge — {result['suite']}\n")
    lines += [f"- {n}" for n in result.get("notes", [])]
    budget = result["single_budget"]
    lines.append(
        f"- single-task runs: {budget['steps']} steps × batch {budget['batch_size']}, router shared, rank "
        f"{result['rank']}; lr chosen on the validation mean over seeds "
        f"{', '.join(str(k) for k in result.get('selection', {}).get('seeds', [0]))}: "
        + ", ".join(f"{MODE_NAMES[m]} {lr:g} (grid {result['mode_lrs'][m]})" for m, lr in result["chosen_lr"].items())
    )
    lines.append(
        f"- {seeds} seeds; T ∈ {result['sizes']}; subsets per T: "
        + ", ".join(f"T = {k}: {len(v)}" for k, v in result["subsets"].items())
    )
    lines.append("- hyper-parameters (λ, density, p) chosen on the validation split; every figure on the test split\n")
    lines.append("## Single-task runs (test accuracy, mean over tasks; mean ± std over seeds)\n")
    lines.append("| mode | single-task | heads only (ΔW = 0) |\n|---|---|---|")
    for mode in MODES:
        block = result["single"][mode]
        lines.append(f"| {MODE_NAMES[mode]} | {_ms(block['mean'])} | {_ms(block['heads_only'])} |")
    tasks = list(result["single"]["lora"]["tasks"])
    lines.append("\n| task | " + " | ".join(MODE_NAMES[m] for m in MODES) + " |\n|---|" + "---|" * len(MODES))
    for t in tasks:
        lines.append(f"| {t} | " + " | ".join(_ms(result["single"][m]["tasks"][t]) for m in MODES) + " |")
    lines.append("\n## Merged (test; mean ± std over seeds)\n")
    lines.append(
        "Normalised accuracy = mean_t merged_t / single_t; gain = (merged − heads only) / (single − heads only).\n"
    )
    lines.append(
        "| T | method | LoRA accuracy | LoRA normalised | LoRA gain | L-LoRA accuracy | L-LoRA normalised | L-LoRA gain |"
    )
    lines.append("|---:|---|---|---|---|---|---|---|")
    for row in result["rows"]:
        cells = [_ms(row[f"{m}_{f}"]) for m in MODES for f in ("absolute", "normalised", "gain")]
        lines.append(f"| {row['size']} | {row['method']} | " + " | ".join(cells) + " |")
    lines.append("\n## L-LoRA − LoRA, normalised accuracy (paired by seed, 95 % t-interval)\n")
    lines.append("| T | " + " | ".join(dict.fromkeys(p["method"] for p in result["paired"])) + " |")
    lines.append("|---:|" + "---|" * len(dict.fromkeys(p["method"] for p in result["paired"])))
    for size in result["sizes"]:
        lines.append(f"| {size} | " + " | ".join(_ci(p) for p in result["paired"] if p["size"] == size) + " |")
    if result["subspace_vs_svd"]:
        lines.append("\n## Shared-subspace merge − merge-then-SVD at rank r (normalised accuracy, paired)\n")
        lines.append("| T | mode | subspace − ta-svd | subspace-ties − ta-svd |\n|---:|---|---|---|")
        for size in result["sizes"]:
            for mode in MODES:
                got = {
                    r["method"]: _ci(r) for r in result["subspace_vs_svd"] if r["size"] == size and r["mode"] == mode
                }
                lines.append(
                    f"| {size} | {MODE_NAMES[mode]} | {got.get('subspace', '–')} | {got.get('subspace-ties', '–')} |"
                )
    if result["together"]:
        lines.append(
            "\n## Merge after vs train together (the first subset of each T; normalised by single-task LoRA)\n"
        )
        lines.append("| T | kind | name | accuracy | normalised | gain | seeds |\n|---:|---|---|---|---|---|---:|")
        for row in result["together"]:
            lines.append(
                f"| {row['size']} | {row['kind']} | {row['name']} | {_ms(row['absolute'])} | "
                f"{_ms(row['normalised'])} | {_ms(row['gain'])} | {row['seeds']} |"
            )
    lines.append("\n## Values chosen on validation\n")
    for key, values in result["chosen_values"].items():
        counts = {name: _counts(v) for name, v in values.items()}
        lines.append(f"- {key}: " + "; ".join(f"{n} {c}" for n, c in counts.items()))
    lines.append("\n## Pre-declared targets\n\n| target | measured | verdict |\n|---|---|---|")
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {t['verdict']} |")
    timing = result.get("timing", {})
    if timing:
        lines.append("\n## Time\n\n| part | wall | compute | cells run | skipped |\n|---|---:|---:|---:|---:|")
        for part, t in timing.items():
            if part != "total":
                lines.append(
                    f"| {part} | {t['wall_s'] / 60:.1f} min | {t['compute_s'] / 60:.1f} min | {t['ran']} | {t['skipped']} |"
                )
        total = timing["total"]
        lines.append(f"| total | {total['wall_s'] / 60:.1f} min | {total['compute_s'] / 60:.1f} min | | |")
        env = result.get("environment", {})
        lines.append(
            f"\n{env.get('threads')} torch thread(s), {env.get('cpus_usable')} usable CPUs, 1-minute load average "
            f"{_load(env.get('load_average_start'))} → {_load(env.get('load_average_end'))}"
        )
    return "\n".join(lines) + "\n"


def _load(averages: Sequence[float] | None) -> str:
    return f"{averages[0]:.1f}" if averages else "?"


def _counts(values: Sequence[float]) -> str:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return "{" + ", ".join(f"{k:g}: {n}" for k, n in sorted(counts.items())) + "}"


def plot_normalised(result: Mapping[str, Any], out: Path) -> Path:
    """Normalised accuracy against T, one panel per mode, one line per method (± std over seeds)."""
    fig = _figure((12.5, 4.5))
    sizes = np.array(result["sizes"], dtype=np.float64)  # [S]
    methods = list(dict.fromkeys(r["method"] for r in result["rows"]))
    axes = fig.subplots(1, len(MODES), sharey=True)
    for ax, mode in zip(np.atleast_1d(axes), MODES):
        for i, method in enumerate(methods):
            rows = [
                next(r for r in result["rows"] if r["method"] == method and r["size"] == s) for s in result["sizes"]
            ]
            mean = np.array([_num(r[f"{mode}_normalised"][0]) for r in rows])  # [S]
            std = np.nan_to_num(np.array([_num(r[f"{mode}_normalised"][1]) for r in rows]))  # [S]
            ax.errorbar(sizes + 0.04 * (i - len(methods) / 2), mean, yerr=std, marker="o", capsize=3, label=method)
        for router in dict.fromkeys(r["name"] for r in result["together"] if r["kind"] == "trained together"):
            rows = [r for r in result["together"] if r["name"] == router and r["kind"] == "trained together"]
            ax.plot(
                [r["size"] for r in rows],
                [_num(r["normalised"][0]) for r in rows],
                linestyle="--",
                marker="s",
                color="gray",
                alpha=0.6,
                label=f"together: {router}",
            )
        ax.set_title(f"{result['suite']}: merged {MODE_NAMES[mode]} (test)", parse_math=False)
        ax.set_xlabel("tasks merged T")
        ax.set_xticks(sizes)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("normalised accuracy (merged / single-task)")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return _save(fig, out)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else np.nan


def write_report(result: dict[str, Any], root: Path) -> None:
    """``merge.md``, ``merge.json`` and the PNG under ``root`` (atomic writes)."""
    result["plots"] = [str(plot_normalised(result, root / "plots" / "normalised_accuracy.png"))]
    write_text(root / "merge.json", json.dumps(result, indent=2, default=str) + "\n")
    write_text(root / "merge.md", render(result))
