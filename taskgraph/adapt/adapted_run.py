"""The adapted run folder: the source run's spec with the new task, the adapted model, and its records.

:func:`write_adapted_run` builds it beside ``OUT`` and swaps it in (the layout: :mod:`taskgraph.adapt.run`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from taskgraph.atomic import staging_dir, write_text
from taskgraph.model import TaskGraphModel
from taskgraph.run_folder import publish_run
from taskgraph.spec import dump_spec

ADAPT_JSON, SPEC, SUMMARY, MODEL = "adapt.json", "spec.yaml", "train.json", "model"


def write_adapted_run(out: Path, model: TaskGraphModel, record: dict[str, Any], run_base: Path) -> list[str]:
    """Build the run beside ``out`` (claimed by :func:`~taskgraph.run_folder.claim_output_run`) and swap it in;
    returns what it kept of the folder it replaced (:func:`~taskgraph.run_folder.publish_run`)."""
    staging = staging_dir(out)
    try:
        write_text(staging / SPEC, dump_spec(model.spec))
        model.save_pretrained(staging / MODEL)
        summary = {
            "name": model.spec.name,
            "base_dir": str(run_base.resolve()),
            "adapted_from": record["source_run"],
            "task": record["task"],
            "mode": record["mode"],
        }
        write_text(staging / SUMMARY, json.dumps(summary, indent=2) + "\n")
        write_text(staging / ADAPT_JSON, json.dumps(record, indent=2) + "\n")
        return publish_run(staging, out, kind="adapt", name=model.spec.name, task=record["task"])
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
