"""The new task's data: the ``--data`` argument, the resolved data block, and its label count.

``--data`` is a YAML/JSON flow mapping (``"{source: planted, task: 21, seed: 0}"``), a ``.yaml`` file
holding the data block (or a ``data:`` key holding it; its relative paths resolve against the file's
folder), or a ``.jsonl`` / ``.csv`` file, shorthand for ``{source: jsonl|csv, path: FILE}``.

The resolved block goes into the adapted run's spec, which ``taskgraph eval`` reads against the
source run's data folder; so the file paths of the file sources (``jsonl``, ``csv``: ``path``,
``train``, ``val``, ``test``; ``hf-disk``: ``path``) are made absolute here. A ``planted`` block takes the
universe keys it leaves out (everything but ``task``) from the run's own planted tasks: a held-out task
is only meaningful in the universe the run was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from taskgraph.data.base import FileParams, build_source
from taskgraph.data.hf_disk import HfDiskParams
from taskgraph.data.planted import PlantedParams, planted_universe
from taskgraph.errors import DataError, SpecError, TaskgraphError, validation_problems
from taskgraph.files import describe
from taskgraph.registry import SOURCES, UnknownKindError
from taskgraph.spec.loader import parse_yaml
from taskgraph.spec.models import Spec, TaskSpec

SHORTHAND = {".jsonl": "jsonl", ".csv": "csv"}
YAML = (".yaml", ".yml")
PROBE_LABELS = 1_000_000  # label count a source is read with to find the largest label
EXAMPLE = '"{source: jsonl, path: data/new.jsonl}"'


def parse_data_arg(text: str, cwd: str | os.PathLike[str] = ".") -> tuple[dict[str, Any], Path]:
    """``(data block, folder its relative paths resolve against)`` from the ``--data`` argument."""
    here = Path(cwd)
    raw = text.strip()
    suffix = Path(raw).suffix.lower()
    if suffix in SHORTHAND or suffix in YAML:
        path = Path(raw).expanduser()
        path = path if path.is_absolute() else here / path
        problem = describe(path)
        if problem is not None:
            raise DataError(f"--data {text!r}: {str(path)!r} {problem}")
        if suffix in SHORTHAND:
            return {"source": SHORTHAND[suffix], "path": str(path.resolve())}, here
        try:
            data, _ = parse_yaml(path.read_text(encoding="utf-8-sig"), str(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"--data {text!r}: cannot read {str(path)!r} ({exc})") from None
        except SpecError as exc:
            raise DataError(f"--data {text!r}: {exc.problems[0]}") from None
        if isinstance(data, dict) and "source" not in data and isinstance(data.get("data"), dict):
            data = data["data"]
        return _mapping(data, text), path.parent
    try:
        data, _ = parse_yaml(raw, "--data")
    except SpecError as exc:
        raise DataError(f"--data {text!r}: {exc.problems[0]}; give a flow mapping such as {EXAMPLE}") from None
    return _mapping(data, text), here


def _mapping(data: Any, text: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("source"), str):
        raise DataError(
            f"--data {text!r}: expected a data block with a 'source', such as {EXAMPLE} or "
            f'"{{source: planted, task: 21}}", or a path to a .yaml / .jsonl / .csv file'
        )
    return dict(data)


def resolve_block(data: Mapping[str, Any], base_dir: str | os.PathLike[str], run_spec: Spec) -> dict[str, Any]:
    """The data block as the adapted spec records it: known kind, planted keys filled, file paths absolute."""
    block = dict(data)
    source = block.get("source")
    if not isinstance(source, str):
        raise DataError(f"data block {block}: it needs a 'source'; choose from {SOURCES.kinds()}")
    try:
        entry = SOURCES.get(source)
    except UnknownKindError as exc:
        raise DataError(f"data block: {exc}") from None
    if entry.params is PlantedParams:
        block = {"source": source, **_planted_universe_of(run_spec), **block}
    params = _params(entry.params, block)
    base = Path(base_dir)
    keys = (
        ("path", "train", "val", "test")
        if isinstance(params, FileParams)
        else (("path",) if isinstance(params, HfDiskParams) else ())
    )
    for key in keys:
        value = block.get(key)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            block[key] = str((base / Path(value).expanduser()).resolve())
    return block


def _planted_universe_of(run_spec: Spec) -> dict[str, Any]:
    """The universe keys of the run's first planted task (all but ``task``), or nothing."""
    for task in run_spec.tasks:
        if task.data is not None and isinstance(task.data.params, PlantedParams):
            return {k: v for k, v in task.data.own_fields().items() if k != "task"}
    return {}


def _params(model: Any, block: dict[str, Any]) -> Any:
    if model is None:
        return None
    try:
        return model.model_validate({k: v for k, v in block.items() if k != "source"})
    except ValidationError as exc:
        problems = validation_problems(exc, root="data", limit=4)
        raise DataError(f"data block {block}: invalid {block['source']} parameters: {problems}") from None


# ----------------------------------------------------------------------------- label count, family
def _planted_labels(block: dict[str, Any]) -> int:
    params = PlantedParams.model_validate({k: v for k, v in block.items() if k != "source"})
    return planted_universe(params.universe_config()).num_labels(params.task)


def _catalog_entry(block: dict[str, Any]) -> Any:
    from taskgraph.data.catalog.manifest import (
        catalog_task,  # the catalog is optional here
    )

    return catalog_task(str(block.get("name")))


_KNOWN_COUNTS: dict[str, Callable[[dict[str, Any]], int]] = {
    "planted": _planted_labels,  # the universe knows |S_t| + 1
    "catalog": lambda block: int(_catalog_entry(block).num_labels),
}


def new_task_labels(
    task: str, block: dict[str, Any] | None, generation: Mapping[str, Any] | None, num_labels: int | None
) -> int:
    """A new task's label count: a generate task's choices (one class for free text), else ``num_labels``, else
    inferred from its data block (:func:`infer_num_labels`), else 2 (a task with no data)."""
    if generation and generation.get("objective") == "generate":
        return len(generation.get("choices") or ()) or 1
    if num_labels is not None:
        return num_labels
    return 2 if block is None else infer_num_labels(task, block, ".")


def infer_num_labels(task: str, block: dict[str, Any], base_dir: str | os.PathLike[str]) -> int:
    """The new task's label count: known to the source (planted, catalog), named by ``labels``, or the
    largest label of any split + 1. DataError asking for ``--labels`` when none works."""
    known = _KNOWN_COUNTS.get(block["source"])
    if known is not None:
        try:
            return known(block)
        except (ImportError, ValueError, TaskgraphError):
            pass  # fall through to reading the data
    names = block.get("labels")
    if isinstance(names, list) and len(names) >= 2:
        return len(names)
    try:
        source = build_source(
            TaskSpec.model_validate({"name": task, "num_labels": PROBE_LABELS, "data": block}), base_dir
        )
        top = max(max(source.load(split).labels) for split in ("train", "val", "test"))
    except (TaskgraphError, ValueError) as exc:
        raise DataError(
            f"task {task!r}: cannot tell its number of labels from the data ({exc}); give --labels N"
        ) from None
    if top < 1:
        raise DataError(
            f"task {task!r}: every label in its data is {top}; a task needs at least 2 labels "
            f"(give --labels N if some labels are absent)"
        )
    return top + 1


def infer_family(block: dict[str, Any]) -> str | None:
    """The task family a catalog task declares (None for other sources or when unknown)."""
    if block.get("source") != "catalog":
        return None
    try:
        return str(_catalog_entry(block).family)
    except (ImportError, TaskgraphError):
        return None
