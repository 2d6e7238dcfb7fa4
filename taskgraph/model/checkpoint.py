"""Save and load a :class:`~taskgraph.model.TaskGraphModel`: safetensors + a JSON manifest.

A checkpoint folder holds

* ``model.safetensors`` — the trainable state (adapter inventories, router, heads), plus the base
  weights when the base was built from a ``config`` (a random init must come back bit for bit) and is not
  quantized (``model.quantize``: the base is never saved, loading quantizes it again from its source);
* ``manifest.json`` — format version, the spec, task names and label counts, the layout
  (L, H, K, r), the adapted module names, a fingerprint of the base model, the name, shape and
  sha256 of every saved tensor's file, and library versions;
* ``tokenizer/`` — the model's tokenizer, when it has one.

Files are written atomically, the manifest last, so a folder whose manifest is readable has the
weights it describes. Loading reads only JSON and safetensors (nothing is unpickled) and checks
everything it can — a weight holding NaN or infinity is refused too, since every later step (a merge's SVD,
an evaluation's metrics) would fail on it or quietly compute garbage: every failure is a
:class:`~taskgraph.errors.CheckpointError` saying what is wrong with which file. The folder's file names and the
reading and checking of each file are :mod:`taskgraph.model.checkpoint_files`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors.torch
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from taskgraph.atomic import replace_directory, write_bytes, write_text
from taskgraph.errors import CheckpointError, TaskgraphError, validation_problems
from taskgraph.model.checkpoint_files import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    TOKENIZER_DIR,
    WEIGHTS,
    _check_file_size,
    _compare,
    _read_weights,
    check_finite,
    read_header,
    read_manifest,
)
from taskgraph.model.heads import head_widths
from taskgraph.model.quantize import dense, source_fingerprint
from taskgraph.spec.models import Spec

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel

SAMPLE = 256  # values per tensor that enter the base fingerprint


# ----------------------------------------------------------------------------- which tensors
def _adapter_prefixes(model: TaskGraphModel) -> list[str]:
    return [f"base.{name}." for name in model.adapted_names]


def plain_base_state(model: TaskGraphModel) -> dict[str, Tensor]:
    """The frozen base weights under the names they have in the plain (un-adapted) base model."""
    prefixes = _adapter_prefixes(model)
    out: dict[str, Tensor] = {}
    for key, value in model.state_dict().items():
        if not key.startswith("base."):
            continue
        owner = next((p for p in prefixes if key.startswith(p)), None)
        if owner is None:
            out[key[len("base.") :]] = value
        elif key.startswith(owner + "base."):  # the wrapped linear: "<name>.base.weight" -> "<name>.weight"
            out[owner[len("base.") :] + key[len(owner + "base.") :]] = value
    return out


def checkpoint_state(model: TaskGraphModel, with_base: bool) -> dict[str, Tensor]:
    """The state a checkpoint holds: adapters, router, heads (and every base tensor if ``with_base``)."""
    prefixes = _adapter_prefixes(model)
    state = model.state_dict()
    keep: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith(("router.", "heads.")):
            keep[key] = value
        elif key.startswith("base."):
            owner = next((p for p in prefixes if key.startswith(p)), None)
            adapter_own = owner is not None and not key.startswith(owner + "base.")
            if adapter_own or with_base:
                keep[key] = value
    return keep


def base_fingerprint(state: dict[str, Tensor]) -> dict[str, Any]:
    """A fingerprint of a plain base state dict: its structure and a sample of its values.

    ``structure`` hashes every tensor's name and shape; ``sample`` hashes the first 256 values of
    every tensor rounded to bfloat16, so the same model loaded in float32 or bfloat16, on any
    device, has the same fingerprint, and a different (or differently fine-tuned) model does not.
    A quantized tensor enters with its de-quantized values (a quantized base is identified by its source:
    :func:`model_fingerprint`).
    """
    names = sorted(state)
    structure = hashlib.sha256(json.dumps([[n, list(state[n].shape)] for n in names]).encode())
    sample = hashlib.sha256()
    for name in names:
        values = dense(state[name].detach()).reshape(-1)[:SAMPLE].to("cpu", torch.float32).to(torch.bfloat16)
        sample.update(values.view(torch.int16).numpy().tobytes())
    return {"tensors": len(names), "structure": structure.hexdigest(), "sample": sample.hexdigest()}


def model_fingerprint(model: TaskGraphModel) -> dict[str, Any]:
    """The fingerprint of ``model``'s base: of its source weights when it was quantized (taken before quantizing,
    :func:`~taskgraph.model.quantize.source_fingerprint`), so a run and its quantized twin name the same base."""
    return source_fingerprint(model.base) or base_fingerprint(plain_base_state(model))


# ----------------------------------------------------------------------------- save
def _untied(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CPU, contiguous tensors; a tensor sharing storage with an earlier one is cloned (safetensors needs that)."""
    seen: set[tuple[int, str]] = set()
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        ref = (tensor.untyped_storage().data_ptr(), str(tensor.device))
        if ref in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add((tensor.untyped_storage().data_ptr(), str(tensor.device)))
        out[key] = tensor
    return out


def _versions() -> dict[str, str]:
    out = {}
    for package in ("taskgraph", "torch", "transformers", "safetensors"):
        try:
            out[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            out[package] = "unknown"
    return out


def _save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """Save the tokenizer into ``directory/tokenizer`` via a temp folder renamed into place."""
    staging = Path(tempfile.mkdtemp(prefix=".tokenizer.", dir=directory))
    try:
        tokenizer.save_pretrained(str(staging))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_directory(staging, directory / TOKENIZER_DIR)


def save_checkpoint(model: TaskGraphModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``directory`` (created if needed); returns the folder."""
    folder = Path(directory)
    spec = model.spec
    with_base = spec.model.config is not None and spec.model.quantize == "none"
    state = _untied(checkpoint_state(model, with_base))
    data = safetensors.torch.save(state, metadata={"format": "pt", "producer": FORMAT})
    write_bytes(folder / WEIGHTS, data)
    if model.tokenizer is not None:
        _save_tokenizer(model.tokenizer, folder)
    elif (folder / TOKENIZER_DIR).exists():
        shutil.rmtree(folder / TOKENIZER_DIR)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": spec.model_dump(mode="json"),
        "tasks": [{"name": n, "num_labels": c} for n, c in zip(model.task_names, model.num_labels)],
        "layout": layout_of(model),
        "adapted_modules": model.adapted_names,
        "base": {
            "class": type(model.base).__name__,
            "config_class": type(getattr(model.base, "config", None)).__name__,
            "weights_included": with_base,
            "quantize": spec.model.quantize,
            "fingerprint": model_fingerprint(model),
        },
        "weights": {
            "file": WEIGHTS,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensors": {k: list(v.shape) for k, v in state.items()},
        },
        "tokenizer": TOKENIZER_DIR if model.tokenizer is not None else None,
        "versions": _versions(),
    }
    write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folder


def layout_of(model: TaskGraphModel) -> dict[str, Any]:
    """The manifest's ``layout``: adapted layers L, splits H, skills K, rank r, alpha, linearized."""
    adapters = model.spec.adapters
    return {
        "layers": model.num_layers,
        "heads": adapters.splits,
        "skills": model.skills,
        "rank": adapters.rank,
        "alpha": adapters.alpha,
        "linearized": adapters.linearized,
    }


# ----------------------------------------------------------------------------- load
def _spec_of(path: Path, manifest: dict[str, Any]) -> Spec:
    try:
        spec = Spec.model_validate(manifest["spec"])
    except ValidationError as exc:
        lines = validation_problems(exc, limit=5)
        raise CheckpointError(f"{path}: the spec in the manifest is not valid here: {lines}") from None
    tasks = [{"name": t.name, "num_labels": width} for t, width in zip(spec.tasks, head_widths(spec.tasks))]
    if manifest["tasks"] != tasks:
        raise CheckpointError(f"{path}: the manifest's task list {manifest['tasks']} does not match its spec's {tasks}")
    return spec


def _check_size(folder: Path, spec: Spec, manifest: dict[str, Any], header: dict[str, tuple[int, ...]]) -> None:
    """Refuse a manifest whose spec describes a model far larger than the tensors the file holds, or one that does
    not fit this machine's memory, before anything is allocated (:mod:`taskgraph.model.footprint`)."""
    from taskgraph.model.footprint import MEMORY_CHECK_ENV, GiB, available_memory, plan_model

    try:
        plan = plan_model(spec)
    except TaskgraphError as exc:
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: cannot rebuild its model from the saved spec: {exc}"
        ) from None
    held = sum(math.prod(shape) for shape in header.values())
    with_base = bool(manifest["base"].get("weights_included"))
    expected = plan.total_params if with_base else plan.trainable_params
    if expected > 4 * held + 1_000_000:
        raise CheckpointError(
            f"{folder / MANIFEST}: its spec describes a model of {expected:,} {'' if with_base else 'trainable '}"
            f"parameters ({plan.base_class}, hidden size {plan.hidden}) but {WEIGHTS} holds {held:,}; the manifest was "
            "edited or belongs to other weights — nothing was built"
        )
    have, where = available_memory("cpu")
    need = 4 * plan.total_params
    if have is not None and need > have and os.environ.get(MEMORY_CHECK_ENV, "1").strip() != "0":
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: its model needs about {need / GiB:,.1f} GiB but "
            f"{where} has {have / GiB:,.1f} GiB free ({MEMORY_CHECK_ENV}=0 skips this check)"
        )


def load_checkpoint(
    cls: type[TaskGraphModel],
    directory: str | os.PathLike[str],
    base: nn.Module | None = None,
    tokenizer: Any | None = None,
    device: str | torch.device | None = None,
) -> TaskGraphModel:
    """Rebuild the model saved in ``directory``; see :meth:`TaskGraphModel.from_pretrained`."""
    folder = Path(directory)
    manifest = read_manifest(folder)
    path = folder / MANIFEST
    spec = _spec_of(path, manifest)
    if (folder / WEIGHTS).is_file():
        _check_file_size(folder / WEIGHTS, manifest["weights"])
    header = read_header(folder / WEIGHTS)  # names and shapes, from the file's own header: no tensor is read yet
    problems = _compare(
        manifest["weights"].get("tensors", {}), {k: list(v) for k, v in header.items()}, "the manifest", WEIGHTS
    )
    if problems:
        raise CheckpointError(f"{folder / WEIGHTS}: does not match its manifest: " + "; ".join(problems))
    if base is None:
        _check_size(folder, spec, manifest, header)
    tensors = _read_weights(folder, manifest)
    if tokenizer is None and manifest.get("tokenizer") and (folder / TOKENIZER_DIR).is_dir():
        from taskgraph.model.base import load_tokenizer

        tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
    try:
        model = cls(spec, base=base, tokenizer=tokenizer)
    except TaskgraphError as exc:
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: cannot rebuild its model from the saved spec: {exc}"
        ) from None
    if model.adapted_names != list(manifest["adapted_modules"]):
        raise CheckpointError(
            f"{path}: the base model now has adapted modules {model.adapted_names[:4]}... "
            f"({model.num_layers}) where the checkpoint has {manifest['adapted_modules'][:4]}... "
            f"({len(manifest['adapted_modules'])}); it was saved with a different base model"
        )
    with_base = bool(manifest["base"].get("weights_included"))
    want = {k: list(v.shape) for k, v in checkpoint_state(model, with_base).items()}
    problems = _compare(want, {k: list(v.shape) for k, v in tensors.items()}, "the model its spec builds", WEIGHTS)
    if problems:
        raise CheckpointError(f"{folder / WEIGHTS}: does not fit the model its spec builds: " + "; ".join(problems))
    _check_layout(path, manifest.get("layout"), model, tensors)
    check_finite(tensors, folder / WEIGHTS, frozenset(f"router.{n}" for n in type(model.router).infinite_masks))
    result = model.load_state_dict(tensors, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys  # checked above
    fingerprint = model_fingerprint(model)
    saved = manifest["base"].get("fingerprint")
    if saved != fingerprint:
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: the base model {type(model.base).__name__} differs from the one it "
            f"was saved with (fingerprint {_short(fingerprint)} vs saved {_short(saved)}); load it with the "
            "same base model (same weights) it was trained on"
        )
    return model if device is None else model.to(device)


def _check_layout(
    path: Path, recorded: dict[str, Any] | None, model: TaskGraphModel, tensors: dict[str, Tensor]
) -> None:
    """CheckpointError naming every ``layout`` field of the manifest that contradicts the tensors (which fit the model
    its spec builds: checked before) — an edited manifest, or one copied beside other weights."""
    if not recorded:
        return
    have = layout_of(model)
    wrong = [key for key in have if recorded.get(key) is not None and recorded[key] != have[key]]
    if not wrong:
        return
    name = model.adapted_names[0] if model.adapted_names else ""
    a = tensors.get(f"base.{name}.A")
    shape = f"base.{name}.A has shape {list(a.shape)}: [H, K, d_in/H, r]" if a is not None else ""
    evidence = {
        "layers": f"the tensors hold adapters of {have['layers']} modules",
        "heads": f"the tensors hold H = {have['heads']} ({shape})",
        "skills": f"the tensors hold K = {have['skills']} ({shape})",
        "rank": f"the tensors hold rank {have['rank']} ({shape})",
        "alpha": f"its spec's adapters.alpha is {have['alpha']:g}",
        "linearized": f"the tensors {'hold' if have['linearized'] else 'hold no'} L-LoRA's A0 / B0",
    }
    said = "; ".join(f"layout.{key} is {recorded[key]!r}, but {evidence[key]}" for key in wrong)
    raise CheckpointError(
        f"{path}: {said} — the manifest contradicts its weights: it was edited, or belongs to other weights; "
        "nothing was loaded (save the model again, or restore its manifest)"
    )


def _short(fingerprint: Any) -> str:
    if not isinstance(fingerprint, dict):
        return repr(fingerprint)
    return (
        f"{fingerprint.get('tensors')} tensors, structure {str(fingerprint.get('structure'))[:12]}, "
        f"values {str(fingerprint.get('sample'))[:12]}"
    )
