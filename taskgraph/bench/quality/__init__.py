"""``taskgraph bench quality``: every router on the same data and budget, then few-/zero-shot adaptation.

    from taskgraph.bench.quality.run import QualitySettings, run_quality
    result = run_quality(QualitySettings(suites=("planted",), out=Path("runs/quality"), seeds=3))

The package follows the bench's data flow: the suites and their budgets (:mod:`~taskgraph.bench.quality.suites`),
one resumable cell per training or adaptation (:mod:`~taskgraph.bench.quality.cells`), the runner that walks
them (:mod:`~taskgraph.bench.quality.run`), then the records read into tables and figures
(:mod:`~taskgraph.bench.quality.summary`, :mod:`~taskgraph.bench.quality.stats`), the pre-declared targets
(:mod:`~taskgraph.bench.quality.targets`), the report (:mod:`~taskgraph.bench.quality.report`) and the plots
(:mod:`~taskgraph.bench.quality.plots`).

Like :mod:`taskgraph.bench`, this package imports nothing: the CLI reads the suites' budgets for its help text
without loading torch, matplotlib or scipy. Import the module you need.
"""
