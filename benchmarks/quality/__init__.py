"""``python -m benchmarks quality``: every router on the same data and budget, then few-/zero-shot adaptation.

    from benchmarks.quality.run import QualitySettings, run_quality
    result = run_quality(QualitySettings(suites=("planted",), out=Path("runs/quality"), seeds=3))

The package follows the bench's data flow: the suites and their budgets (:mod:`~benchmarks.quality.suites`),
one resumable cell per training or adaptation (:mod:`~benchmarks.quality.cells`), the runner that walks
them (:mod:`~benchmarks.quality.run`), then the records read into tables and figures
(:mod:`~benchmarks.quality.summary`, :mod:`~benchmarks.quality.stats`), the pre-declared targets
(:mod:`~benchmarks.quality.targets`), the report (:mod:`~benchmarks.quality.report`) and the plots
(:mod:`~benchmarks.quality.plots`).

This package imports nothing: the CLI reads the suites' budgets for its help text
without loading torch, matplotlib or scipy. Import the module you need.
"""
