"""A checkpoint folder's files, read with nothing trusted: their names and format version, the manifest's schema,
the safetensors header and weights.

:func:`read_manifest` parses and version-checks ``manifest.json`` against its schema; :func:`read_header` reads the
tensor names and shapes a safetensors file declares, bounds-checked, before any tensor is read; the weights are
then read, checked against the manifest's size, sha256 and shapes, and (:func:`check_finite`) for NaN and ±∞.
Every failure is a :class:`~taskgraph.errors.CheckpointError` naming the file. :mod:`taskgraph.model.checkpoint`
saves and loads a model with them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import Tensor

from taskgraph.errors import CheckpointError, validation_problems

FORMAT = "taskgraph-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
TOKENIZER_DIR = "tokenizer"
MAX_HEADER_BYTES = 100 * 1024**2  # a safetensors header larger than this is not one of ours
MAX_TENSORS = 1_000_000
MAX_LABELS = 1_000_000
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed, version-checked manifest of a checkpoint folder."""
    folder = Path(directory)
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: no such folder; give the folder that "
            f"save_pretrained wrote (it holds {MANIFEST} and {WEIGHTS})"
        )
    path = folder / MANIFEST
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: no {MANIFEST} in the folder; it is not a "
            f"taskgraph checkpoint, or saving it was interrupted"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); the manifest is corrupted") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a taskgraph checkpoint manifest (its 'format' is not {FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r}; this taskgraph reads "
            f"version {FORMAT_VERSION} (save it again with a matching taskgraph)"
        )
    for key in ("spec", "tasks", "adapted_modules", "base", "weights"):
        if key not in manifest:
            raise CheckpointError(f"{path}: the manifest has no {key!r} entry; it is incomplete")
    try:
        _ManifestSchema.model_validate(manifest)
    except ValidationError as exc:
        raise CheckpointError(f"{path}: the manifest is malformed: {validation_problems(exc, limit=5)}") from None
    return manifest


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _TaskEntry(_Strict):
    name: str
    num_labels: int = Field(ge=0, le=MAX_LABELS)  # the head's width: 0 for a generative task (the spec says which)


class _WeightsEntry(_Strict):
    file: str
    bytes: int | None = Field(None, ge=0)
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    tensors: dict[str, list[Annotated[int, Field(ge=0)]]]


class _LayoutEntry(_Strict):
    layers: int | None = Field(None, ge=0)
    heads: int | None = Field(None, ge=1)
    skills: int | None = Field(None, ge=1)
    rank: int | None = Field(None, ge=1)
    alpha: float | None = None
    linearized: bool | None = None


class _BaseEntry(_Strict):
    weights_included: bool = False
    fingerprint: dict[str, Any] | None = None


class _ManifestSchema(_Strict):
    """The types and bounds of a manifest's entries: a manifest is someone else's file until checked."""

    spec: dict[str, Any]
    tasks: list[_TaskEntry]
    adapted_modules: list[str] = Field(max_length=MAX_TENSORS)
    base: _BaseEntry
    weights: _WeightsEntry
    layout: _LayoutEntry | None = None
    tokenizer: str | None = None


def _read_weights(folder: Path, manifest: dict[str, Any]) -> dict[str, Tensor]:
    path = folder / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(folder)!r}: {WEIGHTS} is missing")
    info = manifest["weights"]
    _check_file_size(path, info)
    data = path.read_bytes()
    if info.get("bytes") is not None and len(data) != info["bytes"]:
        raise CheckpointError(
            f"{path}: {len(data)} bytes where the manifest says {info['bytes']}; the file is truncated or was replaced"
        )
    if info.get("sha256") is not None and hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise CheckpointError(
            f"{path}: its sha256 does not match the manifest; the file is corrupted or belongs to another checkpoint"
        )
    try:
        tensors = load_safetensors(data)  # bytes -> tensors; no pickle
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = info.get("tensors", {})
    problems = _compare(expected, {k: list(v.shape) for k, v in tensors.items()}, "the manifest", WEIGHTS)
    if problems:
        raise CheckpointError(f"{path}: does not match its manifest: " + "; ".join(problems))
    return tensors


def check_finite(tensors: dict[str, Tensor], path: Path, masks: frozenset[str] = frozenset()) -> None:
    """CheckpointError naming the file and the tensors (at most 3) that hold NaN, or ±∞ outside ``masks`` (the
    tensors where the model writes ±∞ on purpose: Poly's routing logits of a skill one task owns)."""
    bad = sorted(
        name
        for name, t in tensors.items()
        if torch.is_floating_point(t) and not bool((~torch.isnan(t) if name in masks else torch.isfinite(t)).all())
    )
    if bad:
        names = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
        raise CheckpointError(
            f"{path}: {len(bad)} {'tensor holds' if len(bad) == 1 else 'tensors hold'} NaN or infinite values "
            f"({names}); a checkpoint's weights are finite numbers (±∞ only where a router masks a skill) — the "
            "file was edited, or saved from a run that diverged (load an earlier checkpoint)"
        )


def _check_file_size(path: Path, info: dict[str, Any]) -> None:
    if info.get("bytes") is not None and path.stat().st_size != info["bytes"]:
        raise CheckpointError(
            f"{path}: {path.stat().st_size} bytes where the manifest says {info['bytes']}; "
            "the file is truncated or was replaced"
        )


def _compare(want: dict[str, list[int]], have: dict[str, list[int]], want_name: str, have_name: str) -> list[str]:
    """Differences between two name -> shape tables, as short sentences (at most 3 names each)."""

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

    problems = []
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    shapes = sorted(k for k in set(want) & set(have) if list(want[k]) != list(have[k]))
    if missing:
        problems.append(f"{len(missing)} tensors of {want_name} are missing from {have_name}: {few(missing)}")
    if extra:
        problems.append(f"{len(extra)} tensors in {have_name} are not in {want_name}: {few(extra)}")
    for k in shapes[:3]:
        problems.append(f"{k} has shape {have[k]} in {have_name} but {want[k]} in {want_name}")
    if len(shapes) > 3:
        problems.append(f"{len(shapes) - 3} more tensors differ in shape")
    return problems


def read_header(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensor names and shapes a safetensors file declares in its header, bounds-checked, nothing else read.

    Raises:
        CheckpointError: a missing file, or a header that is not one (its length, its JSON, an entry's shape or
            byte range outside the file).
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path.parent)!r}: {WEIGHTS} is missing")
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or not 2 <= length <= min(size - 8, MAX_HEADER_BYTES):
                raise ValueError(f"a header of {length} bytes in a file of {size}")
            header = json.loads(handle.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        shapes: dict[str, tuple[int, ...]] = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            shape, offsets, width = entry["shape"], entry["data_offsets"], DTYPE_BYTES.get(entry["dtype"])
            if not (
                width
                and isinstance(shape, list)
                and all(isinstance(d, int) and d >= 0 for d in shape)
                and isinstance(offsets, list)
                and len(offsets) == 2
                and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= size - 8 - length
                and math.prod(shape) * width == offsets[1] - offsets[0]
            ):
                raise ValueError(
                    f"tensor {name!r} has shape {shape!r}, dtype {entry['dtype']!r} and byte range "
                    f"{offsets!r}, which do not agree with each other or the file"
                )
            shapes[str(name)] = tuple(shape)
    except (OSError, ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if len(shapes) > MAX_TENSORS:
        raise CheckpointError(f"{path}: declares {len(shapes):,} tensors, more than a taskgraph checkpoint holds")
    return shapes
