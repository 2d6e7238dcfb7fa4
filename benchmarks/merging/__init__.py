"""``python -m benchmarks merge``: fold → merge (LoRA and L-LoRA, every merge method, 2 … T tasks) against single-task
runs and routers that train the same tasks together. See :mod:`benchmarks.merging.run`."""

from benchmarks.merging.run import MergeBenchSettings, run_merge_bench

__all__ = ["MergeBenchSettings", "run_merge_bench"]
