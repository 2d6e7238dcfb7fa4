"""Score a merged update fast: one plain copy of the base whose adapted weights are set to ``W + ΔW``.

Choosing λ (and density, p) on the validation split evaluates many merges of the same tasks; rebuilding a
model for each would dominate. :class:`MergedScorer` keeps one plain base (no adapter modules: the
merged update is folded into the weights, zero overhead) and the original weights, and for each merge
writes ``W₀ + ΔW`` into the adapted modules in place, then scores every task with its own head (argmax
over the task's classes on the pooled hidden state of the base's trunk — the decoder of a causal LM, the
encoder of an encoder-decoder — inference mode), as ``taskgraph eval`` scores a run.

A generative task is scored by the metric validation reads (:func:`~taskgraph.train.evaluate_generative.score_generative`:
rank-classification accuracy for a ``choices`` task, greedy exact match otherwise) on ``lm``, the merged model
with every adapter zero (:func:`~taskgraph.merge.build.scoring_model`), whose wrapped weights take ``W₀ + ΔW``
as well: a second copy of the base, made only when generative tasks are merged.

On a quantized base (``model.quantize``) the adapted modules of these copies are de-quantized, ``W₀`` their
full-precision value: the numbers the merged model computes on the quantized base, up to rounding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from taskgraph.data import TaskData, task_batches
from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.progress import SILENT, MergeProgress
from taskgraph.metrics import accuracy, macro_f1
from taskgraph.model import TaskGraphModel, unload
from taskgraph.model.lm_base import hidden_trunk
from taskgraph.model.modes import inference_mode_of
from taskgraph.model.pooling import pool
from taskgraph.model.quantize import dequantize_base, dequantized
from taskgraph.train.evaluate_generative import score_generative


class MergedScorer:
    """A plain base whose adapted modules take ``W₀ + ΔW`` for each merge scored, and the tasks' heads.

    Args:
        model: a source model (its base, adapted module names and pooling are used).
        heads: one ``(weight [C, D], bias [C])`` per task, in task order.
        pad_id: the id batches are padded with.
        batch_size: examples per forward pass.
        lm: the merged model with every adapter zero (:func:`~taskgraph.merge.build.scoring_model`), task ``i`` the
            merge's task ``i``; needed to score a generative task (default: None, classification tasks only).
        progress: hears of the examples a classification task has scored (a line every few seconds).
    """

    def __init__(
        self,
        model: TaskGraphModel,
        heads: Sequence[tuple[Tensor, Tensor]],
        *,
        pad_id: int,
        batch_size: int = 128,
        lm: TaskGraphModel | None = None,
        progress: MergeProgress = SILENT,
    ) -> None:
        # a quantized base's adapted layers are de-quantized in this copy: W₀ + ΔW is written in full precision
        self.base = dequantize_base(unload(model), model.adapted_names).eval()
        self.trunk = hidden_trunk(self.base)
        self.device = model.device
        self.pooling = model.spec.model.pooling
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.lm = lm
        self.progress = progress
        self.modules: dict[str, list[tuple[nn.Module, Tensor, bool]]] = {}
        for name, layer in model.adapted:
            module = self.base.get_submodule(name)
            self.modules[name] = [(module, module.weight.detach().clone(), layer.fan_in_fan_out)]
        for name, layer in [] if lm is None else lm.adapted:
            layer.base = dequantized(layer.base)
            self.modules[name].append((layer.base, layer.base.weight.detach().clone(), layer.fan_in_fan_out))
        self.heads = [(w.detach().to(self.device), b.detach().to(self.device)) for w, b in heads]

    @torch.no_grad()
    def apply(self, merged: Mapping[str, LowRank]) -> None:
        """Set every adapted module's weight to ``W₀ + ΔW`` (``W₀`` where ``merged`` has no entry)."""
        for name, copies in self.modules.items():
            for module, original, transposed in copies:
                weight = original.clone()
                if name in merged:
                    delta = merged[name].dense().to(weight)  # [d_out, d_in]
                    weight += delta.T if transposed else delta
                module.weight.copy_(weight)

    @torch.no_grad()
    def score(self, data: TaskData, task: int) -> dict[str, float]:
        """``{"n", "accuracy", "macro_f1"}`` of one task's examples under the weights last applied (a generative
        task's: ``{"n", "accuracy"}``, its validation metric)."""
        if data.targets is not None:
            return self._score_generative(data, task)
        weight, bias = self.heads[task]
        preds = []
        for batch in task_batches(data, self.batch_size, self.pad_id):
            batch = batch.to(self.device)
            hidden = self.trunk(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
            pooled = pool(self.pooling, hidden, batch.attention_mask)  # [b, D]
            preds.append((pooled.to(weight.dtype) @ weight.T + bias).argmax(-1))  # [b]
            self.progress.tick(f"task {data.name!r}: scored {sum(len(p) for p in preds)}/{len(data)} examples")
        pred = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)  # [N]
        classes = weight.shape[0]
        return {
            "n": len(data),
            "accuracy": accuracy(pred, data.labels),
            "macro_f1": macro_f1(pred, data.labels, classes),
        }

    def _score_generative(self, data: TaskData, task: int) -> dict[str, float]:
        if self.lm is None:
            raise ValueError(f"task {data.name!r} generates: give MergedScorer the merged model as lm= to score it")
        with inference_mode_of(self.lm):
            correct, _ = score_generative(
                self.lm,
                dataclasses.replace(data, task_id=task),
                pad_id=self.pad_id,
                batch_size=self.batch_size,
                device=self.device,
            )
        return {"n": len(data), "accuracy": correct / max(1, len(data))}

    def score_all(self, data: Sequence[TaskData]) -> list[dict[str, float]]:
        """:meth:`score` of every task (``data[i]`` is task i's split)."""
        return [self.score(d, i) for i, d in enumerate(data)]

    def __repr__(self) -> str:
        return (
            f"MergedScorer(base={type(self.base).__name__}, modules={len(self.modules)}, tasks={len(self.heads)}, "
            f"lm={self.lm is not None})"
        )
