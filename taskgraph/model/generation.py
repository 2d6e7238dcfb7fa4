"""Routed generation: completions for a batch of prompts from any mix of generative tasks, in one call.

Each prompt is decoded under its own task's routing, fixed for every decoding step. The routing of the
batch's distinct tasks and every adapted layer's per-row factors are computed once, before the first step,
and set on the model's routing context for the whole ``transformers`` ``generate`` call (KV cache on)::

    tasks, inverse = unique(task_ids)                          # [U], [B]
    rows = inverse.repeat_interleave(num_beams)                # [B·n]: generate expands row b to b·n .. b·n+n-1
    with context.use(BatchRouting(router(tasks), rows, fused(routing, rows))):
        out = base.generate(prompts, num_beams=n, ...)         # every step, every beam: its prompt's routing

Beam search reorders the cache among the beams of one prompt only, so a row keeps its prompt's task; an
encoder-decoder encodes the prompts once under the prompt rows' routing and decodes under the expanded rows'.
Prompts are left-padded for a decoder (:func:`~taskgraph.data.lm_inputs.left_pad`).

Each task writes at most its ``max_new_tokens`` and stops at the end token; a completion's text ends before
the first of its task's ``stop`` strings. Greedy (default), beam search (``num_beams``) and sampling
(``do_sample``, ``temperature``, ``top_k``, ``top_p``, ``seed``) come from transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from taskgraph.adapters.context import BatchRouting
from taskgraph.data.lm_inputs import left_pad, right_pad
from taskgraph.errors import ModelError
from taskgraph.model.lm_base import end_token_id
from taskgraph.model.lm_text import encode_prompts
from taskgraph.model.modes import inference_mode_of

if TYPE_CHECKING:
    from taskgraph.model.output import TaskIds
    from taskgraph.model.taskgraph_model import TaskGraphModel


@dataclass
class Completion:
    """One prompt's completion.

    Args:
        token_ids: the new tokens, without the end token.
        text: their decoded text, cut before the first stop string (None without a tokenizer).
        stopped: ``"end"`` (the end token), ``"stop"`` (a stop string), or ``"length"`` (``max_new_tokens``).
    """

    token_ids: list[int]
    text: str | None
    stopped: str


@dataclass(frozen=True)
class Decoding:
    """How to pick tokens: greedy (the default), beam search (``num_beams > 1``) or sampling (``do_sample``)."""

    num_beams: int = 1
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ModelError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.do_sample and self.num_beams > 1:
            raise ModelError("choose beam search (num_beams > 1) or sampling (do_sample), not both")
        if self.temperature <= 0:
            raise ModelError(f"temperature must be > 0, got {self.temperature}")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``generate`` for this decoding."""
        if self.do_sample:
            extra = {k: v for k, v in (("top_k", self.top_k), ("top_p", self.top_p)) if v is not None}
            return {"do_sample": True, "temperature": self.temperature, "num_beams": 1, **extra}
        return {"do_sample": False, "num_beams": self.num_beams}


@torch.no_grad()
def generate(
    model: TaskGraphModel,
    task_ids: TaskIds,
    prompts: Sequence[str] | Sequence[Sequence[int]],
    *,
    max_new_tokens: int | None = None,
    stop: Sequence[str] | None = None,
    decoding: Decoding = Decoding(),
) -> list[Completion]:
    """Completions of ``prompts`` (texts, or token id lists), each under its task's routing, in one batch.

    Args:
        model: a :class:`~taskgraph.model.TaskGraphModel` on a language-model base; run in eval mode (inference
            routing), its mode restored after.
        task_ids: one task (name or id) for every prompt, or one for all; every task must be generative.
        prompts: the inputs as the task's data gives them (templated already).
        max_new_tokens: overrides every task's ``max_new_tokens``. (default: the tasks')
        stop: overrides every task's ``stop`` strings. (default: the tasks')
        decoding: greedy, beam search or sampling (:class:`Decoding`).
    """
    if model.lm_kind is None:
        raise ModelError("generate needs a language-model base: give the spec a task with objective: generate")
    if not prompts:
        return []
    ids = model.task_tensor(task_ids, len(prompts), model.device)  # [B]
    specs = [model.spec.tasks[i] for i in ids.tolist()]
    classify = sorted({t.name for t in specs if not t.generative})
    if classify:
        raise ModelError(
            f"tasks {classify} classify; generate writes text for generative tasks only (predict their labels instead)"
        )
    limits = [max_new_tokens or t.max_new_tokens for t in specs]
    new = generate_ids(model, ids, encode_prompts(model, prompts), limits, decoding)
    end = end_token_id(model.base, model.tokenizer)
    return [
        _completion(model, row, end, limit, list(stop) if stop is not None else t.stop)
        for row, limit, t in zip(new, limits, specs)
    ]


def generate_ids(
    model: TaskGraphModel, ids: Tensor, prompts: list[list[int]], limits: Sequence[int], decoding: Decoding = Decoding()
) -> list[list[int]]:
    """The new token ids of every prompt (end token included when written), at most ``limits[b]`` each."""
    base = model.base
    end = end_token_id(base, model.tokenizer)
    pad = base.config.pad_token_id if isinstance(getattr(base.config, "pad_token_id", None), int) else end
    device = model.device
    beams = decoding.num_beams
    with inference_mode_of(model):
        tasks, inverse = torch.unique(ids, return_inverse=True)  # [U], [B]
        routing = model.router(tasks)  # gates [U, L], weights [U, L, H, K]: fixed for every step
        rows = inverse.repeat_interleave(beams)  # [B·n]
        expanded = BatchRouting(routing, rows, model.fused(routing, rows) if model.fuse_layers else None)
        options = dict(
            max_new_tokens=max(limits),
            eos_token_id=end,
            pad_token_id=pad,
            use_cache=True,
            num_return_sequences=1,
            **decoding.options(),
        )
        seeded = _seeded(decoding.seed, device)
        if model.lm_kind == "causal":
            input_ids, mask = (t.to(device) for t in left_pad(prompts, pad))  # [B, S]
            with model.context.use(expanded), seeded:
                out = base.generate(input_ids=input_ids, attention_mask=mask, **options)  # [B, S + M]
            new = out[:, input_ids.shape[1] :]  # [B, M]
        else:
            from transformers.modeling_outputs import BaseModelOutput

            input_ids, mask = (t.to(device) for t in right_pad(prompts, pad))  # [B, S]
            prompt_rows = BatchRouting(routing, inverse, model.fused(routing, inverse) if model.fuse_layers else None)
            with model.context.use(prompt_rows):
                encoded = base.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [B, S, D]
            with model.context.use(expanded), seeded:
                out = base.generate(
                    encoder_outputs=BaseModelOutput(last_hidden_state=encoded), attention_mask=mask, **options
                )  # [B, 1 + M]
            new = out[:, 1:]  # the decoder's start token dropped
    return [_cut(row, end, limit) for row, limit in zip(new.tolist(), limits)]


def _seeded(seed: int | None, device: torch.device) -> Any:
    """Sampling draws from ``seed`` (the caller's random state left as it was), or from the global state."""
    if seed is None:
        return nullcontext()
    devices = [device.index or 0] if device.type == "cuda" else []

    class _Seed:
        def __enter__(self) -> None:
            self.fork = torch.random.fork_rng(devices=devices)
            self.fork.__enter__()
            torch.manual_seed(seed)

        def __exit__(self, *exc: Any) -> None:
            self.fork.__exit__(*exc)

    return _Seed()


def _cut(row: list[int], end: int, limit: int) -> list[int]:
    """New tokens up to and including the first end token, at most ``limit`` of them."""
    row = row[:limit]
    return row[: row.index(end) + 1] if end in row else row


def _completion(model: TaskGraphModel, row: list[int], end: int, limit: int, stop: list[str]) -> Completion:
    ended = bool(row) and row[-1] == end
    tokens = row[:-1] if ended else row
    stopped = "end" if ended else "length"
    text = None
    if model.tokenizer is not None:
        text, cut = stop_text(model.tokenizer.decode(tokens, skip_special_tokens=True), stop)
        stopped = "stop" if cut else stopped
    return Completion(tokens, text, stopped)


def stop_text(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """``(text before the first of the stop strings, whether one was found)``."""
    cuts = [text.index(s) for s in stop if s in text]
    return (text[: min(cuts)], True) if cuts else (text, False)
