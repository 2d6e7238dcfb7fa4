"""Peak memory of one configuration, measured in a process of its own.

On CPU the figure is the growth of the process's resident-set high-water mark (``VmHWM``) from a
baseline taken after the imports (the mark is reset there, Linux ≥ 4.0) to after a few steps.
``resource.getrusage(...).ru_maxrss`` is only the fallback: in a spawned child the kernel seeds it
with the *parent's* peak at ``exec``, so a child of a large bench process would report the parent.
On CUDA the figure is ``torch.cuda.max_memory_allocated`` (weights included).

:func:`held_by` measures what a forward keeps for its backward (the activations): the memory it allocated and
still holds when it returns — on CUDA from ``memory_allocated``, on CPU from the PyTorch profiler's memory events.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

MiB = 2**20
PROC_STATUS = "/proc/self/status"


def proc_status_kb(field_name: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None where there is none."""
    try:
        with open(PROC_STATUS, encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's resident-set high-water mark to its current size; False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return proc_status_kb("VmHWM") is not None


def peak_of(build: Callable[[], Callable[[], None]], device: torch.device, steps: int) -> dict[str, Any]:
    """Peak memory, in MiB, of building a step with ``build()`` and running it ``steps`` times.

    Call it in a fresh process after every import the step needs.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    own = reset_peak_rss()
    before = proc_status_kb("VmRSS") if own else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = build()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return {
            "peak_mb": torch.cuda.max_memory_allocated(device) / 2**20,
            "measure": "torch.cuda.max_memory_allocated",
        }
    after = proc_status_kb("VmHWM") if own else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "peak_mb": ((after or 0) - (before or 0)) / 1024.0,
        "measure": "VmHWM growth after imports" if own else "ru_maxrss growth after imports",
    }


def held_by(forward: Callable[[], Tensor], device: torch.device) -> tuple[float, Tensor]:
    """MiB allocated by ``forward()`` and still alive when it returns (what it keeps for the backward), and its
    output (keep it to run the backward)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        out = forward()
        torch.cuda.synchronize(device)
        return (torch.cuda.memory_allocated(device) - before) / MiB, out
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = forward()
    events = prof.profiler.kineto_results.events()  # allocations > 0 bytes, frees < 0
    return sum(e.nbytes() for e in events if e.name() == "[memory]") / MiB, out


def run_python_module(module: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m module *args`` with this checkout importable; the last JSON line it prints.

    Returns ``{"error": text}`` when it fails, times out, or prints no JSON line.
    """
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=root,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"subprocess timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"subprocess exited {done.returncode}: {done.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])
