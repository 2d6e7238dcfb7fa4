"""PEFT LoRA folders: what ``peft.PeftModel.from_pretrained`` loads, written and read without importing PEFT.

A folder holds (docs/methods.md, "PEFT folder layout")::

    adapter_config.json         {"peft_type": "LORA", "r", "lora_alpha", "target_modules", "fan_in_fan_out",
                                 "base_model_name_or_path", "bias": "none", ...}
    adapter_model.safetensors   base_model.model.<module path>.lora_A.weight [r, d_in]
                                base_model.model.<module path>.lora_B.weight [d_out, r]

and the module's update is ``ΔW = (lora_alpha / r) · lora_B @ lora_A`` (``nn.Linear`` orientation; PEFT keeps the
same factor shapes for GPT-2's ``Conv1D`` and transposes only when merging, ``fan_in_fan_out``). Reading checks
every field taskgraph relies on and refuses what it cannot represent exactly (DoRA, rsLoRA, per-module rank or
alpha patterns, trained biases, embedding LoRAs, extra tensors) or should not compute with (a non-finite
``lora_alpha``, factors that are not float16 / bfloat16 / float32 / float64 or hold NaN or infinity), naming the
folder: a :class:`~taskgraph.errors.ModelError`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import Tensor

from taskgraph.errors import ModelError
from taskgraph.run_records import parse_json

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
PREFIX = "base_model.model."
KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
MAX_CONFIG_BYTES = 1 << 20
FACTOR_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # what PEFT saves LoRA factors in


@dataclass
class PeftLoRA:
    """A plain LoRA read from (or to be written as) a PEFT folder.

    Args:
        modules: qualified module name -> ``(A [r, d_in], B [d_out, r])`` (PEFT's ``lora_A`` / ``lora_B``).
        rank: r; alpha: ``lora_alpha``; the update is ``(alpha / r) · B @ A``.
        fan_in_fan_out: True for GPT-2 ``Conv1D`` bases (weights stored ``[in, out]``).
        base_model_name_or_path: what the folder says its base model is.
        folder: where it was read from (None when built in memory).
        config: the whole ``adapter_config.json``.
        task_type: PEFT's ``task_type`` (``"CAUSAL_LM"`` / ``"SEQ_2_SEQ_LM"`` for a generative task's adapter; None:
            the bare base model).
    """

    modules: dict[str, tuple[Tensor, Tensor]]
    rank: int
    alpha: float
    fan_in_fan_out: bool = False
    base_model_name_or_path: str | None = None
    folder: Path | None = None
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    task_type: str | None = None

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def __repr__(self) -> str:
        return (
            f"PeftLoRA(modules={len(self.modules)}, rank={self.rank}, alpha={self.alpha:g}, "
            f"folder={str(self.folder) if self.folder else None!r})"
        )


def peft_config(lora: PeftLoRA) -> dict[str, Any]:
    """The ``adapter_config.json`` of ``lora`` (PEFT's LoraConfig fields; unset ones at PEFT's defaults)."""
    return {
        "peft_type": "LORA",
        "task_type": lora.task_type,
        "auto_mapping": None,
        "inference_mode": True,
        "base_model_name_or_path": lora.base_model_name_or_path,
        "revision": None,
        "r": lora.rank,
        "lora_alpha": lora.alpha,
        "lora_dropout": 0.0,
        "target_modules": sorted(lora.modules),
        "fan_in_fan_out": lora.fan_in_fan_out,
        "bias": "none",
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "rank_pattern": {},
        "alpha_pattern": {},
    }


def peft_state(lora: PeftLoRA) -> dict[str, Tensor]:
    """The ``adapter_model.safetensors`` tensors of ``lora`` under PEFT's key names."""
    state: dict[str, Tensor] = {}
    for name, (a, b) in lora.modules.items():
        if a.shape[0] != lora.rank or b.shape[1] != lora.rank:
            raise ValueError(f"module {name}: factors of rank {a.shape[0]} / {b.shape[1]}, not {lora.rank}")
        state[f"{PREFIX}{name}.lora_A.weight"] = a.detach().to("cpu").contiguous()
        state[f"{PREFIX}{name}.lora_B.weight"] = b.detach().to("cpu").contiguous()
    return state


def write_peft_folder(lora: PeftLoRA, folder: str | os.PathLike[str]) -> Path:
    """Write ``adapter_config.json`` and ``adapter_model.safetensors`` into ``folder`` (created if needed)."""
    from taskgraph.atomic import write_bytes, write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / WEIGHTS, safetensors.torch.save(peft_state(lora), metadata={"format": "pt"}))
    write_text(out / CONFIG, json.dumps(peft_config(lora), indent=2) + "\n")
    return out


def read_peft_folder(folder: str | os.PathLike[str]) -> PeftLoRA:
    """The LoRA in a PEFT folder; ModelError naming the folder and what is wrong or unsupported."""
    path = Path(folder)
    where = f"PEFT folder {str(path)!r}"
    if not path.is_dir():
        raise ModelError(
            f"{where}: no such folder; give a folder holding {CONFIG} and {WEIGHTS} "
            "(PeftModel.save_pretrained writes one)"
        )
    config = _read_config(path, where)
    rank, alpha = config.get("r"), config.get("lora_alpha")
    problems = _config_problems(config)
    if problems:
        raise ModelError(f"{where}: {'; '.join(problems)}")
    modules = _read_weights(path, where, int(rank))  # type: ignore[arg-type]
    return PeftLoRA(
        modules,
        int(rank),
        float(alpha),
        bool(config.get("fan_in_fan_out", False)),  # type: ignore[arg-type]
        config.get("base_model_name_or_path"),
        path,
        config,
    )


def _config_problems(config: dict[str, Any]) -> list[str]:
    """What in an ``adapter_config.json`` taskgraph cannot import, one sentence each (none: it can)."""
    rank, alpha = config.get("r"), config.get("lora_alpha")
    problems = []
    if config.get("peft_type") != "LORA":
        problems.append(f"peft_type is {_shown(config.get('peft_type'))}; only 'LORA' folders can be imported")
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        problems.append(f"r is {_shown(rank)}; expected a positive integer")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not (math.isfinite(alpha) and alpha > 0):
        problems.append(f"lora_alpha is {_shown(alpha)}; expected a positive finite number")
    for key, ok in (("use_dora", False), ("use_rslora", False)):
        if config.get(key, ok) not in (ok, None):
            problems.append(f"{key} is {_shown(config.get(key))}: taskgraph imports plain LoRA only")
    if config.get("bias", "none") not in ("none", None):
        problems.append(f"bias is {_shown(config.get('bias'))}: trained biases cannot be imported (give bias: none)")
    if not isinstance(config.get("fan_in_fan_out", False), (bool, type(None))):
        problems.append(f"fan_in_fan_out is {_shown(config.get('fan_in_fan_out'))}; expected true or false")
    for key in ("rank_pattern", "alpha_pattern"):
        value = config.get(key)
        if value is not None and not (isinstance(value, dict) and not value):
            problems.append(
                f"{key} is {_shown(value)}: every module must share r and lora_alpha (give {{}} or leave it out)"
            )
    return problems


def _shown(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, for a message."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_config(path: Path, where: str) -> dict[str, Any]:
    file = path / CONFIG
    if not file.is_file():
        raise ModelError(f"{where}: no {CONFIG}; it is not a PEFT adapter folder")
    if file.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{where}: {CONFIG} is larger than {MAX_CONFIG_BYTES} bytes; not an adapter config")
    try:
        config = parse_json(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelError(f"{where}: {CONFIG} is not valid JSON ({exc})") from None
    except ValueError as exc:
        raise ModelError(f"{where}: {CONFIG} {exc}") from None
    if not isinstance(config, dict):
        raise ModelError(f"{where}: {CONFIG} is not a JSON object")
    return config


def _check_factor(tensor: Tensor, key: str, where: str) -> None:
    """ModelError unless the LoRA factor ``key`` is a float16 / bfloat16 / float32 / float64 tensor of finite values."""
    if tensor.dtype not in FACTOR_DTYPES:
        names = ", ".join(str(d).removeprefix("torch.") for d in FACTOR_DTYPES)
        raise ModelError(
            f"{where}: {WEIGHTS}: {key} is {str(tensor.dtype).removeprefix('torch.')}; LoRA factors are imported "
            f"from {names} only"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ModelError(
            f"{where}: {WEIGHTS}: {key} holds NaN or infinite values; the adapter is broken and cannot be imported"
        )


def _read_weights(path: Path, where: str, rank: int) -> dict[str, tuple[Tensor, Tensor]]:
    file = path / WEIGHTS
    if not file.is_file():
        other = (
            " (it holds adapter_model.bin: re-save it with safe_serialization=True)"
            if (path / "adapter_model.bin").exists()
            else ""
        )
        raise ModelError(f"{where}: no {WEIGHTS}{other}; only safetensors weights are read (nothing is unpickled)")
    try:
        state = safetensors.torch.load(file.read_bytes())
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{where}: {WEIGHTS} is not a readable safetensors file ({exc})") from None
    parts: dict[str, dict[str, Tensor]] = {}
    extra = []
    for key, tensor in state.items():
        match = KEY.match(key)
        if match is None or tensor.dim() != 2:
            extra.append(key)
            continue
        _check_factor(tensor, key, where)
        parts.setdefault(match["module"], {})[match["part"]] = tensor
    if extra:
        raise ModelError(
            f"{where}: {len(extra)} tensors are not LoRA factors ({', '.join(sorted(extra)[:3])}"
            f"{', ...' if len(extra) > 3 else ''}); only base_model.model.<module>.lora_A/lora_B.weight "
            "can be imported (no modules_to_save, embeddings or DoRA magnitudes)"
        )
    modules: dict[str, tuple[Tensor, Tensor]] = {}
    for name, pair in sorted(parts.items()):
        if set(pair) != {"A", "B"}:
            raise ModelError(
                f"{where}: module {name} has lora_{next(iter(pair))} but no "
                f"lora_{'B' if 'A' in pair else 'A'}; the folder is incomplete"
            )
        a, b = pair["A"], pair["B"]
        if a.shape[0] != rank or b.shape[1] != rank:
            raise ModelError(
                f"{where}: module {name} has rank {a.shape[0]} (lora_A {list(a.shape)}, lora_B "
                f"{list(b.shape)}) but the config says r = {rank}"
            )
        modules[name] = (a, b)
    if not modules:
        raise ModelError(f"{where}: {WEIGHTS} holds no LoRA factors")
    return modules
