"""A generative task's encoded data and batches: prompts, targets, and the layout the model reads them in.

Encoding (once per split): the prompt's tokens, cut to their last ``model.max_length`` (a template's cue is at
its end), and the target's tokens plus the end token (:mod:`taskgraph.data.encoding`); a target longer than the
task's ``max_new_tokens`` is a :class:`~taskgraph.errors.DataError` naming the example (generation could never
write it). A ``choices`` task also keeps its choices' tokens, for rank classification; two choices the tokenizer
maps to the same tokens (``Yes`` / ``yes`` under an uncased tokenizer) are a DataError naming them, since no model
could tell them apart.

Batching: the rows of a batch are laid out for the base (:mod:`taskgraph.data.lm_inputs`): a causal LM reads
``prompt + target`` with labels on the target, an encoder-decoder the prompt with the target as the decoder's
labels. Classification rows of the same batch are their text alone, without labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from taskgraph.data.encoding import tokenize_targets
from taskgraph.data.examples import Examples
from taskgraph.data.lm_inputs import IGNORE, causal_rows, seq2seq_rows
from taskgraph.errors import DataError

if TYPE_CHECKING:
    from taskgraph.data.task_data import TaskData


@dataclass(frozen=True)
class LMInfo:
    """What encoding needs of a generative model: its kind (``causal`` / ``seq2seq``) and its end token
    (:meth:`TaskGraphModel.lm_info <taskgraph.model.TaskGraphModel.lm_info>`)."""

    kind: str
    end_id: int

    def for_task(self, task: Any) -> TargetLayout | None:
        """The layout of a :class:`~taskgraph.spec.TaskSpec`'s examples; None for a classification task."""
        if not task.generative:
            return None
        return TargetLayout(
            self.kind, self.end_id, task.max_new_tokens, None if task.choices is None else tuple(task.choices)
        )


@dataclass(frozen=True)
class TargetLayout:
    """How one generative task's examples are encoded: layout, end token, target limit, choices."""

    kind: str
    end_id: int
    max_new_tokens: int
    choices: tuple[str, ...] | None = None


def encode_targets(
    examples: Examples, layout: TargetLayout, tokenizer: Any | None, split: str = ""
) -> tuple[Tensor, tuple[tuple[int, ...], ...] | None]:
    """``(targets [N, T], choices)``: every target's tokens and the end token, :data:`IGNORE`-padded, and the choices'
    tokens (None without choices). DataError for a target longer than ``max_new_tokens``, or for choices that
    tokenize alike (:func:`check_distinct_choices`)."""
    if examples.target_ids is not None:
        sequences = [list(map(int, t)) + [layout.end_id] for t in examples.target_ids]
    else:
        if tokenizer is None:
            raise DataError(
                f"task {examples.task!r} has text targets but the model has no tokenizer; give "
                "model.tokenizer in the spec"
            )
        sequences = tokenize_targets(tokenizer, examples.targets or [], layout.end_id)
    too_long = [i for i, s in enumerate(sequences) if len(s) > layout.max_new_tokens]
    if too_long:
        i = too_long[0]
        raise DataError(
            f"task {examples.task!r}: example {i}{f' of the {split} split' if split else ''} has a target "
            f"of {len(sequences[i])} tokens (with the end token), more than the task's max_new_tokens "
            f"{layout.max_new_tokens}; raise tasks[].max_new_tokens or shorten the target "
            f"({len(too_long)} example(s) are too long)"
        )
    width = max(len(s) for s in sequences)
    targets = torch.full((len(sequences), width), IGNORE, dtype=torch.long)  # [N, T]
    for row, seq in enumerate(sequences):
        targets[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    choices = None
    if layout.choices is not None and tokenizer is not None:
        choices = tuple(tuple(c) for c in tokenize_targets(tokenizer, list(layout.choices), layout.end_id))
        check_distinct_choices(examples.task, layout.choices, choices, tokenizer)
    return targets, choices


def check_distinct_choices(
    task: str, choices: Sequence[str], tokens: Sequence[Sequence[int]], tokenizer: Any | None = None
) -> None:
    """DataError naming every group of ``choices`` whose ``tokens`` are the same: rank classification would score
    them alike and generation could never write one rather than the other."""
    by_tokens: dict[tuple[int, ...], list[str]] = {}
    for choice, ids in zip(choices, tokens):
        by_tokens.setdefault(tuple(ids), []).append(choice)
    alike = [group for group in by_tokens.values() if len(group) > 1]
    if not alike:
        return
    named = "; ".join(" and ".join(repr(c) for c in group) for group in alike[:5])
    name = getattr(tokenizer, "name_or_path", "")
    which = f"tokenizer {name}" if name else "the model's tokenizer"
    ids = next(list(ids) for ids, group in by_tokens.items() if group is alike[0])
    raise DataError(
        f"task {task!r}: choices {named} tokenize to the same tokens with {which} ({ids[:8]}), so the "
        "model could never tell them apart (rank classification scores them alike, generation cannot write one "
        "rather than the other); give choices that differ after tokenization — this tokenizer may lowercase, strip "
        "accents or map unknown characters to one token"
    )


def target_rows(targets: Tensor) -> list[list[int]]:
    """The target token lists of ``targets [N, T]`` (padding dropped)."""
    return [[t for t in row if t != IGNORE] for row in targets.tolist()]


def text2text_rows(
    items: Sequence[tuple[int, int]],
    data: Sequence[TaskData] | Mapping[int, TaskData],
    pad_id: int,
    tasks: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """The inputs of a batch holding generative rows, laid out for the base (see the module docstring):
    ``(input_ids [B, S], attention_mask [B, S], targets)``, the targets ``[B, S]`` (causal) or ``[B, T]`` (seq2seq)."""
    prompts: list[list[int]] = []
    targets: list[list[int] | None] = []
    kinds = {data[t].layout for t in tasks.tolist()} - {None}
    if len(kinds) != 1:
        raise DataError(f"a batch mixes generative layouts {sorted(kinds)}; one model has one")
    for task, row in items:
        part = data[task]
        prompts.append(part.ids[row, : int(part.lengths[row])].tolist())
        targets.append(None if part.targets is None else [t for t in part.targets[row].tolist() if t != IGNORE])
    layout = causal_rows if kinds == {"causal"} else seq2seq_rows
    return layout(prompts, targets, pad_id)
