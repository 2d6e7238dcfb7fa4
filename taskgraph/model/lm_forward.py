"""The forward of a generative :class:`~taskgraph.model.TaskGraphModel`: classification and text-to-text rows in one batch.

The base is a language model (:mod:`taskgraph.model.lm_base`); one routed pass serves the whole batch::

    hidden = trunk(input_ids, mask)                  # [B, S, D]  routed: every row under its own task's routing
    class_logits = heads(pool(hidden, mask))         # [B, C_max] read for classification rows
    causal:  nll = NLL(lm_head(hidden[rows, i-1]), labels[rows, i])     only the target positions meet the LM head
    seq2seq: nll = NLL(decoder(hidden[gen], shift(labels[gen])))        the decoder runs on the generative rows
    loss = mean over rows of (CE on a classification row | mean target NLL on a generative row)

so a causal LM computes its vocabulary projection on the target tokens alone (not on every position of
every row), and an encoder-decoder encodes once for both objectives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from taskgraph.adapters.context import BatchRouting
from taskgraph.data.lm_inputs import decoder_inputs
from taskgraph.errors import ModelError
from taskgraph.model.lm_base import decoder_start_id, lm_logits
from taskgraph.model.lm_loss import (
    mixed_batch_loss,
    per_example_mean,
    seq2seq_example_nll,
    shifted_positions,
    token_hits,
    token_nll,
)
from taskgraph.model.output import TaskGraphOutput, TaskIds
from taskgraph.model.pooling import pool

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


def lm_forward(
    model: TaskGraphModel,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    task_ids: TaskIds,
    labels: Tensor | None,
    targets: Tensor | None,
    token_type_ids: Tensor | None,
    distinct: tuple[Tensor, Tensor] | None,
) -> TaskGraphOutput:
    """See the module docstring; shapes as :meth:`TaskGraphModel.forward`, ``targets`` as its docstring says."""

    hidden, mask, ids, routing, tasks, inverse, factors = model.route_hidden(
        input_ids, attention_mask, task_ids, token_type_ids, distinct
    )
    batch = input_ids.shape[0]
    class_logits = model.heads(pool(model.spec.model.pooling, hidden, mask), tasks, inverse)  # [B, C_max]
    generative = model.generative_tasks(ids.device)[ids]  # [B] bool
    nll = torch.zeros(batch, device=hidden.device)  # [B]
    hits = torch.zeros(batch, dtype=torch.bool, device=hidden.device)  # [B]
    if targets is not None:
        targets = targets.to(hidden.device)
        if model.lm_kind == "causal":
            nll, hits = _causal_nll(model, hidden, targets)
        else:
            rows = generative.nonzero().squeeze(1)  # [G]
            if rows.numel():
                sub = BatchRouting(
                    routing, inverse[rows], None if factors is None else [(a[rows], b[rows]) for a, b in factors]
                )
                nll_g, hits_g = seq2seq_nll(model, sub, hidden[rows], mask[rows], targets[rows])  # [G], [G]
                nll, hits = nll.index_copy(0, rows, nll_g), hits.index_copy(0, rows, hits_g)
    loss = example_loss = None
    if labels is not None or targets is not None:
        if targets is None and bool(generative.any()):
            raise ModelError("a batch with examples of a generate task needs their targets (targets=...)")
        given = torch.zeros_like(ids) if labels is None else labels.to(ids.device, torch.long).reshape(-1)  # [B]
        _check_labels(model, given, ids, generative, labels is not None)
        loss, example_loss = mixed_batch_loss(class_logits, given, generative, nll)
    return TaskGraphOutput(
        class_logits,
        loss,
        routing,
        tasks,
        inverse,
        example_loss=example_loss,
        target_hits=hits if targets is not None else None,
    )


def _causal_nll(model: TaskGraphModel, hidden: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    rows, positions, tokens = shifted_positions(labels)  # [N] each
    logits = lm_logits(model.base, hidden[rows, positions])  # [N, V]
    batch = hidden.shape[0]
    return per_example_mean(token_nll(logits, tokens), rows, batch), token_hits(logits, tokens, rows, batch)


def seq2seq_nll(
    model: TaskGraphModel, routing: BatchRouting, encoded: Tensor, mask: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """``(mean target NLL [G], every target token argmax-right [G])`` of an encoder-decoder's rows decoded from
    their encoder states ``encoded [G, S, D]`` under ``routing`` (the rows' own; also rank classification's)."""
    from transformers.modeling_outputs import BaseModelOutput

    base = model.base
    start = decoder_start_id(base)
    pad = base.config.pad_token_id if isinstance(base.config.pad_token_id, int) else 0
    dec_ids, dec_mask = decoder_inputs(labels, start, pad)  # [G, T], [G, T]
    with model.context.use(routing):
        logits = base(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
            attention_mask=mask,
            decoder_input_ids=dec_ids,
            decoder_attention_mask=dec_mask,
        ).logits  # [G, T, V]
    rows, cols = (labels != -100).nonzero(as_tuple=True)  # [N], [N]
    hits = token_hits(logits[rows, cols], labels[rows, cols], rows, labels.shape[0])  # [G]
    return seq2seq_example_nll(logits, labels), hits


def _check_labels(model: TaskGraphModel, labels: Tensor, ids: Tensor, generative: Tensor, given: bool) -> None:
    limits = torch.tensor(model.heads.num_labels, device=ids.device)[ids]  # [B]
    bad = ~generative & ((labels < 0) | (labels >= limits)) if given else ~generative  # [B]
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        name = model.task_names[int(ids[b])]
        if not given:
            raise ModelError(f"example {b} is of classification task {name!r}: give labels=...")
        raise ModelError(
            f"label {int(labels[b])} of example {b} is out of range for task {name!r}, "
            f"which has {int(limits[b])} labels (0..{int(limits[b]) - 1})"
        )
