"""A quantized frozen base (``model.quantize: int8 | nf4``): the QLoRA recipe on torchao.

The base's linear layers are quantized once, at load, before the routed adapters are put on them; an adapter wraps
the quantized layer and calls it, so its frozen matmul de-quantizes the weight on the fly while the LoRA path, the
router and the heads stay in the compute dtype (Dettmers et al., 2023, "QLoRA: Efficient Finetuning of Quantized
LLMs")::

    y = dequant(W_q) x + g · s · (x A_u) B_u          # W_q int8 / nf4, frozen; A, B, router, heads fp32 / bf16

Both kinds come from torchao and run on the CPU and on CUDA:

* ``int8`` — weight-only int8, symmetric, one scale per output row (``Int8Tensor``, torchao's ``Int8WeightOnlyConfig``);
* ``nf4`` — 4-bit NormalFloat in blocks of 64 values with double-quantized scales (``NF4Tensor``, torchao's
  ``to_nf4``, what torchtune's QLoRA uses). A layer's size must be a multiple of 64 × 256 values.

Every ``nn.Linear`` of the base is quantized, and GPT-2's ``Conv1D`` (held transposed as :class:`QuantizedConv1D`),
except the output embedding (a language model's ``lm_head``) and any layer whose weight is tied to another
parameter (an embedding). The per-task heads are not part of the base.

What a quantized run does differently:

* a checkpoint holds the adapters, router and heads only, never the base (not even a base built from a config);
  the spec records ``model.quantize`` and loading quantizes the base again from its source. The base is identified by
  its **source** weights: the fingerprint is taken before quantizing and travels with the base (:func:`source_fingerprint`);
* folding a task into the base weights is refused (:func:`fold_refusal`): adding ``ΔW`` into int8 / nf4 weights
  would round most of it away. ``merge_task(task, dequantize=True)`` folds into a full-precision copy of the
  de-quantized base instead (what the quantized model computes, up to rounding); ``taskgraph export --format peft``
  writes the exact LoRA, beside the full-precision source base.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from taskgraph.errors import ModelError

KINDS = ("int8", "nf4")  # what model.quantize may name besides "none"
NF4_BLOCK = 64  # values per NF4 block (one absmax scale each)
NF4_SCALER_BLOCK = 256  # scales per block of the double quantization
NF4_MULTIPLE = NF4_BLOCK * NF4_SCALER_BLOCK  # a layer's weight count must be a multiple of this
SOURCE_FINGERPRINT = "taskgraph_source_fingerprint"  # attribute of a quantized base: its source weights' fingerprint
INSTALL = "pip install torchao  (or: pip install 'taskgraph[quantize]')"
_IMPORT_NOISE = ("torchao", "torch.utils._pytree")  # loggers that speak when torchao is imported on a CPU-only torch


class QuantizedConv1D(Conv1D):
    """GPT-2's ``Conv1D`` with a quantized weight, held ``[d_out, d_in]`` as ``F.linear`` takes it.

    A ``Conv1D`` stores its weight ``[d_in, d_out]`` and multiplies with ``addmm``, which the quantized tensors do not
    implement; this one is still a ``Conv1D`` (``nx`` inputs, ``nf`` outputs, ``fan_in_fan_out`` for PEFT), its weight
    transposed once at quantization.

    Args:
        weight: the quantized weight ``[d_out, d_in]``.
        bias: ``[d_out]``.
    """

    def __init__(self, weight: Tensor, bias: Tensor) -> None:
        nn.Module.__init__(self)  # Conv1D's own __init__ would allocate a dense weight
        self.nf, self.nx = weight.shape  # outputs, inputs
        self.weight = nn.Parameter(weight, requires_grad=False)  # [d_out, d_in], quantized
        self.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)  # [d_out]

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)  # [..., d_out]

    def __repr__(self) -> str:
        return f"QuantizedConv1D(nf={self.nf}, nx={self.nx}, weight={type(self.weight).__name__})"


# ----------------------------------------------------------------------------- tensors
def is_quantized(tensor: Any) -> bool:
    """Whether ``tensor`` is one of torchao's quantized tensors (told by its class's package; torchao is not
    imported for it)."""
    return isinstance(tensor, Tensor) and type(tensor).__module__.split(".")[0] == "torchao"


def dense(tensor: Tensor) -> Tensor:
    """The full-precision value of ``tensor``: de-quantized when quantized, else ``tensor`` itself."""
    if not is_quantized(tensor):
        return tensor
    if hasattr(tensor, "get_original_weight"):  # NF4Tensor
        return tensor.get_original_weight()
    return tensor.dequantize()


def base_is_quantized(base: nn.Module) -> bool:
    """Whether any parameter of ``base`` is quantized."""
    return any(is_quantized(p) for p in base.parameters())


def _exact_copy(tensor: Tensor) -> Tensor:
    """A copy of a quantized tensor, bit for bit (NF4's own ``clone`` quantizes its de-quantized value again)."""
    inner, meta = tensor.__tensor_flatten__()
    parts = {name: getattr(tensor, name).clone() for name in inner}
    return type(tensor).__tensor_unflatten__(parts, meta, tensor.size(), tensor.stride())


def copy_base(base: nn.Module) -> nn.Module:
    """``copy.deepcopy(base)`` whose quantized weights are copied exactly."""
    memo: dict[int, Any] = {
        id(p): nn.Parameter(_exact_copy(p), requires_grad=False) for p in base.parameters() if is_quantized(p)
    }
    return copy.deepcopy(base, memo)


# ----------------------------------------------------------------------------- quantize
def quantize_base(
    base: nn.Module, kind: str, *, fingerprint: Callable[[dict[str, Tensor]], dict[str, Any]] | None = None
) -> list[str]:
    """Quantize the linear layers of ``base`` in place (see the module docstring); returns their qualified names.

    Args:
        base: the base transformer, not yet adapted.
        kind: ``"int8"`` or ``"nf4"`` (``"none"``: nothing happens).
        fingerprint: how the base is identified (:func:`taskgraph.model.checkpoint.base_fingerprint`); its value on
            the source weights is kept on ``base`` (:func:`source_fingerprint`). (default: None, nothing kept)

    A base that is already quantized (a copy of a quantized run's base) is left as it is.

    Raises:
        ModelError: torchao is not installed; an unknown kind; an nf4 layer whose size is not a multiple of
            64 × 256 values.
    """
    if kind == "none" or base_is_quantized(base):
        return []
    if kind not in KINDS:
        raise ModelError(f"model.quantize: unknown quantization {kind!r}; choose from {['none', *KINDS]}")
    ao = torchao_quantization(kind)
    layers = dict(quantizable_layers(base))
    if kind == "nf4":
        _check_nf4_sizes(layers)
    if fingerprint is not None:
        setattr(base, SOURCE_FINGERPRINT, fingerprint(dict(base.state_dict())))
    with torch.no_grad():
        for name, module in layers.items():
            weight = module.weight.detach()
            conv = isinstance(module, Conv1D)
            weight = weight.T.contiguous() if conv else weight  # [d_out, d_in]
            q = (
                ao.to_nf4(weight, NF4_BLOCK, NF4_SCALER_BLOCK)
                if kind == "nf4"
                else ao.Int8Tensor.from_hp(weight, granularity=ao.PerRow())
            )
            if conv:
                _replace(base, name, QuantizedConv1D(q, module.bias))
            else:
                module.weight = nn.Parameter(q, requires_grad=False)
    return list(layers)


def quantizable_layers(base: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """The layers :func:`quantize_base` quantizes: every ``nn.Linear`` / ``Conv1D`` but the output embedding and
    layers whose weight is tied to another parameter."""
    output = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    seen: dict[int, int] = {}
    for _, p in base.named_parameters(remove_duplicate=False):
        seen[id(p)] = seen.get(id(p), 0) + 1
    for name, module in base.named_modules():
        if not name or not isinstance(module, (nn.Linear, Conv1D)) or module is output:
            continue
        if seen.get(id(module.weight), 0) > 1 or is_quantized(module.weight):
            continue
        yield name, module


def _check_nf4_sizes(layers: dict[str, nn.Module]) -> None:
    bad = [f"{name} ({m.weight.numel():,} values)" for name, m in layers.items() if m.weight.numel() % NF4_MULTIPLE]
    if bad:
        shown = ", ".join(bad[:4]) + (f" (+{len(bad) - 4} more)" if len(bad) > 4 else "")
        raise ModelError(
            f"model.quantize: nf4 quantizes a weight in blocks of {NF4_BLOCK} values whose scales are quantized in "
            f"blocks of {NF4_SCALER_BLOCK}, so a layer needs a multiple of {NF4_MULTIPLE:,} values; {shown} "
            "do not fit. Use model.quantize: int8 (any size), or a base whose hidden sizes are multiples of 128"
        )


def torchao_quantization(kind: str) -> ModuleType:
    """``torchao.quantization``, imported with its notes about CUDA kernels a CPU-only torch cannot load kept quiet.

    Raises:
        ModelError: torchao is not installed (naming the package to install).
    """
    loggers = [logging.getLogger(name) for name in _IMPORT_NOISE]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        import torchao.quantization as ao
    except ImportError as exc:
        raise ModelError(
            f"model.quantize: {kind} quantizes the base with torchao, which is not installed ({exc}); "
            f"install it: {INSTALL}, or set model.quantize: none"
        ) from None
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    return ao


def source_fingerprint(base: nn.Module) -> dict[str, Any] | None:
    """The fingerprint of a quantized base's source weights, taken before it was quantized (None otherwise)."""
    value = getattr(base, SOURCE_FINGERPRINT, None)
    return value if isinstance(value, dict) else None


# ----------------------------------------------------------------------------- de-quantize
def dequantized(module: nn.Module) -> nn.Module:
    """A full-precision copy of a quantized ``nn.Linear`` / :class:`QuantizedConv1D` (a plain ``Conv1D``, its weight
    ``[d_in, d_out]`` again); any other module is returned as it is."""
    if not is_quantized(getattr(module, "weight", None)):
        return module
    weight = dense(module.weight.detach())  # [d_out, d_in]
    bias = None if module.bias is None else module.bias.detach().clone()
    if isinstance(module, Conv1D):
        plain = Conv1D(weight.shape[0], weight.shape[1]).to(weight.device, weight.dtype)
        with torch.no_grad():
            plain.weight.copy_(weight.T)  # [d_in, d_out]
            plain.bias.copy_(bias)
    else:
        plain = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device)
        plain = plain.to(weight.dtype)
        with torch.no_grad():
            plain.weight.copy_(weight)
            if bias is not None:
                plain.bias.copy_(bias)
    return plain.requires_grad_(False).train(module.training)


def dequantize_base(base: nn.Module, names: list[str] | None = None) -> nn.Module:
    """Replace the quantized layers of ``base`` (only those of ``names`` when given) by full-precision copies, in
    place; returns ``base``."""
    chosen = set(names) if names is not None else None
    for name, module in list(base.named_modules()):
        if name and (chosen is None or name in chosen) and is_quantized(getattr(module, "weight", None)):
            _replace(base, name, dequantized(module))
    return base


def fold_refusal(kind: str, what: str) -> str:
    """The message that refuses to fold a task's update into a ``kind``-quantized base (``what`` is refused)."""
    return (
        f"{what}: the base is quantized (model.quantize: {kind}), and adding a task's update into {kind} weights would "
        "round most of it away, so taskgraph does not fold into a quantized base. Export the task's exact LoRA "
        "instead (taskgraph export RUN --format peft) and merge it into the full-precision base, or call "
        "merge_task(task, dequantize=True) for a full-precision copy of the de-quantized base with the update added "
        "(what the quantized model computes, up to rounding)"
    )


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent), attr, module)
