"""Texts to token ids for generative tasks: prompts (left-truncated) and targets (with the end token).

A target is tokenized on its own, without special tokens, and the end token is appended; it follows the
prompt's tokens as they are (so with a GPT-2 tokenizer a target that should read as a new word carries its
leading space: ``choices: [" negative", " positive"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from taskgraph.errors import ModelError
from taskgraph.model.lm_inputs import left_truncate

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


def tokenize_prompts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of prompts (the tokenizer's special tokens added), each cut to its last ``max_length`` tokens."""
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [left_truncate(row, max_length) for row in ids]


def tokenize_targets(tokenizer: Any, texts: Sequence[str], end_id: int) -> list[list[int]]:
    """Token ids of targets: no special tokens, the end token appended."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [list(row) + [end_id] for row in ids]


def encode_prompts(model: TaskGraphModel, prompts: Sequence[str] | Sequence[Sequence[int]]) -> list[list[int]]:
    """Token ids of the prompts (texts through the model's tokenizer, or token ids as given), left-truncated."""
    limit = model.spec.model.max_length
    if all(isinstance(p, str) for p in prompts):
        if model.tokenizer is None:
            raise ModelError("text prompts need a tokenizer: this model has none (give model.tokenizer, or token ids)")
        return tokenize_prompts(model.tokenizer, list(prompts), limit)  # type: ignore[arg-type]
    if not all(isinstance(p, (list, tuple)) and all(isinstance(t, int) for t in p) for p in prompts):
        raise ModelError("prompts are all texts or all lists of token ids")
    return [left_truncate(list(p), limit) for p in prompts]  # type: ignore[arg-type]
