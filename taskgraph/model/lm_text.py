"""A model's prompts to token ids: texts through its tokenizer, or token ids as given, left-truncated at
``model.max_length`` (the tokenizer helpers are :mod:`taskgraph.data.encoding`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from taskgraph.data.encoding import tokenize_prompts
from taskgraph.data.lm_inputs import left_truncate
from taskgraph.errors import ModelError

if TYPE_CHECKING:
    from taskgraph.model.taskgraph_model import TaskGraphModel


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
