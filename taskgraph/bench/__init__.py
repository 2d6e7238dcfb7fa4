"""Benchmarks: side-by-side figures and ratios (``taskgraph bench ...``), not timed tests.

``speed``: training-step time, inference time and peak memory of taskgraph's routed adapters beside
PEFT's LoRA and Poly on the same model and batch (:func:`taskgraph.bench.speed.run_speed_bench`); ``scale``
(:mod:`taskgraph.bench.scale`); ``quality`` (:mod:`taskgraph.bench.quality.run`). Import the module you need:
this package imports nothing, so the CLI can list the benches without loading torch.
"""
