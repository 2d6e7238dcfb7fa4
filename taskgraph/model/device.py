"""Choosing the device a model runs on."""

from __future__ import annotations

import torch

from taskgraph.errors import ModelError, opt


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"`` or None (cuda when available, else cpu) as a usable device."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ModelError(f"unknown device {str(name)!r}; choose from ['cpu', 'cuda', 'cuda:N']") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(
                f"device {str(name)!r} was asked for but CUDA is not available here; use {opt('device-cpu')}"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device {str(name)!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise ModelError(f"device type {device.type!r} is not supported; choose from ['cpu', 'cuda']")
    return device


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``. A host tensor bound for CUDA goes through pinned memory, asynchronously: a copy from
    pageable memory first waits for every kernel already queued, which stalls a training step."""
    if tensor.device == device:
        return tensor
    if tensor.device.type == "cpu" and device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
