"""The quality bench's figures as markdown: one report per suite (pure: a result dict in, text out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def pm(block: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``mean ± std`` of a spread block (``–`` when missing; the mean alone for one seed)."""
    if not block or block.get("mean") is None:
        return "–"
    mean, std = block["mean"], block.get("std")
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def num(value: float | None, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def params(trainable: Mapping[str, int] | None) -> str:
    """Adapters + router parameters (the heads, the same for every router, in brackets)."""
    if not trainable:
        return "–"
    own = trainable.get("adapters", 0) + trainable.get("router", 0)
    return f"{own:,} (+{trainable.get('heads', 0):,} heads)"


def _met(value: bool | None) -> str:
    return "not measured" if value is None else ("met" if value else "**missed**")


def router_table(rows: Sequence[Mapping[str, Any]], suite: str) -> list[str]:
    """The main table: one line per router at its chosen learning rate."""
    families = sorted({f for r in rows for f in r.get("families", {})})
    head = ["router", "lr (adapters, heads)", "trainable (adapters + router)", "step (ms)", "val acc", "test acc"]
    head += [f"test: {f}" for f in families]
    planted = suite.startswith("planted")
    if planted:
        head += ["allocation precision (random)"]
    head += ["relation AUROC learned / routing-cos / grad-cos / random"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["router"],
            f"{r['lr']:g}",
            params(r.get("trainable")),
            pm(r.get("step_ms"), 1),
            pm(r.get("val")),
            pm(r.get("test")),
        ]
        cells += [pm(r.get("families", {}).get(f)) for f in families]
        if planted:
            alloc = r.get("allocation", {})
            cells.append(f"{pm(alloc.get('precision'))} ({num((alloc.get('random') or {}).get('mean'))})")
        rel = r.get("relations", {})
        cells.append(
            " / ".join(
                num((rel.get(k) or {}).get("mean")) for k in ("learned", "routing_cosine", "gradient_cosine", "random")
            )
        )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def allocation_table(rows: Sequence[Mapping[str, Any]], oracle: Mapping[str, Any] | None) -> list[str]:
    """Allocation precision per adapted layer for every router that has it, beside the oracle-relearn ceiling's;
    mean ± std over seeds (several heads: the mean over heads, then each head's mean)."""
    tables = [(r["router"], r.get("allocation_per_layer_head") or []) for r in rows]
    if oracle and oracle.get("per_layer_head"):
        tables.append(("oracle-relearn ceiling", oracle["per_layer_head"]))
    tables = [(name, t) for name, t in tables if t]
    if not tables:
        return []
    count = max(len(t) for _, t in tables)
    layers = list((oracle or {}).get("layers") or [])
    cols = [layers[i] if i < len(layers) else f"adapted layer {i}" for i in range(count)]
    lines = ["| router | " + " | ".join(cols) + " |", "|" + "---|" * (count + 1)]
    for name, t in tables:
        lines.append(f"| {name} | " + " | ".join(_layer_cell(t[i]) if i < len(t) else "–" for i in range(count)) + " |")
    return lines


def _layer_cell(heads: Sequence[Mapping[str, Any]]) -> str:
    if len(heads) == 1:
        return pm(heads[0])
    means = [h.get("mean") for h in heads]
    known = [m for m in means if m is not None]
    if not known:
        return "–"
    return f"{sum(known) / len(known):.3f} (heads " + " / ".join(num(m, 2) for m in means) + ")"


def oracle_lines(oracle: Mapping[str, Any] | None) -> list[str]:
    if not oracle:
        return []
    return [
        "",
        "## Oracle-relearn ceiling (adapters trained under the planted routing, routing re-learned)",
        "",
        (
            f"Adapters and heads trained {oracle.get('train_steps')} steps at lr {oracle.get('lr')} under oracle "
            f"routing (validation {pm(oracle.get('oracle_val'))}), then frozen while poly routing is re-learned from "
            f"scratch for {oracle.get('relearn_steps')} steps (validation {pm(oracle.get('relearn_val'))}, test "
            f"{pm(oracle.get('relearn_test'))}). Allocation precision of the re-learned routing: "
            f"**{pm(oracle.get('precision'))}** (random {pm(oracle.get('random'))}; seeds {oracle.get('seeds')}); "
            f"routing-cosine relation AUROC {pm(oracle.get('relation_auroc'))}. Per layer: the table below."
        ),
    ]


def lr_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lr selection: per router and rate, the mean validation accuracy over the selection seeds and each seed's
    figure (``mean (s0 / s1 / s2)``); the chosen rate last."""
    lrs = sorted({lr for r in rows for lr in r.get("val_by_lr", {})}, key=float)
    lines = ["| router | " + " | ".join(f"lr {x}" for x in lrs) + " | chosen |", "|" + "---|" * (len(lrs) + 2)]
    for r in rows:
        cells = [_selection_cell(r["val_by_lr"].get(x)) for x in lrs]
        lines.append(f"| {r['router']} | " + " | ".join(cells) + f" | {r['lr']:g} |")
    return lines


def _selection_cell(entry: Mapping[str, Any] | None) -> str:
    if not isinstance(entry, Mapping):  # a record written before selection over seeds: seed 0's figure
        return num(entry) if isinstance(entry, (int, float)) else "–"
    per_seed = " / ".join(num(v) for v in entry.get("seeds", {}).values())
    return f"{num(entry.get('mean'))} ({per_seed})" if per_seed else num(entry.get("mean"))


def paired_table(pairs: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| comparison | mean difference | 95 % CI | seeds | verdict |", "|---|---:|---|---:|---|"]
    for p in pairs:
        name = f"{p['a']} − {p['b']}" + (f", {p['shots']} shots" if "shots" in p else "")
        ci = "–" if p.get("ci_low") is None else f"[{p['ci_low']:+.3f}, {p['ci_high']:+.3f}]"
        verdict = f"**{p['verdict']}**" if p["verdict"] in ("win", "loss") else p["verdict"]
        lines.append(f"| {name} | {num(p.get('mean'), signed=True)} | {ci} | {len(p['seeds'])} | {verdict} |")
    return lines


def few_shot_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| router | mode | shots | held-out test acc | seeds | failed cells |", "|---|---|---:|---|---:|---|"]
    for r in rows:
        errors = "; ".join(e[:120] for e in r.get("errors", [])) or ""
        lines.append(f"| {r['router']} | {r['mode']} | {r['shots']} | {pm(r)} | {r['n']} | {errors} |")
    return lines


def targets_table(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["| target | figure | rule | result | detail |", "|---|---:|---|---|---|"]
    for t in targets:
        lines.append(
            f"| {t['name']} | {num(t.get('figure'))} | {t['rule']} | {_met(t.get('met'))} | {t.get('detail', '')} |"
        )
    return lines


def time_table(timing: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        "| part | wall time this invocation (s) | compute recorded in the cells (s) | cells run | cells skipped |",
        "|---|---:|---:|---:|---:|",
    ]
    for part, t in timing.items():
        lines.append(
            f"| {part} | {t.get('wall_s', 0.0):.0f} | {t.get('compute_s', 0.0):.0f} | {t.get('ran', 0)} | "
            f"{t.get('skipped', 0)} |"
        )
    return lines


def _selection_seeds(result: Mapping[str, Any]) -> str:
    seeds = result.get("selection", {}).get("seeds", [0])
    return f"seed{'s' if len(seeds) != 1 else ''} {', '.join(str(k) for k in seeds)}"


def _budget_lines(result: Mapping[str, Any]) -> list[str]:
    b, env = result["budget"], result.get("environment", {})
    router_lr = ", ".join(f"{k} {v:g}" for k, v in result.get("router_lr", {}).items())
    length = f", max_length {b['max_length']}" if b.get("max_length") else ""
    cap = f", at most {b['train_examples']} training examples per task" if b.get("train_examples") else ""
    return [
        (
            f"Budget: {b['steps']} steps × batch {b['batch_size']}{length}{cap}; adapters + heads lr grid "
            f"{[float(x) for x in b['lrs']]} chosen per router on the mean validation accuracy over "
            f"{_selection_seeds(result)}; router lr fixed per kind "
            f"({router_lr}; the others have no router parameters); {result['seeds']} seeds (initialisation and sampling; "
            f"same splits); mhr with {b['mhr_heads']} heads, every other router 1; adaptation {b['adapt_steps']} steps "
            f"at shots {list(b['shots'])}."
        ),
        (
            "Every router uses the same RoutedLoRA layers with scale alpha / r (no 1 / r Poly scaling), the same r, "
            "alpha, K and target modules. Accuracy: the final model, mean over tasks; mean ± std over seeds. "
            "Paired differences: per seed, 95 % Student-t interval; a win only where the interval excludes 0."
        ),
        (
            f"Device {env.get('device', '?')}, {env.get('threads', '?')} torch thread"
            f"{'' if env.get('threads') == 1 else 's'}; torch {env.get('torch', '?')}."
        ),
    ]


def render_suite(result: Mapping[str, Any]) -> str:
    """One suite's report (the ``result`` of :func:`benchmarks.quality.run.run_suite`)."""
    suite = result["suite"]
    lines = [f"# benchmarks quality — {suite}", "", *_budget_lines(result), ""]
    lines += [f"- {n}" for n in result.get("notes", [])]
    seeds = f"{result['seeds']} seed" + ("s" if result["seeds"] != 1 else "")
    lines += ["", f"## Routers (seen tasks, {seeds})", ""]
    lines += router_table(result["routers"], suite)
    errors = [(r["router"], k, e) for r in result["routers"] for k, e in r.get("errors", {}).items()]
    if errors:
        lines += ["", "Failed cells: " + "; ".join(f"{r} seed {k}: {e[:200]}" for r, k, e in errors)]
    lines += oracle_lines(result.get("oracle"))
    per_layer = allocation_table(result["routers"], result.get("oracle"))
    if per_layer:
        lines += ["", "## Allocation precision per adapted layer (mean ± std over seeds)", "", *per_layer]
    lines += [
        "",
        f"## Learning-rate selection (validation mean accuracy: mean over {_selection_seeds(result)} (each seed))",
        "",
        *lr_table(result["routers"]),
    ]
    lines += ["", "## Paired differences (test mean accuracy, paired by seed)", "", *paired_table(result["paired"])]
    held = ", ".join(h["name"] for h in result.get("held_out", [])) or "none"
    lines += [
        "",
        f"## Few-shot and zero-shot adaptation (held-out tasks: {held})",
        "",
        (
            "Mean test accuracy over the held-out tasks; the head is fitted on the same shots in every mode. "
            "zero-shot (graph only) = the new task routed from its given relations, no gradient step; "
            "mhr-mu = the average of the skills, tuned on the shots."
        ),
        "",
    ]
    lines += few_shot_table(result["few_shot"])
    if result.get("few_shot_paired"):
        lines += ["", *paired_table(result["few_shot_paired"])]
    lines += ["", "## Targets (pre-declared; reported either way)", "", *targets_table(result["targets"])]
    lines += ["", "## Time", "", *time_table(result["timing"]), ""]
    return "\n".join(lines)
