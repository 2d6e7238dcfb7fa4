"""taskgraph's research harness and its committed results records (not shipped in the wheel).

``benchmarks/results/*.json`` are the records every figure in the README and the docs is rendered from
(:mod:`benchmarks.render`); the scripts that write them live beside them.
"""
