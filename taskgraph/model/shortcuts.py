"""ModelShortcuts: the :class:`~taskgraph.model.TaskGraphModel` methods that hand the model to a function of another
module.

Save and load (:mod:`taskgraph.model.checkpoint`), import a PEFT LoRA (:mod:`taskgraph.model.lora_import`), fold or
merge a task (:mod:`taskgraph.model.fold`), encode and classify raw texts (:mod:`taskgraph.model.predict`): each a
method of the model, each one call of the function that does the work. ``TaskGraphModel`` inherits these methods.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from taskgraph.data.encoding import encode
from taskgraph.errors import ModelError
from taskgraph.model.checkpoint import load_checkpoint, save_checkpoint
from taskgraph.model.fold import FoldedLoRA, MergedTaskModel, fold, merge_task, warn_merge_and_unload
from taskgraph.model.lora_import import import_lora
from taskgraph.model.predict import predict
from taskgraph.spec.models import Spec

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


class ModelShortcuts:
    """Save, load, import, fold, merge, predict: the methods :class:`~taskgraph.model.TaskGraphModel` inherits for
    them."""

    # what they read of the model (TaskGraphModel sets them)
    spec: Spec
    tokenizer: Any
    device: torch.device

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``manifest.json`` (see :mod:`taskgraph.model.checkpoint`)."""
        return save_checkpoint(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        base: nn.Module | None = None,
        tokenizer: Any | None = None,
        device: str | torch.device | None = None,
    ) -> TaskGraphModel:
        """Rebuild a saved model; CheckpointError when the folder, weights or base do not match.

        ``adapters.imports`` are not read again: the saved weights hold them (and what training made of them).
        """
        build = functools.partial(cls, import_adapters=False)
        return load_checkpoint(build, directory, base=base, tokenizer=tokenizer, device=device)  # type: ignore[arg-type]

    def import_lora(self, folder: str | Path, *, skill: int | None = None, task: str | None = None) -> None:
        """Write a PEFT LoRA folder into skill slot ``skill`` of every inventory, or into ``task``'s own adapter
        (router ``private``); ModelError when it does not fit (see :func:`taskgraph.model.lora_import.import_lora`)."""
        import_lora(self, folder, skill=skill, task=task)

    def fold(self, task: int | str) -> FoldedLoRA:
        """This task as a plain LoRA (see :func:`taskgraph.model.fold.fold`)."""
        return fold(self, task)

    def merge_task(self, task: int | str, *, dequantize: bool = False) -> MergedTaskModel:
        """A plain transformers model with this task's adapter folded into W, plus its head; this model is left
        unchanged, serving every task (see :func:`taskgraph.model.fold.merge_task`; a quantized base needs
        ``dequantize=True``)."""
        return merge_task(self, task, dequantize=dequantize)

    def merge_and_unload(self, task: int | str) -> MergedTaskModel:
        """The old name of :meth:`merge_task`: the same model, and a :class:`~taskgraph.errors.TaskgraphWarning`."""
        warn_merge_and_unload()
        return merge_task(self, task)

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """``input_ids [B, S]`` and ``attention_mask [B, S]`` of ``texts`` for :meth:`forward`: the model's tokenizer,
        truncated at ``model.max_length``, right-padded, on the model's device (ModelError without a tokenizer)."""
        from taskgraph.model.predict import pad_batch

        if self.tokenizer is None:
            raise ModelError(
                "this model has no tokenizer: give model.tokenizer in the spec (a local folder), or set "
                "model.tokenizer to a transformers tokenizer"
            )
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        return pad_batch(encode(self.tokenizer, list(texts), self.spec.model.max_length), pad, self.device)

    def predict(self, task: int | str, texts: Sequence[str], batch_size: int = 256) -> list[dict[str, Any]]:
        """Labels and probabilities for raw texts (see :func:`taskgraph.model.predict.predict`)."""
        return predict(self, task, texts, batch_size=batch_size)
