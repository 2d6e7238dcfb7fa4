"""What torchrun's environment says about this process, before any process group: its place, the collective
timeout, and whether it stops because another process of its job did.

:func:`process_place` reads ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK``; :func:`collective_timeout` reads
``TASKGRAPH_DIST_TIMEOUT``; :func:`stopped_by_peer` is what the launcher reports of a stopped process
(:mod:`taskgraph.train.launch`). Joining the group and the collectives are :mod:`taskgraph.train.distributed`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from taskgraph.errors import TaskgraphError

TIMEOUT_ENV = "TASKGRAPH_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
MAX_TIMEOUT_S = 7 * 24 * 3600.0  # a week; inf or 1e300 overflow the process group's timedelta
_stopped_by_peer = False  # set once this process stops because another one did (see stopped_by_peer)


class DistributedError(TaskgraphError):
    """The processes of a data-parallel run cannot go on together (one of them ended, or a collective timed out)."""


@dataclass(frozen=True)
class ProcessPlace:
    """Where the environment puts this process: ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` as torchrun sets them.

    Args:
        world: the number of processes (1 without torchrun).
        rank: this process, ``0 .. world - 1``.
        local: this process among those on its machine (``LOCAL_RANK``; its CUDA device).
    """

    world: int = 1
    rank: int = 0
    local: int = 0

    @property
    def speaks_for_machine(self) -> bool:
        """Whether this process reports a refusal that every process on its machine reaches alike (local rank 0)."""
        return self.world == 1 or self.local == 0


def process_place() -> ProcessPlace:
    """This process's :class:`ProcessPlace`; :class:`DistributedError` for values torchrun would never set."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise DistributedError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them); got "
            f"{os.environ.get('WORLD_SIZE')!r}, {os.environ.get('RANK')!r}, "
            f"{os.environ.get('LOCAL_RANK')!r}"
        ) from None
    if world < 1:
        raise DistributedError(f"WORLD_SIZE={world}: the number of processes must be at least 1")
    if world > 1 and not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} is outside 0..{world - 1} (WORLD_SIZE={world})")
    if world > 1 and local < 0:
        raise DistributedError(f"LOCAL_RANK={local} must be at least 0")
    return ProcessPlace(world, rank, local)


def collective_timeout() -> float:
    """The collective timeout in seconds: ``TASKGRAPH_DIST_TIMEOUT``, default 1800, at most a week."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT_S:
        raise DistributedError(
            f"{TIMEOUT_ENV}={text[:40]!r}: give the collective timeout in seconds, a positive number of at most "
            f"{MAX_TIMEOUT_S:,.0f} (a week)"
        )
    return value


def stopped_by_peer() -> bool:
    """Whether this process is stopping because another one of its job did: it lost its peers in a collective, or
    the launcher stopped it (SIGTERM). Its error then follows another's, which says why (the launcher reports that
    one: :mod:`taskgraph.train.launch`)."""
    return _stopped_by_peer


def note_stopped_by_peer() -> None:
    """Record that this process stops because another one of its job did (:func:`stopped_by_peer`)."""
    global _stopped_by_peer
    _stopped_by_peer = True
