"""A generative base: which language-model class a spec with ``objective: generate`` tasks loads, and its parts.

The kind comes from the base's config, never from a name:

* ``seq2seq`` — an encoder-decoder (``config.is_encoder_decoder``): T5, BART, … as ``AutoModelForSeq2SeqLM``,
  and ``model_type: encoder-decoder`` (a BERT2BERT ``EncoderDecoderModel``; ``model.warm_start: encoder-decoder``
  builds one whose encoder and decoder both start from the weights at ``model.path``);
* ``causal`` — a decoder (GPT-2, Llama, …) as ``AutoModelForCausalLM``;
* an encoder (BERT, MiniLM: a masked-LM family that is not configured as a decoder) has no generative form:
  a :class:`~taskgraph.errors.ModelError` saying which bases do.

A classification task of a generative spec pools the hidden states of :func:`hidden_trunk` (the decoder's
trunk without its LM head, or the encoder of an encoder-decoder), so both objectives share one base. A causal LM's
target loss reads the LM head on the target positions alone (:func:`lm_logits`), with the final logit soft-capping
of the Gemma 2 / 3 families applied as their own forward applies it; a family that rescales its logits in its forward
in a way of its own (Cohere's ``logit_scale``, Granite's ``logits_scaling``) is refused (:func:`check_logit_transform`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError

LM_KINDS = ("causal", "seq2seq")
GENERATIVE_BASES = "a decoder (gpt2, llama, ...) or an encoder-decoder (t5, bart, or model.warm_start: encoder-decoder)"


def lm_kind_of_config(config: Any, where: str) -> str:
    """``"causal"`` or ``"seq2seq"`` for a transformers config; ModelError for an encoder-only family."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    encoder_only = model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)
    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not encoder_only:
        return "causal"
    raise ModelError(
        f"{where}: a generate task needs a language model that writes text, but {model_type!r} is an "
        f"encoder{'' if encoder_only else ' without a causal-LM form'}; use {GENERATIVE_BASES}, or "
        "make every task objective: classify"
    )


def is_decoder(config: Any) -> bool:
    """Whether ``config`` is a decoder's (a causal-LM family, not an encoder nor an encoder-decoder): its trunk's forward
    takes ``use_cache`` and, by default, builds a key / value cache."""
    try:
        return lm_kind_of_config(config, "model") == "causal"
    except ModelError:
        return False


def lm_kind_of(base: nn.Module) -> str | None:
    """The kind of a built base: ``"causal"``, ``"seq2seq"``, or None when it has no LM head (a classifier's base)."""
    if not hasattr(base, "generate") or base.get_output_embeddings() is None:
        return None
    return "seq2seq" if getattr(base.config, "is_encoder_decoder", False) else "causal"


def lm_class(config: Any) -> Any:
    """The transformers class a generative base of ``config`` loads as."""
    import transformers

    if getattr(config, "model_type", None) == "encoder-decoder":
        return transformers.EncoderDecoderModel
    if lm_kind_of_config(config, "model") == "seq2seq":
        return transformers.AutoModelForSeq2SeqLM
    return transformers.AutoModelForCausalLM


def instantiate_lm(config: Any) -> nn.Module:
    """A randomly initialised generative base of ``config`` (call under a seeded RNG)."""
    cls = lm_class(config)
    if hasattr(cls, "from_config"):
        return cls.from_config(config)
    return cls(config=config)


LOGIT_RESCALING = ("logit_scale", "logits_scaling")  # config fields of families that rescale logits in their forward


def lm_logits(base: nn.Module, hidden: Tensor) -> Tensor:
    """A causal LM's next-token logits ``[N, V]`` from last hidden states ``hidden [N, D]``, as its own forward computes
    them: the output embedding, then ``cap · tanh(z / cap)`` when the config sets ``final_logit_softcapping`` (Gemma 2,
    Gemma 3)."""
    logits = base.get_output_embeddings()(hidden)  # [N, V]
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap  # [N, V]
    return logits


def check_logit_transform(base: nn.Module) -> None:
    """ModelError for a causal LM whose forward rescales its logits in a way :func:`lm_logits` does not reproduce
    (its target loss would not be the model's own)."""
    config = base.config
    found = {name: getattr(config, name, None) for name in LOGIT_RESCALING}
    found = {name: value for name, value in found.items() if value not in (None, 1, 1.0)}
    if found:
        raise ModelError(
            f"a generate task on {config.model_type!r}: its forward rescales the logits ({found}), which taskgraph's "
            "target loss does not reproduce; use a family without it (llama, qwen2, mistral, phi3, gemma, gemma2, "
            "gpt2, ...) or make every task objective: classify"
        )


def pretrained_lm(config: Any, directory: Path) -> nn.Module:
    """The pretrained generative base in ``directory`` (``local_files_only``)."""
    return lm_class(config).from_pretrained(directory, local_files_only=True)


def warm_started_encoder_decoder(directory: Path, tokenizer: Any | None, seed: int) -> nn.Module:
    """A BERT2BERT ``EncoderDecoderModel``: encoder and decoder start from the encoder at ``directory``.

    The decoder is the same weights configured as a decoder with cross-attention (new, initialised under
    ``seed``, so the same spec gives the same model); the tokenizer's ``[CLS]`` starts a target, ``[SEP]``
    ends it and ``[PAD]`` pads (Rothe et al., 2020, "Leveraging Pre-trained Checkpoints for Sequence
    Generation Tasks").
    """
    import transformers

    from taskgraph.dependency_log import expecting_new_weights

    encoder_config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
    decoder_config = transformers.AutoConfig.from_pretrained(directory, local_files_only=True)
    encoder_config.is_decoder, encoder_config.add_cross_attention = False, False
    decoder_config.is_decoder, decoder_config.add_cross_attention = True, True
    with torch.random.fork_rng(devices=[]):  # the steps of EncoderDecoderModel.from_encoder_decoder_pretrained
        torch.manual_seed(seed)
        encoder = transformers.AutoModel.from_pretrained(directory, config=encoder_config, local_files_only=True)
        with expecting_new_weights():  # the cross-attention and the LM head are new; missing encoder weights show above
            decoder = transformers.AutoModelForCausalLM.from_pretrained(
                directory, config=decoder_config, local_files_only=True
            )
        model = transformers.EncoderDecoderModel(encoder=encoder, decoder=decoder)
    if tokenizer is not None:
        start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        for config in (model.config, model.generation_config):
            config.decoder_start_token_id = start
            config.eos_token_id = end
            config.pad_token_id = tokenizer.pad_token_id
    return model


def hidden_trunk(base: nn.Module) -> nn.Module:
    """The module whose ``last_hidden_state`` a classification head pools: the base itself for a classifier's
    base, the decoder's trunk (``base.base_model``) for a causal LM, the encoder for an encoder-decoder."""
    kind = lm_kind_of(base)
    if kind is None:
        return base
    if kind == "seq2seq":
        return base.get_encoder()
    return base.base_model


def end_token_id(base: nn.Module, tokenizer: Any | None) -> int:
    """The token that ends a target (appended in training, where ``generate`` stops): the tokenizer's end of
    sequence (``[SEP]`` for a BERT tokenizer), else the config's."""
    for value in (
        getattr(tokenizer, "eos_token_id", None),
        getattr(tokenizer, "sep_token_id", None),
        getattr(base.generation_config, "eos_token_id", None),
        getattr(base.config, "eos_token_id", None),
    ):
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, int):
            return value
    raise ModelError(
        "a generate task needs an end-of-sequence token: the tokenizer has none and the model config "
        "gives no eos_token_id; set eos_token_id in model.config"
    )


def decoder_start_id(base: nn.Module) -> int:
    """The token an encoder-decoder's decoder starts from (T5: the pad token; BERT2BERT: ``[CLS]``)."""
    for value in (
        getattr(base.generation_config, "decoder_start_token_id", None),
        getattr(base.config, "decoder_start_token_id", None),
    ):
        if isinstance(value, int):
            return value
    raise ModelError(f"{type(base).__name__}: no decoder_start_token_id in its config; set it in model.config")
