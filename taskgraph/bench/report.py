"""The speed bench's figures as markdown: one table per dropout, then inference."""

from __future__ import annotations

from typing import Any


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def _ratio(r: dict[str, Any]) -> str:
    return f"{r['median']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _memory(entry: dict[str, Any]) -> tuple[str, str]:
    memory = entry.get("memory")
    if memory is None:
        return "–", "–"
    if "peak_mb" not in memory:
        return "failed", "–"
    ratio = memory.get("ratio")
    return f"{memory['peak_mb']:.0f}", ("–" if ratio is None else f"{ratio:.3f}")


def _activation(entry: dict[str, Any]) -> str:
    held = entry.get("memory", {}).get("activation_mb")
    return "–" if held is None else f"{held:.1f}"


def _table(entries: list[dict[str, Any]], reference_label: str, cpu_column: bool) -> list[str]:
    """The rows' table; a column of what the forward keeps for the backward where any row measured it."""
    held_column = any("activation_mb" in e.get("memory", {}) for e in entries)
    held_head, held_rule = (" forward keeps (MB) |", "---:|") if held_column else ("", "")
    extra_head, extra_rule = (" × ref by process CPU time |", "---|") if cpu_column else ("", "")
    lines = [
        f"| configuration | median (ms) | × {reference_label}, paired median [95 % CI] | peak memory (MB) "
        f"| memory × ref |{held_head}{extra_head}",
        f"|---|---:|---|---:|---:|{held_rule}{extra_rule}",
    ]
    for e in entries:
        mem, mem_ratio = _memory(e)
        held = f" {_activation(e)} |" if held_column else ""
        extra = ""
        if cpu_column:
            extra = f" {_ratio(e['cpu_ratio'])} |" if "cpu_ratio" in e else " – |"
        lines.append(
            f"| {e['label']} | {_ms(e['median_s'])} | {_ratio(e['ratio'])} | {mem} | {mem_ratio} |{held}{extra}"
        )
    return lines


def _header(result: dict[str, Any]) -> list[str]:
    s, env = result["settings"], result["environment"]
    shape = s["shape"]
    load = (
        ", ".join(f"{x:.1f}" for x in env["load_average_start"])
        + " → "
        + ", ".join(f"{x:.1f}" for x in env["load_average_end"])
    )
    return [
        f"Model `{s['model']}`, batch {shape['batch']} × {shape['seq']} tokens, {s['tasks']} tasks (ids drawn "
        f"uniformly per example), K = {shape['skills']}, r = {shape['rank']}, alpha = {shape['alpha']:g}, "
        f"targets {', '.join(shape['targets'])}; MHR H = {s['mhr_heads']}"
        + (f"; every row's base quantized: {s['quantize']} (torchao)." if s.get("quantize", "none") != "none" else ".")
        + (f" Base weights {s['base_dtype']}." if s.get("base_dtype", "float32") != "float32" else "")
        + (
            ' A row "+ gradient checkpointing" checkpoints every block of its base; its ratios are to PEFT LoRA '
            "with gradient checkpointing."
            if s.get("gradient_checkpointing")
            else ""
        ),
        f"Device {env['device']} ({env['device_name']}), {env['threads']} torch threads "
        f"({env['cpus_usable']} CPUs usable), autocast {env['autocast']}; torch {env['torch']}, "
        f"transformers {env['transformers']}, peft {env['peft']}.",
        f"{s['warmup']} warm-up + {s['rounds']} counted rounds, every configuration once per round in a shuffled "
        f"order (seed {s['seed']}); load average (1/5/15 min) {load}.",
        "Training step = forward + mean pooling + per-task head + cross-entropy + backward + AdamW step. "
        "Ratios are medians of per-round paired ratios with a bootstrap 95 % CI (wall clock; on CPU also "
        "by the process's CPU time, which other processes on a shared machine stretch much less).",
    ]


def render_markdown(result: dict[str, Any]) -> str:
    """The whole report as markdown text."""
    rows = list(result["rows"].values())
    cpu_column = result["environment"]["device"] == "cpu"
    lines = ["# taskgraph bench speed", "", *_header(result), ""]
    training = [r for r in rows if r["training"]]
    for dropout in sorted({r["dropout"] for r in training}, reverse=True):
        group = [r for r in training if r["dropout"] == dropout]
        lines += [f"## Training step, base dropout {dropout:g}", ""]
        lines += _table(group, "PEFT LoRA", cpu_column)
        if not any(r["kind"] == "peft-mixed" for r in group) and any(r["kind"] == "peft-mixed" for r in training):
            lines.append("")
            lines.append("(PEFT's mixed-adapter batch runs only in eval mode, so it sits in the dropout-0 table.)")
        lines.append("")
    inference = [r for r in rows if not r["training"]]
    if inference:
        lines += ["## Inference (eval, no grad)", ""]
        lines += _table(inference, "base", cpu_column)
        lines.append("")
    return "\n".join(lines)
