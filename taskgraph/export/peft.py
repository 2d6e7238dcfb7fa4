"""Export a run's tasks as PEFT LoRA folders: ``taskgraph export RUN --format peft --task NAME | --all-tasks --out DIR``.

Each task is folded exactly (:meth:`TaskGraphModel.fold`: its routing collapses every inventory into one LoRA,
gate folded in, closed layers dropped) and written as a folder ``peft.PeftModel.from_pretrained`` loads
(:mod:`taskgraph.model.peft_folder`). PEFT has no head for a mean-pooled classifier, so the task's head sits
**beside** the adapter (docs/methods.md, "PEFT folder layout")::

    DIR/adapter_config.json, adapter_model.safetensors   the task's LoRA (PEFT names; rank padded to one r)
    DIR/head.safetensors       weight [C, D], bias [C]: logits = head(pool(base(...).last_hidden_state))
    DIR/taskgraph.json         task, label count and names, pooling, max_length, the base's fingerprint, where
                               the base is
    DIR/base/                  the base, unless it is a local folder of the user's: a base built from a config
                               (random init), one from an installed package (``package:...``: a path into this
                               machine's site-packages) or warm-started (an encoder-decoder whose decoder's
                               cross-attention is new), with save_pretrained + tokenizer, so the folder is
                               self-contained; a local folder is named, not copied

A run whose base is quantized (``model.quantize``) exports the same exact LoRA; the base it writes or names is the
full-precision **source** (a config base is built again from its config and seed, not de-quantized), and
``taskgraph.json`` records ``"quantize"`` beside the base, so a user quantizes it as the run did, or not.

A written base is named **relatively** in ``adapter_config.json`` (``base_model_name_or_path: "base"``, relative to
``DIR``, the export's root), so the folder loads on another machine with nothing but PEFT and transformers — from
inside ``DIR``, ``AutoPeftModelForFeatureExtraction.from_pretrained(".")`` (or ``"<task>"`` with ``--all-tasks``), or
from anywhere ``PeftModel.from_pretrained(AutoModel.from_pretrained(DIR/base), DIR)``.

PEFT's ``task_type`` says which model class the adapter belongs to. A classifier's head is taskgraph's own (a
linear map of a pooled hidden state, written beside the adapter), not the ``classifier`` / ``score`` module PEFT's
``SEQ_CLS`` expects inside ``AutoModelForSequenceClassification``, so a classifier on an encoder (or a decoder
trunk) is ``FEATURE_EXTRACTION``: PEFT gives the adapted hidden states and the head is applied to their pool. A
task on a language-model base (generative, or a classifier of a mixed run) takes the LM's type: ``CAUSAL_LM`` /
``SEQ_2_SEQ_LM``.

A **generative** task (a causal LM or an encoder-decoder base) has no head: its folder is the LoRA of the language
model, with PEFT's ``task_type`` (``CAUSAL_LM`` / ``SEQ_2_SEQ_LM``), and ``taskgraph.json`` says how to generate as
taskgraph does (the end token, left padding for a decoder, ``max_new_tokens``, ``stop``, the template and choices)::

    base = AutoModelForCausalLM.from_pretrained(DIR/base)        # or the named base
    model = PeftModel.from_pretrained(base, DIR)                  # greedy generate() writes the routed model's tokens

A base written from a config gets the end and padding tokens in its ``generation_config``, so a plain
``generate(input_ids, attention_mask, max_new_tokens=...)`` stops where taskgraph's does.

With ``--all-tasks`` every task gets ``DIR/<task>/`` (loadable as named adapters of one ``PeftModel``:
``from_pretrained(base, DIR/a, adapter_name="a")``, ``load_adapter(DIR/b, adapter_name="b")``), the base is
written once to ``DIR/base/`` and ``DIR/taskgraph.json`` lists the tasks.

``DIR`` is claimed and locked as :mod:`taskgraph.run_folder` claims a run, built in a staging folder, marked as a
``peft-export`` (``DIR/.taskgraph-run.json``: its identity and the entries it wrote) and renamed into place. It
may replace only an earlier export that marker identifies, holding nothing the export did not write: a folder
that merely looks like one (a ``taskgraph.json`` of any content), any other folder that is not empty, and an
export written before exports were marked are refused, and nothing in them is touched.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors.torch
import torch

from taskgraph.atomic import staging_dir, write_bytes, write_text
from taskgraph.errors import ExportError, opt
from taskgraph.model import FoldedLoRA, TaskGraphModel, unload
from taskgraph.model.base import PACKAGE_PREFIX, load_base, resolve_path
from taskgraph.model.checkpoint import base_fingerprint, read_manifest
from taskgraph.model.fold import save_plain
from taskgraph.model.lm_base import end_token_id
from taskgraph.model.peft_folder import PeftLoRA, write_peft_folder
from taskgraph.model.predict import label_names
from taskgraph.model.rundir import find_model_dir
from taskgraph.run_folder import (
    MARKER,
    OutputFolder,
    claim_output_run,
    foreign_entries,
    holds_entries,
    publish_run,
)

META, HEAD, BASE = "taskgraph.json", "head.safetensors", "base"
PEFT_TASK_TYPES = {"causal": "CAUSAL_LM", "seq2seq": "SEQ_2_SEQ_LM"}  # a task's PEFT task_type on an LM base
ENCODER_TASK_TYPE = "FEATURE_EXTRACTION"  # a classifier on a plain base: PEFT gives hidden states, our head pools
TRUNK = {None: "base", "causal": "base.base_model", "seq2seq": "base.get_encoder()"}  # what a head's pool reads
PADDING = {"causal": "left", "seq2seq": "right"}  # how prompts are padded for generate
FORMAT = "taskgraph-peft-export"
KIND = "peft-export"  # the export's kind in its marker (taskgraph.run_folder.EXPORT_KINDS)


@dataclass
class PeftExport:
    """What :func:`export_peft` wrote: the folder, its tasks, and where the base model is."""

    out: Path
    tasks: list[str]
    base: str
    ranks: dict[str, int]


def peft_lora(folded: FoldedLoRA, base_name: str | None, task_type: str | None = None) -> PeftLoRA:
    """A folded task as one PEFT LoRA: every module padded to the largest rank (exact), ``lora_alpha = s · r``."""
    if not folded.modules:
        raise ExportError(
            f"task {folded.task!r} has every adapted layer's gate closed: its adapter is empty and PEFT "
            "cannot load a LoRA with no target module; the base model alone serves it"
        )
    rank = max(m.rank for m in folded.modules.values())
    scaling = {m.scaling for m in folded.modules.values()}
    assert len(scaling) == 1, scaling  # one adapters.alpha / rank for every module
    modules = {}
    for name, m in folded.modules.items():
        pad = rank - m.rank
        a = torch.cat([m.A, m.A.new_zeros(pad, m.A.shape[1])])  # [r, d_in]
        b = torch.cat([m.B, m.B.new_zeros(m.B.shape[0], pad)], dim=1)  # [d_out, r]
        modules[name] = (a, b)
    fan = {m.fan_in_fan_out for m in folded.modules.values()}
    return PeftLoRA(
        modules,
        rank,
        scaling.pop() * rank,
        fan_in_fan_out=True in fan,
        base_model_name_or_path=base_name,
        task_type=task_type,
    )


def export_peft(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    tasks: Sequence[str] | None = None,
    device: str = "cpu",
) -> PeftExport:
    """Write the tasks of the run in ``run_dir`` as PEFT folders under ``out`` (see the module docstring).

    Args:
        run_dir: a run folder (train, adapt or merge) or a model folder.
        out: the output folder.
        tasks: one task (``out`` is its adapter folder) or None for every task (``out/<task>/``).

    Raises:
        ExportError: ``out`` holds something other than an earlier PEFT export (:func:`check_replaceable_export`);
            a task's adapter is empty.
        OutputPathError, RunLockedError: ``out`` is a run, a source, inside a run, or being written by another
            process. ModelError: an unknown task. CheckpointError: no run in ``run_dir``.
    """
    run = Path(run_dir)
    model_dir = find_model_dir(run)
    with claim_output_run(out, kind=KIND, sources=[run, model_dir], replaceable=check_replaceable_export) as target:
        model = TaskGraphModel.from_pretrained(model_dir, device=device).eval()
        names = list(model.task_names) if tasks is None else [model.task_names[model.task_index(t)] for t in tasks]
        single = tasks is not None and len(names) == 1  # out is the task's adapter folder
        staging = staging_dir(target)
        try:
            base_name, ranks = _write_export(model, model_dir, run, names, staging, target, single)
            publish_run(staging, target, kind=KIND, name=model.spec.name, tasks=names, entries=_entries(staging))
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return PeftExport(target, names, base_name, ranks)


def check_replaceable_export(checked: OutputFolder) -> None:
    """An export goes into an absent or empty folder, or replaces an earlier export: a folder marked as a
    ``peft-export`` that holds nothing but what that export wrote (the entries its marker lists).

    Raises:
        ExportError: saying what the folder holds and what to do (nothing was changed).
    """
    folder = checked.path
    held = holds_entries(folder) if folder.is_dir() else []
    if not held:
        return
    here = f"{opt('out')} {str(folder)!r}"
    if checked.marker is None:
        raise ExportError(
            f"{here} holds {_names(held)} and is not a PEFT export of taskgraph: it carries no export marker "
            f"({MARKER}), and an export replaces only a folder it marked as its own — a folder that merely holds "
            f"a {META}, or an export written by a taskgraph from before exports were marked, is not replaced. "
            "Give a new or empty folder, or delete this one yourself if it is an old export you no longer need "
            "(nothing was changed)"
        )
    foreign = foreign_entries(folder, checked.marker)
    if foreign:
        raise ExportError(
            f"{here} is a PEFT export of taskgraph, but it also holds {_names(foreign)}, which the export did not "
            "write; a new export replaces the whole folder, so move those out of it or give a new folder "
            "(nothing was changed)"
        )


def _names(entries: list[str], shown: int = 6) -> str:
    return ", ".join(entries[:shown]) + (f", ... ({len(entries) - shown} more)" if len(entries) > shown else "")


def _entries(staging: Path) -> list[str]:
    """The names the export wrote directly in its folder (its marker lists them)."""
    return sorted(p.name for p in staging.iterdir())


def _write_export(
    model: TaskGraphModel,
    model_dir: Path,
    run: Path,
    names: list[str],
    staging: Path,
    target: Path,
    single: bool,
) -> tuple[str, dict[str, int]]:
    """Write the export of ``names`` into ``staging`` (to be renamed to ``target``): one adapter folder, or
    (not ``single``) one per task and the index; returns where the base is and each task's rank."""
    fingerprint = read_manifest(model_dir)["base"].get("fingerprint")
    written = base_is_written(model)
    base_name = BASE if written else str(resolve_path(str(model.spec.model.path)).resolve())
    if written:
        save_plain(_with_end_token(_plain_base(model, fingerprint), model), staging / BASE, model.tokenizer)
    ranks = {}
    for name in names:
        folder = staging if single else staging / name
        lora = peft_lora(model.fold(name), base_name, peft_task_type(model))
        write_peft_folder(lora, folder)
        where = {
            "fingerprint": fingerprint,
            "class": type(model.base).__name__,
            "folder": (BASE if single else f"../{BASE}") if written else None,
            "path": base_name,  # as adapter_config.json names it: "base" is relative to the export's root
        }
        if model.spec.model.quantize != "none":
            where["quantize"] = model.spec.model.quantize  # the run trained on this base quantized so
        generative = model.spec.tasks[model.task_index(name)].generative
        (_write_generation if generative else _write_head)(folder, model, name, where, run)
        ranks[name] = lora.rank
    if not single:
        index = {
            "format": FORMAT,
            "version": 1,
            "tasks": names,
            "base": base_name,
            "source_run": str(run),
            "load": "PeftModel.from_pretrained(base, DIR/<task>, adapter_name=<task>), then "
            "load_adapter(DIR/<other>, adapter_name=<other>)",
        }
        write_text(staging / META, json.dumps(index, indent=2) + "\n")
    return str(target / BASE) if written else base_name, ranks


def _plain_base(model: TaskGraphModel, fingerprint: Any) -> torch.nn.Module:
    """The base an export writes: the run's base without adapters, or — quantized — its full-precision source, loaded
    again as the run loaded it (ExportError when that is not the base the run recorded)."""
    if model.spec.model.quantize == "none":
        return unload(model)
    generative = any(t.generative for t in model.spec.tasks)
    source = load_base(model.spec.model, seed=model.spec.training.seed, generative=generative).model
    if fingerprint is not None and base_fingerprint(dict(source.state_dict())) != fingerprint:
        raise ExportError(
            f"the run's base is quantized (model.quantize: {model.spec.model.quantize}) and its full-precision source, "
            "loaded again as its spec says, differs from the base the run recorded (fingerprint); nothing was written"
        )
    return source


def base_is_written(model: TaskGraphModel) -> bool:
    """Whether the export writes the base into ``DIR/base``: every base but a local folder of the user's — one
    built from a config (random init), one in an installed package (a path into this machine's site-packages,
    which another machine lacks) and a warm-started encoder-decoder (its decoder's cross-attention is new,
    seeded; ``model.path`` is only the encoder)."""
    spec = model.spec.model
    packaged = spec.path is not None and str(spec.path).startswith(PACKAGE_PREFIX)
    return spec.config is not None or spec.warm_start is not None or packaged


def peft_task_type(model: TaskGraphModel) -> str:
    """PEFT's ``task_type`` for the adapters of ``model``'s tasks (see the module docstring): the LM's type on a
    language-model base (a generative task or a classifier beside it), ``FEATURE_EXTRACTION`` for a classifier on
    a plain base (its head is ours, beside the adapter)."""
    return ENCODER_TASK_TYPE if model.lm_kind is None else PEFT_TASK_TYPES[model.lm_kind]


def _with_end_token(base: torch.nn.Module, model: TaskGraphModel) -> torch.nn.Module:
    """The unloaded base, its generation config ending and padding where taskgraph's generation does (an LM base)."""
    if model.lm_kind is None:
        return base
    end = end_token_id(model.base, model.tokenizer)
    pad = model.base.config.pad_token_id if isinstance(model.base.config.pad_token_id, int) else end
    base.generation_config.eos_token_id = end
    base.generation_config.pad_token_id = pad
    return base


def _write_generation(folder: Path, model: TaskGraphModel, task: str, base: dict[str, Any], run: Path) -> None:
    """``taskgraph.json`` of a generative task: how to generate as taskgraph does (no head)."""
    spec = model.spec.tasks[model.task_index(task)]
    meta = {
        "format": FORMAT,
        "version": 1,
        "task": task,
        "objective": "generate",
        "model_kind": model.lm_kind,
        "task_type": PEFT_TASK_TYPES[model.lm_kind],
        "max_length": model.spec.model.max_length,
        "end_token_id": end_token_id(model.base, model.tokenizer),
        "padding_side": PADDING[model.lm_kind],
        "max_new_tokens": spec.max_new_tokens,
        "stop": list(spec.stop),
        "template": spec.template,
        "choices": None if spec.choices is None else list(spec.choices),
        "generate": "PeftModel.from_pretrained(AutoModelFor"
        + ("CausalLM" if model.lm_kind == "causal" else "Seq2SeqLM")
        + ".from_pretrained(base), DIR).generate(input_ids, attention_mask, max_new_tokens=max_new_tokens, "
        "eos_token_id=end_token_id); the text is cut before the first stop string",
        "base": base,
        "source_run": str(run),
    }
    write_text(folder / META, json.dumps(meta, indent=2) + "\n")


def _write_head(folder: Path, model: TaskGraphModel, task: str, base: dict[str, Any], run: Path) -> None:
    head = model.heads.heads[model.task_index(task)]
    tensors = {"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()}
    write_bytes(folder / HEAD, safetensors.torch.save(tensors, metadata={"format": "pt"}))
    meta = {
        "format": FORMAT,
        "version": 1,
        "task": task,
        "objective": "classify",
        "task_type": peft_task_type(model),
        "num_labels": int(head.out_features),
        "labels": label_names(model, model.task_index(task)),
        "pooling": model.spec.model.pooling,
        "max_length": model.spec.model.max_length,
        "head": HEAD,
        "logits": f"head.weight @ pool({TRUNK[model.lm_kind]}(input_ids, attention_mask).last_hidden_state) "
        "+ head.bias; labels[argmax] names the predicted label (labels is null when the task named none)",
        "base": base,
        "source_run": str(run),
    }
    write_text(folder / META, json.dumps(meta, indent=2) + "\n")
