"""Launching a data-parallel test's processes: a free port, a clean environment, N workers of one module."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.train.conftest import REPO

TIMEOUT = 240  # seconds a launch's workers (or torchrun) may take


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(**extra: str) -> dict[str, str]:
    """The environment without any taskgraph / torch.distributed variable of this process, one thread, CI mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKGRAPH_", "RANK", "WORLD_SIZE", "LOCAL_"))}
    env.update(OMP_NUM_THREADS="1", CI="true", TASKGRAPH_PROGRESS="off", PYTHONPATH=str(REPO), **extra)
    return env


def run_workers(module: str, *args: str, world: int = 2) -> list[tuple[str, str]]:
    """Run ``python -m module args`` as ranks 0 .. world-1 of one gloo group; asserts every rank exits 0 and returns
    each rank's ``(stdout, stderr)``."""
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=worker_env(
                RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=port
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(world)
    ]
    outputs = [p.communicate(timeout=TIMEOUT) for p in procs]
    assert [p.returncode for p in procs] == [0] * world, outputs
    return outputs
