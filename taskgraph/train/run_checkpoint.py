"""Training checkpoints: everything a run needs to continue bit for bit, written atomically.

``RUN/checkpoints/step-000100/`` holds

* ``model.safetensors`` + ``manifest.json`` (+ ``tokenizer/``) — the model's own ``save_pretrained``;
* ``optimizer.safetensors`` — every tensor of the optimizer state (``state.<param>.<key>``);
* ``trainer.json`` — the step (the schedule is a pure function of it), the optimizer's param groups
  and non-tensor state, the RNG states (torch CPU / CUDA as base64 of their uint8 state tensors,
  Python's and NumPy's as lists), the sampler state, the best validation so far, the length of
  ``log.jsonl`` at that step, the spec and its hash, and the size and sha256 of ``optimizer.safetensors``.

Nothing is pickled and nothing is read with ``torch.load``. A checkpoint is written into
a staging folder beside it (``checkpoints/.step-N.stage-<host>-<pid>-<random>/``) and renamed to ``step-N``
when complete, so a ``step-N`` folder is
always whole; only the newest ``keep`` are kept. :func:`read_checkpoint` checks every file
(JSON shape, sizes, sha256 sums, the spec hash) and raises :class:`~taskgraph.errors.CheckpointError`
before anything is changed on disk. The run's best and final model folders are swapped in the same way
(:func:`save_model`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import Tensor

from taskgraph.atomic import clean_stale, fsync_dir, replace_directory, staging_dir, write_bytes, write_text
from taskgraph.errors import CheckpointError, opt
from taskgraph.model.checkpoint import MANIFEST, read_manifest
from taskgraph.run_records import TrainerRecord, read_json, validate_record
from taskgraph.spec.diff import changed_fields
from taskgraph.spec.models import Spec

if TYPE_CHECKING:
    from taskgraph.model import TaskGraphModel

FORMAT = "taskgraph-trainer"
FORMAT_VERSION = 1
OPTIMIZER = "optimizer.safetensors"
TRAINER = "trainer.json"
CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")

FAULT_IN_CHECKPOINT = "TASKGRAPH_FAULT_IN_CHECKPOINT"  # exit hard while writing checkpoint N (tests)
FAULT_EXIT_CODE = 86


def fault_point(variable: str, step: int) -> None:
    """Exit the process at once (``os._exit(86)``) when environment ``variable`` equals ``step``.

    The crash-recovery tests use this to interrupt a run at a chosen place; unset, it does nothing.
    """
    if os.environ.get(variable, "").strip() == str(step):
        os._exit(FAULT_EXIT_CODE)


def spec_hash(spec: Spec) -> str:
    """sha256 of the spec's canonical JSON: two runs continue each other only when it matches.

    The canonical form writes ``adapters.splits`` under its taskgraph 0.1 name ``heads``, so runs, sweep cells and
    bench cells hashed before the rename still match their specs. It leaves out ``training.parallel``: how several
    processes share the work, like their number, is not what is trained, so a run goes on under ddp or fsdp alike.
    """
    data = spec.model_dump(mode="json")
    data.get("training", {}).pop("parallel", None)
    adapters = data.get("adapters", {})
    data["adapters"] = {("heads" if k == "splits" else k): v for k, v in adapters.items()}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


# ----------------------------------------------------------------------------- RNG
def encode_state(tensor: Tensor) -> str:
    """A generator state (a uint8 tensor) as base64 text, for JSON."""
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def decode_state(text: str) -> Tensor:
    """The uint8 tensor of :func:`encode_state`; ValueError / AttributeError when ``text`` is not base64 text."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()


def capture_rng(cuda: bool) -> dict[str, Any]:
    """The global RNG states (torch CPU, CUDA when ``cuda``, Python, NumPy) as JSON-ready values."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": encode_state(torch.get_rng_state()),
        "cuda": [encode_state(s) for s in torch.cuda.get_rng_state_all()] if cuda else None,
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }


def restore_rng(state: dict[str, Any], cuda: bool) -> None:
    """Set the global RNGs to ``state`` (from :func:`capture_rng`)."""
    torch.set_rng_state(decode_state(state["torch"]))
    if cuda and state.get("cuda"):
        torch.cuda.set_rng_state_all([decode_state(s) for s in state["cuda"]])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _check_rng(state: Any) -> None:
    """Apply an RNG record to throwaway generators, so a malformed one fails before anything changes."""
    torch.Generator().set_state(decode_state(state["torch"]))
    for s in state.get("cuda") or []:
        decode_state(s)
    version, internal, gauss = state["python"]
    random.Random().setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.RandomState().set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


# ----------------------------------------------------------------------------- optimizer state
def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (``state.<i>.<key>``) and JSON (groups, scalars)."""
    sd = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any], where: str
) -> None:
    """Load what :func:`optimizer_tensors` split; CheckpointError when it does not fit ``optimizer``."""
    state: dict[int, dict[str, Any]] = {}
    try:
        for name, tensor in tensors.items():
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
        for index, entry in meta["scalars"].items():
            state.setdefault(int(index), {}).update(entry)
        groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in meta["param_groups"]]
        names = [g.get("name") for g in groups]
        want = [g["name"] for g in optimizer.param_groups]
        if names != want:
            raise ValueError(f"its parameter groups are {names}, the model's are {want}")
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{where}: the optimizer state does not fit this model's optimizer ({exc})") from None


# ----------------------------------------------------------------------------- the trainer record
@dataclass
class TrainerState:
    """What continues a run besides the weights: the step, RNGs, sampler, best-so-far, log length."""

    step: int
    rng: dict[str, Any]
    sampler: dict[str, Any]
    best_step: int | None = None
    best_mean_acc: float | None = None
    log_bytes: int = 0
    elapsed_s: float = 0.0
    examples: int = 0
    data: dict[str, str] = field(default_factory=dict)  # task -> fingerprint of its encoded train split

    def __repr__(self) -> str:
        return (
            f"TrainerState(step={self.step}, best_step={self.best_step}, best_mean_acc={self.best_mean_acc}, "
            f"examples={self.examples})"
        )


@dataclass
class RunCheckpoint:
    """A checkpoint read and checked by :func:`read_checkpoint` (the model is loaded from ``folder``)."""

    folder: Path
    state: TrainerState
    optimizer_tensors: dict[str, Tensor] = field(repr=False)
    optimizer_meta: dict[str, Any] = field(repr=False)


def write_checkpoint(
    run_dir: Path, model: Any, optimizer: torch.optim.Optimizer, state: TrainerState, spec: Spec, keep: int
) -> Path:
    """Write ``RUN/checkpoints/step-N`` atomically (staging folder + rename); keep the newest ``keep``."""
    final = run_dir / CHECKPOINTS / step_dir_name(state.step)
    tmp = staging_dir(final)
    model.save_pretrained(tmp)
    tensors, meta = optimizer_tensors(optimizer)
    data = safetensors.torch.save(tensors, metadata={"format": "pt", "producer": FORMAT})
    write_bytes(tmp / OPTIMIZER, data)
    fault_point(FAULT_IN_CHECKPOINT, state.step)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": state.step,
        "spec_hash": spec_hash(spec),
        "spec": spec.model_dump(mode="json"),
        "scheduler": {"step": state.step, "total": spec.training.steps, "warmup": spec.training.warmup_steps},
        "optimizer": {"file": OPTIMIZER, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), **meta},
        "rng": state.rng,
        "sampler": state.sampler,
        "best": {"step": state.best_step, "mean_acc": state.best_mean_acc},
        "log_bytes": state.log_bytes,
        "elapsed_s": state.elapsed_s,
        "examples": state.examples,
        "data": state.data,
    }
    write_text(tmp / TRAINER, json.dumps(record, indent=1) + "\n")
    fsync_dir(tmp)
    replace_directory(tmp, final)
    for stale in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(stale)
    return final


def save_model(model: TaskGraphModel, target: Path, extra: dict[str, Any] | None) -> None:
    """``save_pretrained`` into a staging folder beside ``target``, then swap it in."""
    staging = staging_dir(target)
    model.save_pretrained(staging)
    if extra is not None:
        write_text(staging / "trainer.json", json.dumps(extra, indent=2) + "\n")
    replace_directory(staging, target)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The complete ``step-N`` folders of a run, oldest first."""
    root = run_dir / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def remove_partial(run_dir: Path) -> None:
    """Tidy what an interrupted write left in a run: the staging folders and temp files of writers that are
    gone (:func:`taskgraph.atomic.clean_stale`), and the ``.tmp-X`` / ``.old-X`` folders of taskgraph 0.1 runs."""
    for root in (run_dir, run_dir / CHECKPOINTS):
        if not root.is_dir():
            continue
        clean_stale(root)
        for p in sorted(root.iterdir()):
            if not p.is_dir():
                continue
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.startswith(".old-"):
                target = root / p.name[len(".old-") :]
                if target.exists():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.replace(p, target)


def read_checkpoint(folder: Path, spec: Spec) -> RunCheckpoint:
    """Read and check ``folder``'s trainer record and optimizer state against ``spec``.

    The model files are checked by the model's own loader. Raises CheckpointError for a missing,
    truncated or corrupted file, or a checkpoint written for another spec.
    """
    path = folder / TRAINER
    if not os.path.lexists(path):
        raise CheckpointError(f"checkpoint {str(folder)!r}: no {TRAINER}; it is not a complete training checkpoint")
    raw = read_json(path, "the trainer record")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or raw.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a taskgraph trainer record (format {FORMAT!r} version {FORMAT_VERSION})")
    record = validate_record(raw, TrainerRecord, str(path)).model_dump()
    want = spec_hash(spec)
    if record.get("spec_hash") != want:
        changed = changed_fields(record.get("spec"), spec.model_dump(mode="json"))
        raise CheckpointError(
            f"checkpoint {str(folder)!r} was written for another spec (spec hash "
            f"{str(record.get('spec_hash'))[:12]} vs {want[:12]}; differing fields: {', '.join(changed[:6]) or '?'}); "
            f"resume with the spec it was trained with (RUN/spec.yaml, the same {opt('set')}), or train into a new {opt('out')}"
        )
    try:
        manifest = read_manifest(folder)
    except CheckpointError as exc:
        raise CheckpointError(f"checkpoint {str(folder)!r}: {exc}") from None
    if manifest.get("spec") != record.get("spec"):
        raise CheckpointError(
            f"{folder / MANIFEST}: its spec differs from {TRAINER}'s; the checkpoint's files do not belong together"
        )
    state = TrainerState(
        step=record["step"],
        rng=record["rng"],
        sampler=record["sampler"],
        best_step=record["best"]["step"],
        best_mean_acc=record["best"]["mean_acc"],
        log_bytes=record["log_bytes"],
        elapsed_s=record["elapsed_s"],
        examples=record["examples"],
        data=record["data"],
    )
    try:
        _check_rng(state.rng)
    except (TypeError, ValueError, IndexError, OverflowError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: rng: not a generator state this machine can restore ({type(exc).__name__}: {exc})"
        ) from None
    meta = record["optimizer"]
    size, digest = meta["bytes"], meta["sha256"]
    groups = {"param_groups": meta["param_groups"], "scalars": meta["scalars"]}
    if state.step < 1 or f"step-{state.step:06d}" != folder.name:
        raise CheckpointError(f"{path}: it records step {state.step} but lies in folder {folder.name!r}")
    return RunCheckpoint(folder, state, _read_optimizer(folder / OPTIMIZER, size, digest), groups)


def _read_optimizer(path: Path, size: int, digest: str) -> dict[str, Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the checkpoint is incomplete")
    data = path.read_bytes()
    if len(data) != size:
        raise CheckpointError(
            f"{path}: {len(data)} bytes where {TRAINER} says {size}; the file is truncated or was replaced"
        )
    if hashlib.sha256(data).hexdigest() != digest:
        raise CheckpointError(f"{path}: its sha256 does not match {TRAINER}; the file is corrupted")
    try:
        return load_safetensors(data)  # bytes -> tensors; no pickle
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
