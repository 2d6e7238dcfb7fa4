"""Rank classification: a ``choices`` task answered by the likeliest choice, without generating (T0, MHR).

Every (prompt, choice) pair is scored in one batched pass under the task's routing: the choice's
length-normalised log-likelihood, the mean log-probability of its tokens and the end token
(:mod:`taskgraph.model.lm_loss`), so a long choice is not penalised for its length. An encoder-decoder encodes
each prompt once and decodes its C choices from that one encoding (the encoder is most of the cost: C times less
work than encoding every pair); a decoder reads prompt and choice as one sequence, so it runs every pair. The prediction is the
best-scoring choice; accuracy and macro-F1 follow without a decoding step (Sanh et al., 2022, "Multitask
Prompted Training Enables Zero-Shot Task Generalization", §3; Caccia et al., 2023, MHR, §5).

Shapes: ``N`` prompts × ``C`` choices → scores ``[N, C]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.data.encoding import tokenize_targets
from taskgraph.data.lm_inputs import causal_rows, seq2seq_rows
from taskgraph.errors import ModelError
from taskgraph.model.lm_base import end_token_id
from taskgraph.model.lm_text import encode_prompts
from taskgraph.model.modes import inference_mode_of

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel

PAIRS_PER_PASS = 256  # (prompt, choice) rows per forward pass


@torch.no_grad()
def choice_scores(
    model: TaskGraphModel,
    task: int,
    prompts: Sequence[Sequence[int]],
    choices: Sequence[Sequence[int]],
    pairs_per_pass: int = PAIRS_PER_PASS,
    advance: Callable[[], None] | None = None,
) -> Tensor:
    """``[N, C]`` length-normalised log-likelihood of every choice (token ids, end token included) per prompt;
    ``advance`` is called after each of the :func:`choice_passes` forward passes (a progress report)."""
    n, c = len(prompts), len(choices)
    pad = (
        model.tokenizer.pad_token_id if model.tokenizer is not None and model.tokenizer.pad_token_id is not None else 0
    )
    if model.lm_kind != "causal":
        return _seq2seq_scores(model, task, prompts, choices, pad, max(1, pairs_per_pass // c), advance)
    pairs = [(p, ch) for p in prompts for ch in choices]  # N·C, prompt-major
    scores = torch.empty(n * c)  # [N·C]
    with inference_mode_of(model):
        for start in range(0, len(pairs), pairs_per_pass):
            part = pairs[start : start + pairs_per_pass]
            ids, mask, targets = causal_rows([p for p, _ in part], [ch for _, ch in part], pad)
            device = model.device
            out = model(ids.to(device), mask.to(device), task, targets=targets.to(device))
            scores[start : start + len(part)] = -out.example_loss.float().cpu()  # mean log-prob per token
            if advance is not None:
                advance()
    return scores.reshape(n, c)  # [N, C]


def choice_passes(model: TaskGraphModel, prompts: int, choices: int, pairs_per_pass: int = PAIRS_PER_PASS) -> int:
    """The forward passes :func:`choice_scores` takes for ``prompts`` × ``choices``."""
    if model.lm_kind != "causal":
        return math.ceil(prompts / max(1, pairs_per_pass // max(choices, 1)))
    return math.ceil(prompts * choices / pairs_per_pass)


def _seq2seq_scores(
    model: TaskGraphModel,
    task: int,
    prompts: Sequence[Sequence[int]],
    choices: Sequence[Sequence[int]],
    pad: int,
    prompts_per_pass: int,
    advance: Callable[[], None] | None = None,
) -> Tensor:
    """``[N, C]``: each prompt encoded once under the task's routing, its C choices decoded from that encoding."""
    from taskgraph.adapters.context import BatchRouting
    from taskgraph.model.lm_forward import seq2seq_nll

    n, c = len(prompts), len(choices)
    scores = torch.empty(n, c)  # [N, C]
    device = model.device
    with inference_mode_of(model):
        for start in range(0, n, prompts_per_pass):
            part = prompts[start : start + prompts_per_pass]
            ids, mask, _ = seq2seq_rows(part, [None] * len(part), pad)  # [P, S], [P, S]
            ids, mask = ids.to(device), mask.to(device)
            hidden, mask, _, routing, _, inverse, factors = model.route_hidden(ids, mask, task, None, None)
            rows = torch.arange(len(part), device=device).repeat_interleave(c)  # [P·C]: prompt-major
            expanded = BatchRouting(
                routing, inverse[rows], None if factors is None else [(a[rows], b[rows]) for a, b in factors]
            )
            _, _, labels = seq2seq_rows([[]] * (len(part) * c), [list(ch) for ch in choices] * len(part), pad)
            nll, _ = seq2seq_nll(model, expanded, hidden[rows], mask[rows], labels.to(device))  # [P·C]
            scores[start : start + len(part)] = -nll.float().cpu().reshape(len(part), c)
            if advance is not None:
                advance()
    return scores


def rank_choices(
    model: TaskGraphModel,
    task: int | str,
    prompts: Sequence[str] | Sequence[Sequence[int]],
) -> tuple[list[int], Tensor]:
    """The chosen choice of every prompt of a ``choices`` task and the scores ``[N, C]`` it was chosen by."""
    index = model.task_index(task)
    spec = model.spec.tasks[index]
    if not spec.generative or not spec.choices:
        raise ModelError(
            f"task {spec.name!r} has no choices to rank; rank classification is for a generate task with choices: [...]"
        )
    if model.tokenizer is None:
        raise ModelError("ranking choices needs the model's tokenizer (the choices are text)")
    choices = tokenize_targets(model.tokenizer, spec.choices, end_token_id(model.base, model.tokenizer))
    scores = choice_scores(model, index, encode_prompts(model, prompts), choices)
    return scores.argmax(dim=1).tolist(), scores
