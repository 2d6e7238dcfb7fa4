"""The name of the device a benchmark measured on, as its record keeps it.

A CPU's name carries its model and the instruction set torch's kernels dispatch to (``AMD EPYC 9R14 (AVX512)``):
timings depend on both, and so can a figure of learning — two CPUs sum in other orders, and a training run at the
edge of stability turns one rounding into another outcome. A GPU's name is CUDA's (``NVIDIA H100 80GB HBM3``).
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["device_name"]

CPUINFO = Path("/proc/cpuinfo")


def device_name(device: str | torch.device = "cpu") -> str:
    """CUDA's name of a ``cuda`` device; for the CPU its model name (``/proc/cpuinfo`` on Linux, else
    ``platform.processor()`` or the architecture) with torch's CPU capability in brackets."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({torch.backends.cpu.get_cpu_capability()})"


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name: the first ``model name`` of ``cpuinfo`` where it is readable, else what ``platform``
    says."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return " ".join(value.split())
    return platform.processor() or platform.machine()
