"""Data sources: where each task's examples come from (registry ``taskgraph.registry.SOURCES``).

Importing this package registers the built-in kinds: ``jsonl``, ``csv``, ``hf-disk``, ``planted``,
``catalog`` (real labelled text from PyPI packages, :mod:`taskgraph.data.catalog`), ``planted-gen`` (the planted
universe as text-to-text, :mod:`taskgraph.data.planted_gen`).
A training loop builds one source per task and loads its splits::

    source = build_source(task_spec, base_dir)   # base_dir: the spec file's directory
    examples = source.load("train")              # Examples: texts or token_ids, labels
"""

from taskgraph.data import catalog, csv, hf_disk, jsonl, planted, planted_gen  # noqa: F401  (register the built-in kinds)
from taskgraph.data.base import Source, build_source
from taskgraph.data.catalog import catalog_task
from taskgraph.data.examples import SPLITS, Examples
from taskgraph.data.planted import PlantedConfig, PlantedUniverse, planted_spec, planted_universe
from taskgraph.data.planted_gen import planted_gen_spec

__all__ = [
    "SPLITS",
    "Examples",
    "PlantedConfig",
    "PlantedUniverse",
    "Source",
    "build_source",
    "catalog_task",
    "planted_gen_spec",
    "planted_spec",
    "planted_universe",
]
