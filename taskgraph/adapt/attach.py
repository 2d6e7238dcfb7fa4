"""``attach_run``: a trained graph-router run gains a task from what is known about it, into a new run dir.

    result = attach_run("runs/comp", task="new", out_dir="runs/comp-new", description="...", examples=[...])
    # or: taskgraph attach runs/comp --task new --description "..." --examples inputs.txt --out runs/comp-new

No gradient step: the new task's description / examples / relations become its node features, the GNN routes it
(:mod:`taskgraph.model.attach`; relations not given are computed from the features). A generative task is served
at once; a classification task's head is fit on ``shots`` labelled examples of its data (the head fit of
``taskgraph adapt``; with no data its head stays unfit, and the record says so). With ``data`` the val and test
splits are scored; with a data block and no ``examples``, the router's ``router.examples`` first training inputs are
read as the examples (their labels unread), and a source that gives its description as token ids
(:meth:`~taskgraph.data.base.Source.description_ids`) gives the description when none is passed.

The output is a run dir as ``taskgraph adapt`` writes (``spec.yaml``, ``model/``, ``train.json``, and
``adapt.json`` with ``mode: attach``), built beside ``OUT`` and renamed into place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.adapt.data import infer_family, new_task_labels, resolve_block
from taskgraph.adapt.run import load_task_splits, refit_head, subset_rows, write_adapted_run
from taskgraph.adapt.shots import stratified_shots
from taskgraph.data import tokenizer_pad_id
from taskgraph.data.base import build_source
from taskgraph.errors import ModelError, validation_problems
from taskgraph.eval.run_eval import recorded_base_dir, score_split
from taskgraph.model import TaskGraphModel
from taskgraph.model.device import resolve_device
from taskgraph.model.new_tasks import task_entry
from taskgraph.model.rundir import find_model_dir
from taskgraph.model.task_features import example_inputs
from taskgraph.run_folder import claim_output_run
from taskgraph.spec.models import TaskSpec
from taskgraph.threads import check_threads, torch_threads

DEFAULT_SHOTS = 16  # labelled examples a classification task's head is fit on


@dataclass
class AttachResult:
    """What :func:`attach_run` did: the run dir, the task, its relations, its scores (None without data)."""

    out_dir: Path
    task: str
    relations: dict[str, float]
    test: dict[str, Any] | None
    record: dict[str, Any]
    kept: list[str]


def attach_run(
    run_dir: str | os.PathLike[str],
    *,
    task: str,
    out_dir: str | os.PathLike[str],
    description: str | Sequence[int] | None = None,
    examples: Sequence[str | Sequence[int]] | None = None,
    relate: Mapping[str, float] | None = None,
    k: int | None = None,
    data: Mapping[str, Any] | None = None,
    generation: Mapping[str, Any] | None = None,
    num_labels: int | None = None,
    shots: int = DEFAULT_SHOTS,
    seed: int = 0,
    base_dir: str | os.PathLike[str] | None = None,
    family: str | None = None,
    device: str = "cpu",
    overwrite: bool = False,
    threads: int | None = None,
) -> AttachResult:
    """Attach task ``task`` to the graph-router run ``run_dir`` and write the result to ``out_dir``.

    Args:
        run_dir: a run dir (``taskgraph train --out RUN``) or a model folder, trained with ``router.kind: graph``.
        task: the new task's name.
        out_dir: the new run dir; must not exist (or be empty) unless ``overwrite``.
        description: its description (text, or the base's token ids).
        examples: a few of its unlabeled inputs (texts, or token-id lists).
        relate: ``{trained task: weight in [0, 1]}``; default: computed from the description / examples.
        k: how many nearest tasks computed relations keep (default: ``relations.top_k``).
        data: its data block (as in a spec): scored on val and test; a classification head is fit on its shots.
        generation: its generative keys (``{"objective": "generate", ...}``), as :func:`~taskgraph.adapt.adapt_run`.
        num_labels: a classification task's labels (default: inferred from the data; 2 without data).
        shots: labelled training examples a classification head is fit on. (default: ``16``)
        seed: draws those shots.
        base_dir: where relative paths of ``data`` resolve (default: the current directory).
        family: the task's family (evaluation metadata).
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        overwrite: replace an attached / adapted run in ``out_dir``.
        threads: torch's CPU threads (default: those the machine's load leaves free).

    Raises:
        ModelError: not a graph router, evidence the router does not read, nothing to route from, a taken name.
        DataError: unreadable data. CheckpointError: no run in ``run_dir``. OutputPathError, RunLockedError: ``out_dir``.
    """
    started = time.perf_counter()
    run, out = Path(run_dir), Path(out_dir)
    check_threads(threads)
    model_dir = find_model_dir(run)
    with torch_threads(threads), claim_output_run(out, kind="adapt", sources=(run, model_dir), overwrite=overwrite):
        model = TaskGraphModel.from_pretrained(model_dir, device=resolve_device(device))
        block = (
            None if data is None else resolve_block(data, base_dir if base_dir is not None else Path.cwd(), model.spec)
        )
        generative = bool(generation) and generation.get("objective") == "generate"
        labels = new_task_labels(task, block, generation, num_labels)
        index = len(model.task_names)  # the id the task will get
        splits = None
        if block is not None:
            family = family if family is not None else infer_family(block)
            entry = _task_entry(task, labels, block, generation)
            splits = load_task_splits(model, entry, index)
            if description is None:
                description = build_source(entry, ".").description_ids()
            if examples is None and "examples" in model.router.side_kinds:  # the data's inputs, labels unread
                examples = example_inputs(splits["train"], model.router.params.examples)
        attached = model.attach_task(
            task,
            description=description,
            examples=examples,
            relations=relate,
            k=k,
            num_labels=labels,
            family=family,
            data=block,
            generation=generation,
        )
        assert attached == index, (attached, index)
        head = None
        if not generative and splits is not None:
            rows = stratified_shots(splits["train"].labels.tolist(), shots, labels, seed, task=f"task {task!r}")
            head = refit_head(model, index, subset_rows(splits["train"], rows), labels)
        scores = (
            {
                split: score_split(model, splits[split], pad_id=tokenizer_pad_id(model.tokenizer))
                for split in ("val", "test")
            }
            if splits is not None
            else {"val": None, "test": None}
        )
        relations = {a if b == task else b: float(w) for a, b, w in model.spec.relations.declared if task in (a, b)}
        record = {
            "source_run": str(run),
            "source_model_dir": str(model_dir),
            "task": task,
            "mode": "attach",
            "router": model.spec.router.kind,
            "features": model.router.params.features,
            "task_id": index,
            "evidence": {
                "description": description is not None,
                "examples": examples is not None,
                "relations": "given" if relate else "computed",
            },
            "relations": relations,
            "objective": "generate" if generative else "classify",
            "num_labels": labels,
            "data": block,
            "head": head if head is not None else (None if generative else "unfit: no data to fit it on"),
            "steps": 0,
            "val": scores["val"],
            "test": scores["test"],
        }
        record["total_seconds"] = time.perf_counter() - started
        kept = write_adapted_run(out, model, record, recorded_base_dir(run, model_dir))
        return AttachResult(out, task, relations, scores["test"], record, kept)


def _task_entry(task: str, labels: int, block: Mapping[str, Any], generation: Mapping[str, Any] | None) -> TaskSpec:
    """The new task as a spec entry (to read and encode its data before it joins the model)."""
    try:
        return TaskSpec.model_validate(task_entry(task, labels, data=block, generation=generation))
    except ValueError as exc:
        raise ModelError(f"cannot attach task {task!r}: {validation_problems(exc, root='the task')}") from None
