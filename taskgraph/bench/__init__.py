"""Benchmarks a user runs on their own model and machine (``taskgraph bench speed|infer|lm|scale``): measured figures
and paired ratios side by side with PEFT, never a verdict.

    from taskgraph.bench import SpeedSettings, run_speed_bench
    result = run_speed_bench(SpeedSettings(model="minilm", rounds=30))   # or: taskgraph bench speed --json OUT

``speed``: training-step time, inference time and peak memory of the routed adapters beside PEFT's LoRA and Poly
(:mod:`taskgraph.bench.speed`; ``--ops`` counts operations instead, :mod:`taskgraph.bench.ops`); ``infer``: mixed-task
inference (:mod:`taskgraph.bench.inference`); ``lm``: a causal-LM step and routed generation
(:mod:`taskgraph.bench.lm_speed`); ``scale``: the graph router as T grows (:mod:`taskgraph.bench.scale`). A comparison
is the median of per-round paired ratios with a bootstrap CI (:func:`ratio_summary`).

Every name is imported on first use from the module :data:`API` names, so the CLI lists the benches without loading
torch.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the module that defines it (imported on first use)
API: dict[str, str] = {
    "BenchError": "taskgraph.bench.errors",
    "SpeedSettings": "taskgraph.bench.speed",
    "run_speed_bench": "taskgraph.bench.speed",
    "OpsSettings": "taskgraph.bench.ops",
    "run_ops_bench": "taskgraph.bench.ops",
    "InferSettings": "taskgraph.bench.inference",
    "run_infer_bench": "taskgraph.bench.inference",
    "LMSettings": "taskgraph.bench.lm_speed",
    "run_lm_bench": "taskgraph.bench.lm_speed",
    "ScaleSettings": "taskgraph.bench.scale",
    "run_scale": "taskgraph.bench.scale",
    "RatioSummary": "taskgraph.bench.stats",
    "median": "taskgraph.bench.stats",
    "paired_ratios": "taskgraph.bench.stats",
    "ratio_summary": "taskgraph.bench.stats",
    "render_markdown": "taskgraph.bench.report",
}

__all__ = list(API)


def __getattr__(name: str) -> Any:  # PEP 562: the API table above, imported when first used
    if name not in API:
        raise AttributeError(f"module 'taskgraph.bench' has no attribute {name!r}; its API is {sorted(__all__)}")
    value = getattr(importlib.import_module(API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
