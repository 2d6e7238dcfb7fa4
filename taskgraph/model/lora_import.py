"""Import a PEFT LoRA folder as a skill of every inventory, or as one task's own adapter.

    model.import_lora("loras/sentiment", skill=0)      # skill slot 0 of every adapted layer
    model.import_lora("loras/movies", task="movies")    # router private: task "movies"' own skill
    # or in the spec:  adapters: {imports: [{path: loras/sentiment, skill: 0}, {path: loras/movies, task: movies}]}

The folder's update ``ΔW = (lora_alpha / r) · lora_B @ lora_A`` of every module lands exactly in the slot:
``A[h, k] = lora_Aᵀ`` split into the H heads along d_in, ``B[h, k] = (s_peft / s) · lora_Bᵀ`` split along
d_out (``s = adapters.alpha / adapters.rank``), so a task routed one-hot to that skill computes the folder's
LoRA (docs/methods.md, "PEFT folder layout"). An L-LoRA layer is linearised around it (``A0``, ``B0`` set too:
its fold is then rank 2r). Routing over imported skills and few-shot ``--mode routing`` adaptation is LoraHub's
composition, learned by gradient.

The folder must fit the model exactly, or :class:`~taskgraph.errors.ModelError` names it and what differs:
another base model (module shapes, or the base fingerprint a taskgraph export records), another rank, a module
the model adapts that the folder lacks, or one the folder has that the model does not adapt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from taskgraph.errors import ModelError
from taskgraph.model.peft_folder import MAX_CONFIG_BYTES, PeftLoRA, read_peft_folder
from taskgraph.run_records import parse_json

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel

EXPORT_META = "taskgraph.json"  # written beside the adapter by taskgraph export --format peft


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")


def check_fits(model: TaskGraphModel, lora: PeftLoRA) -> None:
    """ModelError naming the folder unless its LoRA fits ``model``'s adapted modules, shapes, rank and base."""
    where = f"PEFT folder {str(lora.folder)!r}"
    problems = []
    adapted = {name: layer for name, layer in model.adapted}
    missing = sorted(set(adapted) - set(lora.modules))
    extra = sorted(set(lora.modules) - set(adapted))
    if missing:
        problems.append(f"it has no LoRA for {len(missing)} module(s) the model adapts: {_few(missing)}")
    if extra:
        problems.append(f"it adapts {len(extra)} module(s) the model does not: {_few(extra)}")
    shapes = []
    for name in sorted(set(adapted) & set(lora.modules)):
        layer, (a, b) = adapted[name], lora.modules[name]
        if (a.shape[1], b.shape[0]) != (layer.in_features, layer.out_features):
            shapes.append(
                f"{name} is {layer.out_features}x{layer.in_features} here but {b.shape[0]}x{a.shape[1]} in the folder"
            )
    if shapes:
        problems.append("another base model: " + "; ".join(shapes[:3]))
    if lora.rank != model.spec.adapters.rank:
        problems.append(
            f"another rank: r = {lora.rank} in the folder, adapters.rank = {model.spec.adapters.rank} "
            "here (an imported LoRA keeps its rank: set adapters.rank to it)"
        )
    recorded = _recorded_fingerprint(lora.folder)
    if recorded is not None and not shapes:
        from taskgraph.model.checkpoint import model_fingerprint

        if recorded != model_fingerprint(model):
            problems.append(
                "another base model: the base weights fingerprint its taskgraph.json records differs from this model's"
            )
    if problems:
        raise ModelError(f"{where} does not fit the model: {'; '.join(problems)}")


def _recorded_fingerprint(folder: Path | None) -> Any:
    """The base fingerprint the folder's ``taskgraph.json`` records (None without one)."""
    if folder is None or not (folder / EXPORT_META).is_file():
        return None
    base = _export_meta(folder).get("base")
    if not isinstance(base, (dict, type(None))):
        raise ModelError(
            f"PEFT folder {str(folder)!r}: {EXPORT_META}: its 'base' ({str(base)[:40]!r}) is not a JSON object; it "
            "is not the record taskgraph export writes (export the folder again, or remove the file)"
        )
    return None if base is None else base.get("fingerprint")


def _export_meta(folder: Path) -> dict[str, Any]:
    """The JSON object in the folder's ``taskgraph.json``; ModelError for a file that is not one."""
    path = folder / EXPORT_META
    where = f"PEFT folder {str(folder)!r}: {EXPORT_META}"
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{where} is larger than {MAX_CONFIG_BYTES} bytes; not the record taskgraph export writes")
    try:
        meta = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{where} cannot be read as UTF-8 text ({exc}); remove it or export the folder again"
        ) from None
    except ValueError as exc:
        raise ModelError(f"{where} {exc}; remove it or export the folder again") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{where} is not a JSON object; remove it or export the folder again")
    return meta


@torch.no_grad()
def import_lora(
    model: TaskGraphModel, folder: str | os.PathLike[str], *, skill: int | None = None, task: str | None = None
) -> PeftLoRA:
    """Write the PEFT LoRA in ``folder`` into skill ``skill`` of every inventory, or into ``task``'s own skill.

    Raises:
        ModelError: not a usable PEFT folder, one that does not fit (see the module docstring), a skill
            out of range, or ``task`` with a router other than ``private``.
    """
    if (skill is None) == (task is None):
        raise ModelError("import_lora: give exactly one of skill=K (a slot of every inventory) and task=NAME")
    lora = read_peft_folder(folder)
    where = f"PEFT folder {str(lora.folder)!r}"
    if task is not None:
        if model.spec.router.kind != "private":
            raise ModelError(
                f"{where}: importing it as task {task!r}'s adapter needs router.kind 'private' (one "
                f"adapter per task); router {model.spec.router.kind!r} mixes skills that tasks share — "
                "import it as a skill (skill: K) instead"
            )
        slot = model.task_index(task)
    else:
        assert skill is not None
        if not 0 <= skill < model.skills:
            raise ModelError(
                f"{where}: skill {skill} is out of range; every inventory has {model.skills} skills "
                f"(0..{model.skills - 1}) with router {model.spec.router.kind!r}"
            )
        slot = skill
    check_fits(model, lora)
    for name, layer in model.adapted:
        a, b = lora.modules[name]  # [r, d_in], [d_out, r]
        heads, r = layer.heads, layer.rank
        a_slot = a.T.reshape(heads, layer.in_features // heads, r).to(layer.A)  # [H, d_in/H, r]
        b_slot = (b * (lora.scaling / layer.scaling)).T  # [r, d_out]
        b_slot = b_slot.reshape(r, heads, layer.out_features // heads).permute(1, 0, 2).to(layer.B)  # [H, r, d_out/H]
        layer.A[:, slot] = a_slot
        layer.B[:, slot] = b_slot
        if layer.linearized:  # linearise around the imported LoRA
            layer.A0[:, slot] = a_slot
            layer.B0[:, slot] = b_slot
    return lora


def apply_imports(model: TaskGraphModel, imports: list[Any]) -> None:
    """Every ``adapters.imports`` entry of the spec, in order (paths relative to the current folder)."""
    for entry in imports:
        import_lora(model, Path(entry.path).expanduser(), skill=entry.skill, task=entry.task)
