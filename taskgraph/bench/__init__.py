"""Benchmarks: side-by-side figures and ratios (``taskgraph bench ...``), not timed tests.

``speed``: training-step time, inference time and peak memory of taskgraph's routed adapters beside
PEFT's LoRA and Poly on the same model and batch (:func:`~taskgraph.bench.speed.run_speed_bench`).
"""

from taskgraph.bench.report import render_markdown
from taskgraph.bench.speed import BenchError, SpeedSettings, run_speed_bench
from taskgraph.bench.stats import RatioSummary, bootstrap_median_ci, median, paired_ratios, ratio_summary

__all__ = [
    "BenchError", "RatioSummary", "SpeedSettings", "bootstrap_median_ci", "median", "paired_ratios",
    "ratio_summary", "render_markdown", "run_speed_bench",
]
