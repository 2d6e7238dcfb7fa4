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

from typing import Any

from taskgraph.lazy import lazy_api

# name -> the module that defines it (imported on first use)
API: dict[str, str] = {
    "BenchError": "taskgraph.bench.errors",
    "SpeedSettings": "taskgraph.bench.speed_settings",
    "run_speed_bench": "taskgraph.bench.speed",
    "speed_shape": "taskgraph.bench.speed_settings",
    "Shape": "taskgraph.bench.rows",
    "OpsSettings": "taskgraph.bench.ops",
    "run_ops_bench": "taskgraph.bench.ops",
    "render_ops": "taskgraph.bench.ops",
    "InferSettings": "taskgraph.bench.inference",
    "run_infer_bench": "taskgraph.bench.inference",
    "render_infer": "taskgraph.bench.inference",
    "LMSettings": "taskgraph.bench.lm_speed",
    "run_lm_bench": "taskgraph.bench.lm_speed",
    "render_lm": "taskgraph.bench.lm_speed",
    "ScaleSettings": "taskgraph.bench.scale",
    "run_scale": "taskgraph.bench.scale",
    "render_scale": "taskgraph.bench.scale",
    "RatioSummary": "taskgraph.bench.stats",
    "median": "taskgraph.bench.stats",
    "paired_ratios": "taskgraph.bench.stats",
    "ratio_summary": "taskgraph.bench.stats",
    "render_markdown": "taskgraph.bench.report",
    "device_name": "taskgraph.bench.machine",
}

__all__ = list(API)

__getattr__, __dir__ = lazy_api(__name__, API, globals(), __all__)
