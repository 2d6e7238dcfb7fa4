"""Tiny transformers of four families, built from configs (nothing downloaded), with their target modules."""

from __future__ import annotations

from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2Model,
    LlamaConfig,
    LlamaModel,
    T5Config,
    T5EncoderModel,
)

FAMILIES = {
    "bert": (
        lambda: BertModel(
            BertConfig(
                num_hidden_layers=2,
                hidden_size=32,
                num_attention_heads=2,
                intermediate_size=64,
                vocab_size=100,
                hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0,
            )
        ),
        ["query", "value"],
    ),
    "gpt2": (
        lambda: GPT2Model(
            GPT2Config(
                n_layer=2,
                n_embd=32,
                n_head=2,
                vocab_size=100,
                n_positions=32,
                resid_pdrop=0.0,
                embd_pdrop=0.0,
                attn_pdrop=0.0,
                bos_token_id=0,
                eos_token_id=0,
            )
        ),
        ["c_attn"],
    ),
    "t5": (
        lambda: T5EncoderModel(
            T5Config(d_model=32, d_kv=16, num_heads=2, d_ff=64, num_layers=2, vocab_size=100, dropout_rate=0.0)
        ),
        ["q", "v"],
    ),
    "llama": (
        lambda: LlamaModel(
            LlamaConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                vocab_size=100,
            )
        ),
        ["q_proj", "v_proj"],
    ),
}
