"""What a merge reads: the runs, each task folded exactly into its task vector, and the shared-init check.

Two kinds of sources (``taskgraph merge SOURCE [SOURCE ...]``):

* **one routed multi-task run** — every task is folded exactly (:meth:`TaskGraphModel.fold`): at every
  adapted module the task's routing collapses the inventory into one LoRA, gate folded in;
* **several runs trained from one shared initialisation** — typically one single-task run per task (the
  L-LoRA protocol: every task vector ``τ_t = φ_t − φ₀`` starts from the same ``φ₀``). "Shared" means the
  same base model (weights fingerprint), the same ``model``, ``adapters`` and ``router.kind`` sections and
  the same ``training.seed`` (the adapters' initial draw follows from them), and for L-LoRA runs the very
  same saved ``A0`` / ``B0``. A run that differs is named with what differs (exit 2).

A task's update at a module is ``ΔW_t = s · B_t A_t``; for an L-LoRA layer linearised around ``B₀ ≠ 0``
the update at φ₀ is not zero, so the task vector is the fold minus the update at φ₀
(:meth:`RoutedLoRALinear.fold_init`), and the merged model adds back the mean of the tasks' φ₀ updates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from taskgraph.adapt.data import resolve_block
from taskgraph.data import TaskData, build_source, encode_examples
from taskgraph.errors import DataError
from taskgraph.eval.run_eval import recorded_base_dir
from taskgraph.merge.lowrank import LowRank, concat
from taskgraph.merge.params import MergeError
from taskgraph.model import TaskGraphModel
from taskgraph.model.checkpoint import read_manifest
from taskgraph.model.fold import task_routing
from taskgraph.model.rundir import find_model_dir
from taskgraph.spec.models import AdaptersSpec, ModelSpec, TaskSpec


@dataclass
class TaskVector:
    """One task to merge.

    Args:
        name: the task's name.
        run: the run it comes from.
        spec: its task spec, the data block's file paths made absolute.
        head_weight: ``[C, D]``, head_bias ``[C]``: its classification head.
        updates: adapted module name -> the task vector ``ΔW_t − ΔW_t(φ₀)`` as a :class:`LowRank`
            (absent: the task's gate is closed there, a zero update).
        init: adapted module name -> the task's update at φ₀ (L-LoRA with ``B₀ ≠ 0`` only).
    """

    name: str
    run: Path
    spec: TaskSpec
    head_weight: Tensor
    head_bias: Tensor
    updates: dict[str, LowRank]
    init: dict[str, LowRank] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"TaskVector({self.name!r}, run={str(self.run)!r}, modules={len(self.updates)})"


@dataclass
class MergeSources:
    """The tasks to merge and the model they share.

    Args:
        tasks: the task vectors, in merge order.
        model: the first source's model (its base, tokenizer, spec and adapted modules are the merge's).
        runs: the source run folders, as given.
        kind: ``routed`` (one multi-task run) or ``runs`` (several runs from one initialisation).
        base_dir: where the first source's relative paths resolved (recorded in the merged run).
        shapes: adapted module name -> ``(d_out, d_in)``, in layer order.
    """

    tasks: list[TaskVector]
    model: TaskGraphModel
    runs: list[Path]
    kind: str
    base_dir: Path
    shapes: dict[str, tuple[int, int]]

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def linearized(self) -> bool:
        return bool(self.model.spec.adapters.linearized)

    def subset(self, names: Sequence[str]) -> MergeSources:
        """The same sources with only the tasks ``names``, in that order."""
        by_name = {t.name: t for t in self.tasks}
        return replace(self, tasks=[by_name[n] for n in names])

    def module_updates(self, module: str) -> list[LowRank]:
        """Every task's update at ``module`` (a zero update where a task's gate is closed)."""
        d_out, d_in = self.shapes[module]
        zero = LowRank(torch.zeros(1, d_in), torch.zeros(d_out, 1))
        return [t.updates.get(module, zero) for t in self.tasks]

    def module_init(self, module: str) -> LowRank | None:
        """The mean of the tasks' updates at φ₀ at ``module`` (None when every one is zero)."""
        inits = [t.init[module] for t in self.tasks if module in t.init]
        if not inits:
            return None
        return concat(inits, [1.0 / len(self.tasks)] * len(inits))

    def __repr__(self) -> str:
        return (
            f"MergeSources(kind={self.kind!r}, runs={len(self.runs)}, tasks={self.task_names}, "
            f"modules={len(self.shapes)})"
        )


def load_sources(
    sources: Sequence[str | os.PathLike[str]], tasks: Sequence[str] | None = None, device: str | torch.device = "cpu"
) -> MergeSources:
    """Read the runs, check they share one initialisation, and fold the selected tasks.

    Args:
        sources: one routed run, or several runs from one shared initialisation (run or model folders).
        tasks: the tasks to merge, by name (default: every task of every source).

    Raises:
        MergeError: no source, a run from another base / initialisation (named, with what differs), a
            task name found in two runs, an unknown task in ``tasks``.
        CheckpointError: a source holds no readable model.
    """
    if not sources:
        raise MergeError(
            "no source: give one routed multi-task run, or several runs trained from one shared initialisation"
        )
    runs = [Path(s) for s in sources]
    dirs = [find_model_dir(r) for r in runs]
    _check_distinct(runs, dirs)
    manifests = [read_manifest(d) for d in dirs]
    _check_shared_init(runs, manifests)
    models = [TaskGraphModel.from_pretrained(d, device=device) for d in dirs]
    if any(m.spec.adapters.linearized for m in models):
        _check_same_origin(runs, models)
    owner: dict[str, int] = {}
    for i, model in enumerate(models):
        for name in model.task_names:
            if name in owner:
                raise MergeError(
                    f"task {name!r} is in both {str(runs[owner[name]])!r} and {str(runs[i])!r}; a merge "
                    "takes each task once — choose with --tasks, or rename one"
                )
            owner[name] = i
    chosen = list(owner) if tasks is None else _select(list(tasks), owner, runs)
    vectors = []
    for name in chosen:
        i = owner[name]
        vectors.append(task_vector(models[i], name, runs[i], recorded_base_dir(runs[i], dirs[i])))
    first = models[0]
    shapes = {name: (layer.out_features, layer.in_features) for name, layer in first.adapted}
    return MergeSources(
        vectors, first, runs, "routed" if len(runs) == 1 else "runs", recorded_base_dir(runs[0], dirs[0]), shapes
    )


@torch.no_grad()
def task_vector(model: TaskGraphModel, task: str, run: Path, base_dir: Path) -> TaskVector:
    """One task of ``model`` folded exactly (:func:`~taskgraph.model.fold.fold`) into its task vector."""
    folded = model.fold(task)
    index = model.task_index(task)
    routing = task_routing(model, index)
    updates, init = {}, {}
    for name, layer in model.adapted:
        module = folded.modules.get(name)
        if module is None:
            continue
        update = LowRank(module.A, module.B * module.scaling)
        start = layer.fold_init(routing.weights[0, layer.index], float(routing.gates[0, layer.index]))
        if start is not None:
            init[name] = LowRank(start[0], start[1] * layer.scaling)
            update = concat([update, init[name]], [1.0, -1.0])  # ΔW_t − ΔW_t(φ₀), exact (rank r' + r)
        updates[name] = update
    spec = model.spec.tasks[index]
    if spec.data is not None:
        try:
            block = resolve_block(spec.data.model_dump(mode="json", exclude_none=True), base_dir, model.spec)
        except DataError as exc:
            raise MergeError(f"run {str(run)!r}: task {task!r}: its data block cannot be resolved: {exc}") from None
        spec = TaskSpec.model_validate({**spec.model_dump(mode="json", exclude_none=True), "data": block})
    return TaskVector(task, run, spec, folded.head_weight, folded.head_bias, updates, init)


# ----------------------------------------------------------------------------- checks
def _check_distinct(runs: list[Path], dirs: list[Path]) -> None:
    seen: dict[Path, int] = {}
    for i, d in enumerate(dirs):
        key = d.resolve()
        if key in seen:
            raise MergeError(
                f"source {str(runs[i])!r} is the same model as {str(runs[seen[key]])!r}; give each run once"
            )
        seen[key] = i


INIT_KEYS: tuple[tuple[str, ...], ...] = (("model",), ("adapters",), ("router", "kind"), ("training", "seed"))


CANONICAL_SECTIONS = {"model": ModelSpec, "adapters": AdaptersSpec}


def _canonical(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec's ``model`` / ``adapters`` sections as this version writes them (like ``spec_hash``).

    A run written by an older taskgraph may name a key by its old name (``adapters.heads``, now ``splits``) or
    leave out a key whose default came later; read through the section's model, both runs say the same thing.
    A section that no longer validates is compared as written.
    """
    out = dict(spec)
    for key, section in CANONICAL_SECTIONS.items():
        if isinstance(spec.get(key), dict):
            try:
                out[key] = section.model_validate(spec[key]).model_dump(mode="json")
            except ValueError:
                out[key] = spec[key]
    return out


def _init_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """What decides a run's starting point: base weights, model / adapter sections, router kind, seed."""
    spec = _canonical(manifest["spec"])
    record: dict[str, Any] = {
        "base weights": manifest["base"].get("fingerprint"),
        "adapted modules": manifest.get("adapted_modules"),
    }
    for path in INIT_KEYS:
        value: Any = spec
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        record[".".join(path)] = value
    return record


def _check_shared_init(runs: list[Path], manifests: list[dict[str, Any]]) -> None:
    """Every run shares the first run's starting point; MergeError naming the run and what differs."""
    first = _init_record(manifests[0])
    problems = []
    for run, manifest in zip(runs[1:], manifests[1:]):
        record = _init_record(manifest)
        differ = [key for key in first if record[key] != first[key]]
        if differ:
            what = "; ".join(_difference(key, record[key], first[key]) for key in differ)
            problems.append(f"{str(run)!r} was not trained from the initialisation of {str(runs[0])!r}: {what}")
    if problems:
        raise MergeError(
            "the runs do not share one initialisation, so their task vectors do not start from one "
            "point: " + " | ".join(problems) + " — train every run from the same base, model / "
            "adapters sections, router kind and training.seed"
        )


def _difference(key: str, got: Any, want: Any) -> str:
    if key == "base weights":
        return "another base model (its weights fingerprint differs)"
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        return "; ".join(f"{key}.{k} is {got.get(k)!r}, not {want.get(k)!r}" for k in keys[:4])
    return f"{key} is {got!r}, not {want!r}"


def _check_same_origin(runs: list[Path], models: list[TaskGraphModel]) -> None:
    """L-LoRA runs: the saved linearisation points ``A0`` / ``B0`` must be the very same tensors."""
    for run, model in zip(runs[1:], models[1:]):
        for (name, layer), (_, ref) in zip(model.adapted, models[0].adapted):
            for buffer in ("A0", "B0"):
                got, want = getattr(layer, buffer), getattr(ref, buffer)
                if got.shape != want.shape or not torch.equal(got, want):
                    raise MergeError(
                        f"{str(run)!r} was not trained from the initialisation of {str(runs[0])!r}: its "
                        f"L-LoRA linearisation point {name}.{buffer} differs; train every run from the "
                        "same seed"
                    )


def _select(tasks: list[str], owner: dict[str, int], runs: list[Path]) -> list[str]:
    unknown = [t for t in tasks if t not in owner]
    if unknown:
        raise MergeError(
            f"--tasks: unknown task{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"the sources' tasks are {list(owner)}"
        )
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise MergeError(f"--tasks names {', '.join(map(repr, repeated))} more than once; name each task once")
    if not tasks:
        raise MergeError(f"--tasks selects no task; the sources' tasks are {list(owner)}")
    return tasks


def encode_split(sources: MergeSources, index: int, split: str, pad_id: int, limit: int | None = None) -> TaskData:
    """Task ``index`` of ``sources``: its ``split`` encoded as training encodes it (a generative task's targets in the
    model's layout), its first ``limit`` rows when given.

    Raises:
        DataError: the split cannot be read.
    """
    model, task = sources.model, sources.tasks[index]
    lm = model.lm_info()
    data = encode_examples(
        build_source(task.spec, ".").load(split),
        index,
        tokenizer=model.tokenizer,
        pad_id=pad_id,
        max_length=model.spec.model.max_length,
        vocab_size=model.base.get_input_embeddings().num_embeddings,
        target=None if lm is None else lm.for_task(task.spec),
    )
    if limit is None or len(data) <= limit:
        return data
    targets = None if data.targets is None else data.targets[:limit]
    return replace(
        data, ids=data.ids[:limit], lengths=data.lengths[:limit], labels=data.labels[:limit], targets=targets
    )
