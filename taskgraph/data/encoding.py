"""Texts to token ids through a tokenizer: a classification text (truncated at its end), a generative task's prompt
(left-truncated: its cue is at its end) and target (no special tokens, the end token appended).

A target follows the prompt's tokens as they are (so with a GPT-2 tokenizer a target that should read as a new word
carries its leading space: ``choices: [" negative", " positive"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskgraph.data.lm_inputs import left_truncate


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every text (special tokens added, truncated to ``max_length``)."""
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [list(ids) for ids in encoded["input_ids"]]


def tokenize_prompts(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of prompts (the tokenizer's special tokens added), each cut to its last ``max_length`` tokens."""
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    return [left_truncate(row, max_length) for row in ids]


def tokenize_targets(tokenizer: Any, texts: Sequence[str], end_id: int) -> list[list[int]]:
    """Token ids of targets: no special tokens, the end token appended."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [list(row) + [end_id] for row in ids]
