"""A task's split encoded once: texts through the tokenizer (truncated), token ids checked against the model."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from taskgraph.data import encode_examples
from taskgraph.data.examples import Examples
from taskgraph.errors import DataError


@pytest.fixture
def tokenizer(tmp_path: Path):  # noqa: ANN201
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "movie"]) + "\n")
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer", "do_lower_case": true}')
    return AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)


def test_encode_texts_with_the_tokenizer_truncating_at_max_length(tokenizer) -> None:  # noqa: ANN001
    examples = Examples("review", [1, 0], texts=["Good movie", "movie movie movie movie movie"])
    data = encode_examples(examples, 4, tokenizer=tokenizer, max_length=5, pad_id=0, vocab_size=6)
    assert data.ids.tolist() == [[2, 4, 5, 3, 0], [2, 5, 5, 5, 3]]
    assert data.lengths.tolist() == [4, 5]
    assert data.labels.tolist() == [1, 0]
    assert data.task_id == 4 and len(data) == 2


def test_encode_token_ids_and_its_errors(tokenizer) -> None:  # noqa: ANN001
    planted = Examples("p", [0, 1], token_ids=[[5, 6, 7], [8, 9, 10]])
    data = encode_examples(planted, 0, tokenizer=None, max_length=3, pad_id=0, vocab_size=11)
    assert data.ids.tolist() == [[5, 6, 7], [8, 9, 10]]
    with pytest.raises(DataError, match="model.max_length is 2"):
        encode_examples(planted, 0, tokenizer=None, max_length=2, pad_id=0)
    with pytest.raises(DataError, match=r"token id 10 is outside the model's vocabulary \[0, 10\)"):
        encode_examples(planted, 0, tokenizer=None, max_length=3, pad_id=0, vocab_size=10)
    with pytest.raises(DataError, match="no tokenizer"):
        encode_examples(Examples("r", [0], texts=["good"]), 0, tokenizer=None, max_length=8, pad_id=0)
