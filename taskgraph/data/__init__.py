"""Data sources: where each task's examples come from (registry ``taskgraph.registry.SOURCES``).

Importing this package registers the built-in kinds: ``jsonl``, ``csv``, ``hf-disk``, ``planted``,
``catalog`` (real labelled text from PyPI packages, :mod:`taskgraph.data.catalog`), ``planted-gen`` (the planted
universe as text-to-text, :mod:`taskgraph.data.planted_gen`).
A training loop builds one source per task and loads its splits::

    source = build_source(task_spec, base_dir)   # base_dir: the spec file's directory
    examples = source.load("train")              # Examples: texts or token_ids, labels

Encoded data (torch; imported on first use, so a spec load that registers the kinds stays torch-free): a task's
split encoded once (:class:`TaskData`, :func:`encode_examples`), a generative task's targets for the model's layout
(:class:`LMInfo`), and the mixed-task :class:`Batch` the collator stacks (:func:`collate`, :func:`task_batches`).
"""

from typing import Any

from taskgraph.data import catalog, csv, hf_disk, jsonl, planted, planted_comp, planted_gen  # noqa: F401  (register the built-in kinds)
from taskgraph.data.base import Source, build_source
from taskgraph.data.catalog import cache_root, cached, catalog_task, catalog_tasks, ensure_task, manifest_path
from taskgraph.data.examples import SPLITS, Examples
from taskgraph.data.jsonl import parse_jsonl, read_jsonl
from taskgraph.data.planted import PlantedConfig, PlantedUniverse, planted_spec, planted_universe, tiny_planted_spec
from taskgraph.data.planted_comp import held_out_tasks, planted_comp_spec
from taskgraph.data.planted_gen import planted_gen_spec
from taskgraph.data.text2text import Text2Text
from taskgraph.lazy import lazy_api

# name -> the module that defines it, imported when first used (PEP 562): these need torch
LAZY: dict[str, str] = {
    "Batch": "taskgraph.data.batch",
    "LMInfo": "taskgraph.data.text2text_encoding",
    "TaskData": "taskgraph.data.task_data",
    "collate": "taskgraph.data.batch",
    "encode": "taskgraph.data.encoding",
    "encode_examples": "taskgraph.data.task_data",
    "target_rows": "taskgraph.data.text2text_encoding",
    "task_batches": "taskgraph.data.batch",
    "tokenizer_pad_id": "taskgraph.data.task_data",
}

__all__ = [
    "SPLITS",
    "Batch",
    "Examples",
    "LMInfo",
    "PlantedConfig",
    "PlantedUniverse",
    "Source",
    "TaskData",
    "Text2Text",
    "build_source",
    "cache_root",
    "cached",
    "catalog_task",
    "catalog_tasks",
    "collate",
    "encode",
    "encode_examples",
    "held_out_tasks",
    "ensure_task",
    "manifest_path",
    "parse_jsonl",
    "planted_comp_spec",
    "planted_gen_spec",
    "planted_spec",
    "tiny_planted_spec",
    "planted_universe",
    "read_jsonl",
    "target_rows",
    "task_batches",
    "tokenizer_pad_id",
]

__getattr__, __dir__ = lazy_api(__name__, LAZY, globals(), None)
