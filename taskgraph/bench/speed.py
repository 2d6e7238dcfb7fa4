"""``taskgraph bench speed``: training-step time, inference time and peak memory beside PEFT.

Method: one process builds every configuration up front on its own copy of the base model, runs ``warmup``
uncounted rounds, then ``rounds`` counted rounds; a round runs every configuration once, in an order shuffled per
round (seeded). Each configuration's figure is its median step time; its comparison with PEFT's single LoRA is the
median of the **paired per-round** ratios with a bootstrap 95 % CI (:mod:`taskgraph.bench.stats`). Peak memory is
taken in one subprocess per configuration (a few steps; the growth of the resident set's peak on CPU,
``max_memory_allocated`` on CUDA; :mod:`taskgraph.bench.memory`), so configurations do not see each other's
allocations.

Rows: see :mod:`taskgraph.bench.rows`. The base model's dropout is the same in every row of a table: first the
model's own (MiniLM: 0.1), then 0. Besides every router beside PEFT LoRA, the rows hold what other comparisons need:
PEFT's mixed-adapter step, an L-LoRA step, poly / mhr at ``many_tasks`` tasks, a task merged into the weights beside
the bare base. The bench reports measured figures and ratios only.

``quantize`` (``--quantize int8 | nf4``) quantizes the base of every row (:mod:`taskgraph.model.quantize`): the
table is then PEFT LoRA, the frozen floor and every router on the same quantized base (the QLoRA comparison),
without the rows a quantized base does not serve (a task merged into the weights) or that measure something else
(PEFT Poly, L-LoRA, T scaling), plus PEFT LoRA on the unquantized base. PEFT LoRA on an ``nf4`` base is QLoRA on
torchao's NF4 (what torchtune's QLoRA uses), not bitsandbytes'.

``gradient_checkpointing`` (``--gradient-checkpointing``) adds, after PEFT LoRA, the floor and every router, the same
row with every transformer block checkpointed; its ratios are to checkpointed PEFT LoRA, and its memory subprocess
also records what the forward keeps for the backward (``activation_mb``, :func:`taskgraph.bench.memory.held_by`).

``llama-1b`` is a Llama of about 1 B parameters built from its config (random weights, nothing downloaded; targets
every attention and MLP projection); it is refused on CPU unless ``allow_large`` (``--allow-large``). ``tiny-llama``
is the same architecture at toy size (its layers fit nf4's blocks), for tests. The settings and these models are
:mod:`taskgraph.bench.speed_settings`.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from typing import Any

import torch
from torch import nn

from taskgraph.bench.errors import BenchError as BenchError
from taskgraph.bench.machine import device_name
from taskgraph.bench.memory import held_by, peak_of, run_python_module
from taskgraph.bench.rows import (
    ROUTER_KINDS,
    Env,
    Row,
    Shape,
    Step,
    TrainingStep,
    autocast,
    build_step,
    checkpointed,
    make_batch,
    reference_key,
    row_key,
)
from taskgraph.bench.speed_settings import LLAMA_TARGETS as LLAMA_TARGETS
from taskgraph.bench.speed_settings import SpeedSettings, load_base, native_dropout
from taskgraph.bench.speed_settings import speed_shape as speed_shape
from taskgraph.bench.stats import median, ratio_summary
from taskgraph.model.quantize import copy_base

CHILD_FLAG = "--memory-child"
QUANTIZED_ROWS = ("peft-lora", "floor", "taskgraph")  # the row kinds of a quantized-base table
CHECKPOINTED_ROWS = ("peft-lora", "floor", "taskgraph")  # the row kinds with a checkpointed twin


# ---------------------------------------------------------------------------------- the rows


def bench_rows(settings: SpeedSettings, model_dropout: float) -> list[Row]:
    """The configurations, in table order: per dropout (the model's own, then 0), then inference."""
    t, h, many = settings.tasks, settings.mhr_heads, settings.many_tasks
    routers = [k for k in ROUTER_KINDS if settings.routers is None or k in settings.routers]
    rows: list[Row] = []
    for d in sorted({model_dropout, 0.0}, reverse=True):
        rows += [
            Row(row_key("peft-lora", d), "PEFT LoRA", "peft-lora", d, tasks=t),
            Row(row_key("peft-poly", d), "PEFT Poly", "peft-poly", d, heads=1, tasks=t),
            Row(row_key(f"peft-poly-s{h}", d), f"PEFT Poly n_splits={h}", "peft-poly", d, heads=h, tasks=t),
        ]
        if d == 0.0:
            rows.append(
                Row(row_key("peft-mixed", d), f"PEFT LoRA x{t}, mixed batch (eval mode)", "peft-mixed", d, tasks=t)
            )
        rows.append(Row(row_key("floor", d), "frozen base, no adapter (floor)", "floor", d, tasks=t))
        for kind in routers:
            heads = h if kind == "mhr" else 1
            label = f"taskgraph {kind}" + (f" (H={h})" if kind == "mhr" else "")
            rows.append(Row(row_key(f"taskgraph-{kind}", d), label, "taskgraph", d, router=kind, heads=heads, tasks=t))
        if d == model_dropout:
            rows += [
                Row(
                    row_key("taskgraph-shared-llora", d),
                    "taskgraph shared, L-LoRA (linearized)",
                    "taskgraph",
                    d,
                    router="shared",
                    tasks=t,
                    linearized=True,
                ),
                Row(
                    row_key(f"taskgraph-poly-t{many}", d),
                    f"taskgraph poly, T={many}",
                    "taskgraph",
                    d,
                    router="poly",
                    tasks=many,
                ),
                Row(
                    row_key(f"taskgraph-mhr-t{many}", d),
                    f"taskgraph mhr (H={h}), T={many}",
                    "taskgraph",
                    d,
                    router="mhr",
                    heads=h,
                    tasks=many,
                ),
            ]
    rows += [
        Row("base-infer", "base model inference", "base-infer", None, tasks=t),
        Row(
            "folded-infer", "taskgraph poly merged (merge_task) inference", "folded-infer", None, router="poly", tasks=t
        ),
    ]
    if settings.quantize != "none":  # PEFT LoRA, the floor and every router on the same quantized base
        rows = [_on_quantized_base(r, settings.quantize) for r in rows if r.kind in QUANTIZED_ROWS]
        rows = [r for r in rows if not r.linearized and r.tasks == t]
        for d in sorted({model_dropout, 0.0}):  # PEFT LoRA on the unquantized base, after the quantized one
            at = [r.key for r in rows].index(row_key("peft-lora", d)) + 1
            full = Row(row_key("peft-lora-full", d), "PEFT LoRA, unquantized base", "peft-lora", d, tasks=t)
            rows.insert(at, replace(full, full_precision=True))
    if settings.gradient_checkpointing:  # each row of PEFT LoRA, the floor and the routers, then its twin
        twins = [r.kind in CHECKPOINTED_ROWS and not r.linearized and r.tasks == t for r in rows]
        rows = [x for r, twin in zip(rows, twins) for x in ((r, checkpointed(r)) if twin else (r,))]
    return rows


def _on_quantized_base(row: Row, kind: str) -> Row:
    """``row`` labelled for a table whose bases are ``kind``-quantized."""
    if row.kind == "peft-lora":
        return replace(row, label=f"PEFT LoRA on the {kind} base" + (" (QLoRA)" if kind == "nf4" else ""))
    if row.kind == "floor":
        return replace(row, label=f"frozen {kind} base, no adapter (floor)")
    return row


# ---------------------------------------------------------------------------------- models


def build_row(row: Row, base: nn.Module, settings: SpeedSettings) -> tuple[Step, int]:
    """``row``'s step on ``base`` (which it takes over) and the distinct tasks U of its batch."""
    device = torch.device(settings.device)
    batch = make_batch(settings.shape, base.config.vocab_size, row.tasks, device, settings.seed)
    env = Env(batch, settings.shape, device, settings.model_section())
    torch.manual_seed(settings.seed)
    return build_step(row, base, env), batch.distinct_tasks


# ---------------------------------------------------------------------------------- timing


def timed(step: Step, device: torch.device) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of ``step`` (CUDA: synchronised before and after).

    The CPU time (all threads of this process) is a second view for a shared machine: other
    processes stretch the wall clock of a step much more than its CPU time.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


def interleaved(
    steps: dict[str, Step], rounds: int, warmup: int, device: torch.device, seed: int, progress: Callable[[str], None]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Run every step once per round in a per-round shuffled order; the counted rounds' wall and CPU times."""
    order = list(steps)
    rng = random.Random(seed)
    wall: dict[str, list[float]] = {key: [] for key in order}
    cpu: dict[str, list[float]] = {key: [] for key in order}
    start = time.perf_counter()
    for r in range(warmup + rounds):
        rng.shuffle(order)
        for key in order:
            seconds, cpu_seconds = timed(steps[key], device)
            if r >= warmup:
                wall[key].append(seconds)
                cpu[key].append(cpu_seconds)
        elapsed = time.perf_counter() - start
        left = elapsed / (r + 1) * (warmup + rounds - r - 1)
        what = "warm-up" if r < warmup else "counted"
        progress(f"round {r + 1}/{warmup + rounds} ({what}) done, {elapsed:.0f} s elapsed, ~{left:.0f} s left")
    return wall, cpu


# ---------------------------------------------------------------------------------- memory


def memory_child(settings: SpeedSettings, row: Row) -> dict[str, Any]:
    """Peak memory of ``row`` in this fresh process (see :mod:`taskgraph.bench.memory`); a training row also records
    what its forward keeps for the backward (``activation_mb``)."""
    import peft  # noqa: F401  (everything the row needs is imported before the baseline)

    import taskgraph.model  # noqa: F401

    torch.set_num_threads(settings.resolved_threads())
    device = torch.device(settings.device)
    dropout = row.dropout if row.dropout is not None else native_dropout(settings)
    built: list[Step] = []

    def build() -> Step:
        built.append(build_row(row, load_base(settings, dropout, row.full_precision), settings)[0])
        return built[0]

    figures = peak_of(build, device, settings.memory_steps)
    step = built[0]
    if isinstance(step, TrainingStep):
        with autocast(device):
            held, loss = held_by(step.loss, device)
        loss.backward()
        step.optimizer.zero_grad(set_to_none=True)
        figures["activation_mb"] = held
    return figures


def _settings_json(settings: SpeedSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["shape"]["targets"] = list(settings.shape.targets)
    return data


def _settings_from_json(data: dict[str, Any]) -> SpeedSettings:
    shape = dict(data.pop("shape"))
    shape["targets"] = tuple(shape["targets"])
    for name in ("memory_rows", "routers"):
        if data.get(name) is not None:
            data[name] = tuple(data[name])
    return SpeedSettings(**data, shape=Shape(**shape))


def peak_memory(settings: SpeedSettings, row: Row, timeout: float = 900.0) -> dict[str, Any]:
    """:func:`memory_child` of ``row`` in a subprocess: ``{"peak_mb": x, ...}`` or ``{"error": text}``."""
    payload = json.dumps({"settings": _settings_json(settings), "row": asdict(row)})
    return run_python_module("taskgraph.bench.speed", [CHILD_FLAG, payload], timeout)


def measure_memory(settings: SpeedSettings, rows: list[Row], say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Peak memory of every row named by ``settings.memory_rows`` (all by default), one subprocess each."""
    chosen = [r for r in rows if settings.memory_rows is None or r.key in settings.memory_rows]
    say(f"peak memory: {len(chosen)} subprocesses, {settings.memory_jobs} at a time")
    with ThreadPoolExecutor(max_workers=settings.memory_jobs) as pool:
        found = dict(zip([r.key for r in chosen], pool.map(lambda r: peak_memory(settings, r), chosen)))
    for key, entry in found.items():
        if "error" in entry:
            say(f"peak memory of {key} failed: {entry['error']}")
    return found


def _child_main(payload: str) -> int:
    data = json.loads(payload)
    settings = _settings_from_json(data["settings"])
    print(json.dumps(memory_child(settings, Row(**data["row"]))), flush=True)
    return 0


# ---------------------------------------------------------------------------------- the bench


def _environment(settings: SpeedSettings) -> dict[str, Any]:
    import peft
    import transformers

    device = torch.device(settings.device)
    return {
        "device": settings.device,
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "autocast": "bf16" if device.type == "cuda" else "none (fp32)",
        "quantize": settings.quantize,
        "base_dtype": settings.base_dtype,
    }


def run_speed_bench(settings: SpeedSettings, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build every row, time them interleaved, measure peak memory; returns the figures (JSON-ready).

    The result holds ``settings``, ``environment`` and ``rows`` (per key: label, times, median, paired ratio to its
    reference with CI, peak memory).
    """
    settings.check()
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.resolved_threads())
    try:
        return _run(settings, progress or (lambda _: None))
    finally:
        torch.set_num_threads(threads)  # the caller's setting, as it was


def _run(settings: SpeedSettings, say: Callable[[str], None]) -> dict[str, Any]:
    torch.manual_seed(settings.seed)
    device = torch.device(settings.device)
    model_dropout = native_dropout(settings)
    rows = bench_rows(settings, model_dropout)
    memory = measure_memory(settings, rows, say) if settings.memory else {}  # first: the parent is small
    load_start = os.getloadavg()
    kinds = {(row.dropout if row.dropout is not None else model_dropout, row.full_precision) for row in rows}
    bases = {kind: load_base(settings, *kind) for kind in kinds}
    steps: dict[str, Step] = {}
    distinct: dict[str, int] = {}
    for row in rows:
        say(f"building {row.key}")
        dropout = row.dropout if row.dropout is not None else model_dropout
        steps[row.key], distinct[row.key] = build_row(row, copy_base(bases[dropout, row.full_precision]), settings)
    del bases
    say(
        f"timing {len(rows)} configurations: {settings.warmup} warm-up + {settings.rounds} counted rounds, "
        f"{torch.get_num_threads()} threads on {settings.device}"
    )
    times, cpu_times = interleaved(steps, settings.rounds, settings.warmup, device, settings.seed, say)
    load_end = os.getloadavg()
    out_rows: dict[str, Any] = {}
    for row in rows:
        ref = reference_key(row.dropout, row.checkpointing) if row.training else "base-infer"
        summary = ratio_summary(times[row.key], times[ref], seed=settings.seed)
        entry = {
            **asdict(row),
            "training": row.training,
            "distinct_tasks_in_batch": distinct[row.key],
            "times_s": times[row.key],
            "median_s": median(times[row.key]),
            "reference": ref,
            "ratio": summary.as_dict(),
            "cpu_times_s": cpu_times[row.key],
            "cpu_median_s": median(cpu_times[row.key]),
        }
        if all(t > 0 for t in cpu_times[ref]):
            entry["cpu_ratio"] = ratio_summary(cpu_times[row.key], cpu_times[ref], seed=settings.seed).as_dict()
        if row.key in memory:
            entry["memory"] = dict(memory[row.key])
            ref_mem = memory.get(ref, {}).get("peak_mb")
            mine = entry["memory"].get("peak_mb")
            if isinstance(mine, float) and isinstance(ref_mem, float) and ref_mem > 0:
                entry["memory"]["ratio"] = mine / ref_mem
        out_rows[row.key] = entry
    return {
        "bench": "speed",
        "settings": _settings_json(settings),
        "environment": {
            **_environment(settings),
            "model_dropout": model_dropout,
            "load_average_start": list(load_start),
            "load_average_end": list(load_end),
        },
        "rows": out_rows,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        sys.exit(_child_main(sys.argv[2]))
    print(
        f"usage: python -m taskgraph.bench.speed {CHILD_FLAG} JSON (internal); "
        f"run the bench with `taskgraph bench speed`",
        file=sys.stderr,
    )
    sys.exit(2)
