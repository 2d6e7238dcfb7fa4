"""``adapt_run``: add a new task to a trained run from a few of its examples (or none), into a new run dir.

    result = adapt_run("runs/planted", task="planted-21", data={"source": "planted", "task": 21},
                       shots=16, mode="routing", out_dir="runs/planted-21")   # or: taskgraph adapt ...

Steps, the same for every mode (see :mod:`taskgraph.adapt.modes` for what each mode trains):

1. load the run's final model; add the task (:meth:`~TaskGraphModel.add_task_to_learn`, or
   :meth:`~TaskGraphModel.add_task_from_relations` with relations for the graph router);
2. draw the shots: ``shots`` train examples, class-stratified and seeded (:mod:`taskgraph.adapt.shots`);
3. phase 1 (not zero-shot): ``steps`` AdamW steps (no weight decay, constant learning rate, the run's
   gradient clip) on the shots, training the mode's entries and the new head jointly, the loss being
   cross-entropy + the router's regularizer; batches of ``min(shots, training.batch_size)`` in seeded
   epoch order;
4. phase 2: the new head is refit from scratch on the frozen model's pooled features of the same shots
   (:func:`~taskgraph.adapt.head_fit.fit_head`, identical in every mode);
5. the val and test splits of the task are scored (accuracy, macro-F1), and the run dir is written.

A generative task (``generation={"objective": "generate", ...}``: ``taskgraph adapt --objective generate``)
reads the same protocol without a head: there is nothing to refit, so phase 1 trains the mode's entries alone
on the shots' target NLL (mean per example, as training does; the router's regularizer added) and phase 2 is
skipped. ``full`` / ``routing`` / ``mhr-mu`` / ``zero-shot`` keep their meaning — which adapters and which
routing move — since the routing is what conditions the language model here; zero-shot is then the routed
model as the relations give it, with no step at all. The shots are drawn stratified by label (a ``choices``
task's choice; one class for free text), and the scores are those of ``taskgraph eval``
(:mod:`taskgraph.eval.generative`): a ``choices`` task's accuracy and macro-F1 by rank classification, a
free-text task's exact match, token F1 and ROUGE-L.

The output is a run dir that ``taskgraph eval`` / ``taskgraph predict`` read::

    OUT/spec.yaml     the source run's spec with the new task appended (its data block resolved)
    OUT/model/        save_pretrained of the adapted model
    OUT/train.json    {"base_dir": the source run's data folder, "adapted_from", "task", "mode"}
    OUT/adapt.json    everything about the adaptation (see :func:`adapt_run`)

The folder is built beside ``OUT`` and renamed into place, so ``OUT`` is either the old state or the
new one.

The pieces live beside this module: the new task (:mod:`taskgraph.adapt.new_task`), the folder written
(:mod:`taskgraph.adapt.adapted_run`); phase 1 is here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from taskgraph.adapt.adapted_run import ADAPT_JSON, MODEL, SPEC, SUMMARY, write_adapted_run
from taskgraph.adapt.data import infer_family, new_task_labels, resolve_block
from taskgraph.adapt.modes import (
    AdaptationPlan,
    Trainable,
    check_mode,
    plan_for,
    trainable_entries,
)
from taskgraph.adapt.new_task import (
    add_new_task,
    load_task_splits,
    new_task_relations,
    refit_head,
    subset_rows,
)
from taskgraph.adapt.shots import label_counts, stratified_shots
from taskgraph.data import TaskData, collate, tokenizer_pad_id
from taskgraph.errors import TaskgraphError, opt
from taskgraph.eval.run_eval import recorded_base_dir, score_split
from taskgraph.model import TaskGraphModel, forward_batch
from taskgraph.model.checkpoint import read_manifest
from taskgraph.model.device import resolve_device
from taskgraph.model.rundir import find_model_dir
from taskgraph.run_folder import claim_output_run
from taskgraph.spec.router_kinds import DEFAULT_ROUTER
from taskgraph.threads import check_threads, torch_threads


class AdaptError(TaskgraphError):
    """The adaptation cannot run: the output folder is taken, the loss diverged, ..."""


@dataclass
class AdaptResult:
    """What :func:`adapt_run` did.

    Args:
        out_dir: the adapted run dir.
        task, mode, shots: what was adapted, how, on how many examples.
        test: ``{"accuracy", "macro_f1", "n"}`` of the new task on its test split (``val`` likewise).
        seconds: wall time of the adaptation proper (phases 1 and 2).
        trainable: encoder-side entries phase 1 trained (0 for zero-shot; the head is counted apart).
        record: the whole ``adapt.json``.
        kept: what taskgraph did not write in the adapted run folder it replaced (``overwrite``), kept there.
    """

    out_dir: Path
    task: str
    mode: str
    shots: int
    test: dict[str, Any]
    seconds: float
    trainable: int
    val: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict, repr=False)
    kept: list[str] = field(default_factory=list)


def adapt_run(
    run_dir: str | os.PathLike[str],
    *,
    task: str,
    data: Mapping[str, Any],
    shots: int,
    mode: str,
    out_dir: str | os.PathLike[str],
    num_labels: int | None = None,
    relate: Mapping[str, float] | None = None,
    steps: int = 100,
    lr: float | None = None,
    seed: int = 0,
    device: str = "cpu",
    base_dir: str | os.PathLike[str] | None = None,
    family: str | None = None,
    overwrite: bool = False,
    generation: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> AdaptResult:
    """Adapt the run in ``run_dir`` to the new task ``task`` and write the adapted run to ``out_dir``.

    Args:
        run_dir: a run dir (``taskgraph train --out RUN``) or a model folder.
        task: the new task's name (not a task of the run).
        data: the new task's data block (``{source: ..., ...}``, as in a spec).
        shots: training examples of the new task to adapt on.
        mode: ``full`` | ``routing`` | ``mhr-mu`` | ``zero-shot`` (:func:`~taskgraph.adapt.supported_modes`).
        out_dir: the adapted run dir; must not exist (or be empty) unless ``overwrite``.
        num_labels: the new task's label count (default: inferred from the data).
        relate: ``{existing task: weight in [0, 1]}``: the new node's relations (graph router only;
            required for zero-shot; other modes default to every trained task at ``relations.density``).
        steps: phase-1 steps (ignored by zero-shot). (default: ``100``)
        lr: one learning rate for every phase-1 group (default: the run's ``training.lr`` per group).
        seed: seeds the shots, the new row / head initialisation and phase 1.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        base_dir: where relative paths of ``data`` resolve (default: the current directory).
        family: the new task's family (evaluation metadata; default: the catalog's, for a catalog task).
        overwrite: replace the adapted run in ``out_dir`` (only a folder taskgraph marked as an adapt run).
        generation: the new task's generative keys (``{"objective": "generate", "template", "choices",
            "max_new_tokens", "stop"}``, as a spec's task gives them) on a language-model base; no head (see the
            module docstring). (default: a classification task)
        threads: torch's CPU threads while it adapts; None (default) takes the cores the machine's load leaves
            free (:mod:`taskgraph.threads`); the caller's count is restored after.

    Raises:
        ModelError: an unsupported (router, mode) pair, a taken task name, a bad ``relate``.
        DataError: unreadable data, too few examples. CheckpointError: no run in ``run_dir``.
        OutputPathError, RunLockedError: ``out_dir`` is taken, is (or is inside, or above) the source run, or
            another process writes into it. AdaptError: phase 1 diverged.
    """
    started = time.perf_counter()
    run, out = Path(run_dir), Path(out_dir)
    if steps < 0:
        raise AdaptError(f"steps must be 0 or more, got {steps}")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):
        raise AdaptError(f"lr must be a positive number, got {lr}")
    check_threads(threads)
    model_dir = find_model_dir(run)
    with torch_threads(threads), claim_output_run(out, kind="adapt", sources=(run, model_dir), overwrite=overwrite):
        kind = read_manifest(model_dir)["spec"].get("router", {}).get("kind", DEFAULT_ROUTER)
        check_mode(kind, mode)
        plan = plan_for(kind, mode)
        dev = resolve_device(device)

        model = TaskGraphModel.from_pretrained(model_dir, device=dev)
        run_base = recorded_base_dir(run, model_dir)
        block = resolve_block(data, base_dir if base_dir is not None else Path.cwd(), model.spec)
        generative = bool(generation) and generation.get("objective") == "generate"
        labels = new_task_labels(task, block, generation, num_labels)
        family = family if family is not None else infer_family(block)
        relations = new_task_relations(model, plan, relate, task)

        skills_before = model.skills
        index = add_new_task(
            model, plan, task, labels, relations, seed=seed, family=family, data=block, generation=generation
        )
        splits = load_task_splits(model, model.spec.tasks[index], index)
        rows = stratified_shots(splits["train"].labels.tolist(), shots, labels, seed, task=f"task {task!r}")
        shot_data = subset_rows(splits["train"], rows)
        pad_id = tokenizer_pad_id(model.tokenizer)

        tick = time.perf_counter()
        entries = trainable_entries(model, plan, index)
        losses = (
            []
            if mode == "zero-shot" or steps == 0
            else _phase_one(model, plan, entries, index, shot_data, steps=steps, lr=lr, seed=seed, pad_id=pad_id)
        )
        head = None if generative else refit_head(model, index, shot_data, labels)  # a generative task has none
        seconds = time.perf_counter() - tick

        scores = {split: score_split(model, splits[split], pad_id=pad_id) for split in ("val", "test")}
        trainable = sum(e.count() for e in entries)
        lrs = _learning_rates(model, lr)
        record = {
            "source_run": str(run),
            "source_model_dir": str(model_dir),
            "task": task,
            "mode": mode,
            "router": kind,
            "num_labels": labels,
            "family": family,
            "data": block,
            "task_id": index,
            "shots": shots,
            "shot_rows": rows,
            "shot_counts": label_counts(splits["train"].labels.tolist(), rows, labels),
            "steps": len(losses),
            "lr": lrs if losses else None,
            "seed": seed,
            "device": str(dev),
            "batch_size": _batch_size(model, len(rows)) if losses else None,
            "relate": relations if plan.add == "relations" else None,
            "own_skill": plan.own_skill,
            "skill_init": plan.skill_init if model.skills != skills_before else None,
            "router_mode_phase1": ("train" if plan.router_train else "eval") if losses else None,
            "other_tasks_change": bool(losses) and plan.other_tasks_change,
            "trainable": trainable,
            "trainable_parameters": {e.name: e.count() for e in entries},
            "head": head,
            "objective": "generate" if generative else "classify",
            "loss": {"first": losses[0], "last": losses[-1]} if losses else None,
            "val": scores["val"],
            "test": scores["test"],
            "seconds": seconds,
        }
        record["total_seconds"] = time.perf_counter() - started
        kept = write_adapted_run(out, model, record, run_base)
        return AdaptResult(out, task, mode, shots, scores["test"], seconds, trainable, scores["val"], record, kept)


def _learning_rates(model: TaskGraphModel, lr: float | None) -> dict[str, float]:
    rates = model.spec.training.lr
    if lr is not None:
        return {"router": lr, "adapters": lr, "heads": lr}
    return {"router": rates.router, "adapters": rates.adapters, "heads": rates.heads}


def _batch_size(model: TaskGraphModel, shots: int) -> int:
    return max(1, min(shots, model.spec.training.batch_size))


def _phase_one(
    model: TaskGraphModel,
    plan: AdaptationPlan,
    entries: list[Trainable],
    task: int,
    shots: TaskData,
    *,
    steps: int,
    lr: float | None,
    seed: int,
    pad_id: int,
) -> list[float]:
    """Train the plan's entries and the new head jointly on the shots; returns the loss of every step."""
    head = [] if model.spec.tasks[task].generative else list(model.heads.heads[task].parameters())
    rates = _learning_rates(model, lr)
    groups = [{"params": [e.param for e in entries if e.group == g], "lr": rates[g]} for g in ("router", "adapters")]
    groups = [g for g in groups if g["params"]] + ([{"params": head, "lr": rates["heads"]}] if head else [])
    before = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in [e.param for e in entries] + head:
        p.requires_grad_(True)
    hooks = [h for h in (e.hook() for e in entries) if h is not None]
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    trained = [p for g in groups for p in g["params"]]
    clip = model.spec.training.grad_clip or math.inf
    size, n = _batch_size(model, len(shots)), len(shots)
    generator = torch.Generator().manual_seed(seed)
    order, position, losses = torch.randperm(n, generator=generator), 0, []
    try:
        for step in range(1, steps + 1):
            if position + size > n:
                order, position = torch.randperm(n, generator=generator), 0
            rows = order[position : position + size].tolist()
            position += size
            batch = collate([(task, r) for r in rows], {task: shots}, pad_id).to(model.device)
            model.train()
            model.router.train(plan.router_train)
            out = forward_batch(model, batch)
            loss = out.loss + model.router.regularizer()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise AdaptError(
                    f"adaptation stopped at step {step}: the loss is {value}; lower {opt('lr')} "
                    f"(the learning rates were {rates})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained, clip)
            optimizer.step()
            losses.append(value)
    finally:
        for h in hooks:
            h.remove()
        for p in model.parameters():
            p.requires_grad_(before.get(id(p), True))
        model.eval()
    return losses


__all__ = [  # with the pieces it re-exports from new_task and adapted_run (importers read them here)
    "ADAPT_JSON",
    "MODEL",
    "SPEC",
    "SUMMARY",
    "AdaptError",
    "AdaptResult",
    "adapt_run",
    "add_new_task",
    "load_task_splits",
    "refit_head",
    "subset_rows",
    "write_adapted_run",
]
