"""What a merge is doing while it does it: a line on stderr per stage, and at least one every few seconds inside a
long stage (the grid's first and last point, and any point or module done a few seconds after the last line), so a
merge that is working never looks hung and a quick one prints a handful of lines::

    merge: read 4 tasks of runs/planted-poly (a routed run, every task folded) in 0:00:02
    merge: choosing lambda, density on the validation split: 36 grid points
    merge: grid point 1/36 (lambda=0.1 density=0.2): merged 40/72 modules  elapsed 0:00:07
    merge: grid point 1/36 (lambda=0.1 density=0.2): val mean 0.6125; best 0.6125  elapsed 0:00:09  ETA 0:05:15
    ...
    merge: chose lambda=1.5 density=1 (val mean 0.7125); building the merged model (rank 64)
    merge: writing runs/merged-ties

``TASKGRAPH_PROGRESS=off`` silences them, as it silences training's (:mod:`taskgraph.train.progress`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TextIO

from taskgraph.train.progress import PROGRESS_ENV

TICK_SECONDS = 5.0  # inside a stage, a line at least this often


class MergeProgress:
    """Progress lines of one merge (see the module docstring).

    Args:
        stream: where lines go (default: stderr). seconds: inside a stage, :meth:`tick` writes a line only when this
        long has passed since the last one. enabled: write at all (default: unless ``TASKGRAPH_PROGRESS=off``).
    """

    def __init__(
        self, stream: TextIO | None = None, seconds: float = TICK_SECONDS, enabled: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.seconds = seconds
        self.enabled = os.environ.get(PROGRESS_ENV, "").strip().lower() != "off" if enabled is None else enabled
        self.stage = ""  # heads the lines of :meth:`tick`: "grid point 3/36 (lambda=0.5)"
        self.start = self.last = time.perf_counter()

    def say(self, text: str) -> None:
        """One line, always (when enabled)."""
        if not self.enabled:
            return
        self.last = time.perf_counter()
        self.stream.write(f"merge: {text}\n")
        self.stream.flush()

    def due(self) -> bool:
        """Whether :attr:`seconds` have passed since the last line (and lines are written at all)."""
        return self.enabled and time.perf_counter() - self.last >= self.seconds

    def tick(self, text: str) -> None:
        """``stage: text  elapsed h:mm:ss``, only when :meth:`due`."""
        if self.due():
            self.say(f"{self.stage}: {text}  elapsed {self.elapsed()}" if self.stage else text)

    def elapsed(self) -> str:
        """The time since this merge started, ``h:mm:ss``."""
        return clock(time.perf_counter() - self.start)

    def __repr__(self) -> str:
        return f"MergeProgress(enabled={self.enabled}, seconds={self.seconds:g})"


SILENT = MergeProgress(enabled=False)
"""A progress that writes nothing (the default of the functions that take one)."""


def clock(seconds: float) -> str:
    """``h:mm:ss``."""
    return str(timedelta(seconds=int(round(max(0.0, seconds)))))


def shown(values: Mapping[str, float]) -> str:
    """``lambda=0.5 density=0.2`` (``nothing to choose`` when empty)."""
    return " ".join(f"{k}={v:g}" for k, v in values.items()) or "nothing to choose"
