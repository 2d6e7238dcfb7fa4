"""The speed targets of issue 3, checked against a bench's figures.

Each target compares two rows of the same run. Time targets use the paired per-round ratio
(:func:`~taskgraph.bench.stats.ratio_summary`); "routing is free" is judged on the CI's upper
bound, the others on the median ratio (their CI is reported beside it). Memory targets compare the
peak memory of two rows' subprocesses (one measurement each, no CI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskgraph.bench.rows import ROUTER_KINDS, reference_key, row_key
from taskgraph.bench.stats import ratio_summary

if TYPE_CHECKING:
    from taskgraph.bench.speed import SpeedSettings

ROUTING_FREE = 1.05
PRIVATE_VS_MIXED = 0.8
TASK_SCALING = 1.1
FOLDED_VS_BASE = 1.02
LINEARIZED = 1.2  # an L-LoRA training step vs the same LoRA step (issue 14)
QUANTIZED = 1.10  # every router vs PEFT LoRA on the same quantized base, paired median
MEMORY = 1.1


@dataclass(frozen=True)
class Target:
    """``numerator / denominator`` (by ``statistic``) must be ≤ ``limit``.

    Args:
        name: what the target says, for the table.
        numerator, denominator: row keys.
        statistic: ``ci_high`` or ``median`` of the paired time ratio, or ``memory``.
        limit: the largest value that meets the target.
    """

    name: str
    numerator: str
    denominator: str
    statistic: str
    limit: float


def speed_targets(keys: list[str], settings: SpeedSettings, model_dropout: float) -> list[Target]:
    """The targets that apply to rows ``keys`` (rows absent from the run are skipped)."""
    targets: list[Target] = []
    for d in sorted({model_dropout, 0.0}, reverse=True):
        for kind in ROUTER_KINDS:
            if settings.quantize == "none":
                name, statistic, limit = f"routing is free: taskgraph {kind}", "ci_high", ROUTING_FREE
            else:  # every router beside PEFT LoRA on the same quantized base
                name, statistic, limit = f"{settings.quantize} base: taskgraph {kind}", "median", QUANTIZED
            targets.append(
                Target(
                    f"{name} vs PEFT LoRA (dropout {d:g}), {'CI high' if statistic == 'ci_high' else 'median'}",
                    row_key(f"taskgraph-{kind}", d),
                    reference_key(d),
                    statistic,
                    limit,
                )
            )
    targets.append(
        Target(
            "private mixed-task vs PEFT mixed-adapter step (dropout 0)",
            row_key("taskgraph-private", 0.0),
            row_key("peft-mixed", 0.0),
            "median",
            PRIVATE_VS_MIXED,
        )
    )
    targets.append(
        Target(
            f"L-LoRA step vs LoRA step: taskgraph shared linearized vs not (dropout {model_dropout:g}), CI high",
            row_key("taskgraph-shared-llora", model_dropout),
            row_key("taskgraph-shared", model_dropout),
            "ci_high",
            LINEARIZED,
        )
    )
    many = settings.many_tasks
    for kind in ("poly", "mhr"):
        targets.append(
            Target(
                f"{kind}: T={many} vs T={settings.tasks} (dropout {model_dropout:g})",
                row_key(f"taskgraph-{kind}-t{many}", model_dropout),
                row_key(f"taskgraph-{kind}", model_dropout),
                "median",
                TASK_SCALING,
            )
        )
    targets.append(
        Target("merged (folded) inference vs base inference", "folded-infer", "base-infer", "median", FOLDED_VS_BASE)
    )
    if settings.memory:
        for d in sorted({model_dropout, 0.0}, reverse=True):
            for kind in ROUTER_KINDS:
                targets.append(
                    Target(
                        f"peak memory: taskgraph {kind} vs PEFT LoRA (dropout {d:g})",
                        row_key(f"taskgraph-{kind}", d),
                        reference_key(d),
                        "memory",
                        MEMORY,
                    )
                )
    present = set(keys)
    return [t for t in targets if t.numerator in present and t.denominator in present]


def evaluate_targets(
    result: dict[str, Any],
    times: dict[str, list[float]],
    settings: SpeedSettings,
    cpu_times: dict[str, list[float]] | None = None,
) -> list[dict[str, Any]]:
    """Every applicable target with its figure and whether it is met (None when not measured).

    Time targets are judged on wall-clock ratios; with ``cpu_times`` the same statistic of the
    process-CPU-time ratio is reported beside it as ``value_cpu`` (not judged).
    """
    rows = result["rows"]
    model_dropout = float(result["environment"]["model_dropout"])
    out: list[dict[str, Any]] = []
    for target in speed_targets(list(rows), settings, model_dropout):
        entry: dict[str, Any] = {
            "name": target.name,
            "numerator": target.numerator,
            "denominator": target.denominator,
            "statistic": target.statistic,
            "limit": target.limit,
        }
        if target.statistic == "memory":
            mine = rows[target.numerator].get("memory", {}).get("peak_mb")
            ref = rows[target.denominator].get("memory", {}).get("peak_mb")
            value = mine / ref if isinstance(mine, float) and isinstance(ref, float) and ref > 0 else None
        else:
            summary = ratio_summary(times[target.numerator], times[target.denominator], seed=settings.seed)
            entry.update(summary.as_dict())
            value = summary.high if target.statistic == "ci_high" else summary.median
            if cpu_times is not None and all(t > 0 for t in cpu_times[target.denominator]):
                by_cpu = ratio_summary(cpu_times[target.numerator], cpu_times[target.denominator], seed=settings.seed)
                entry["value_cpu"] = by_cpu.high if target.statistic == "ci_high" else by_cpu.median
        entry["value"] = value
        entry["met"] = None if value is None else bool(value <= target.limit)
        out.append(entry)
    return out
