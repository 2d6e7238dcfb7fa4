"""Training progress a person can see: tqdm's bar on a terminal, plain lines everywhere else.

A run whose stderr is a pipe or a file (``nohup``, CI, a notebook log) prints one line every ``every`` steps
(``training.eval_every``) or every ``seconds``, whichever comes first, and at the last step::

    quickstart: step 300/1500 (20%)  loss 0.4321  2,461 examples/s  elapsed 0:00:12  ETA 0:00:48

so a run that is working never looks hung. Work counted in batches outside the steps — a validation, ``eval``'s
scoring and generation (:class:`BatchProgress`) — prints a line at least every ``seconds`` (10) once it has run that
long, so a quick validation prints nothing and a long one is never silent::

    validation: batch 12/40 (30%)  task news (2/2)  elapsed 0:00:10  ETA 0:00:23

``TASKGRAPH_PROGRESS=off`` silences them all (tests, scripts).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

PROGRESS_ENV = "TASKGRAPH_PROGRESS"  # "off": no bar and no lines; "lines": lines even on a terminal
BATCH_SECONDS = 10.0  # a line at least this often during a validation or an evaluation


def _mode() -> str:
    return os.environ.get(PROGRESS_ENV, "").strip().lower()


class Progress:
    """Reports training steps ``initial+1 .. total`` (see the module docstring).

    Args:
        total: the last step of this run. initial: the step it starts after (a resumed run).
        name: the run's name, heading each line. every: a line every this many steps. seconds: and at
        least every this many seconds. stream: where it writes (default: stderr).
    """

    def __init__(
        self, total: int, initial: int, name: str, every: int, seconds: float = 30.0, stream: TextIO | None = None
    ) -> None:
        self.total, self.initial, self.name = total, initial, name
        self.every, self.seconds = max(1, every), seconds
        self.stream = stream if stream is not None else sys.stderr
        mode = _mode()
        terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lines = mode != "off" and (mode == "lines" or not terminal)
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            dynamic_ncols=True,
            desc=name,
            file=self.stream,
            disable=mode == "off" or self.lines,
        )
        self.start = self.last_line = time.perf_counter()

    def update(self, step: int, loss: float, examples_per_s: float) -> None:
        """Step ``step`` is done with ``loss``, at ``examples_per_s`` over this session."""
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", ex_s=f"{examples_per_s:.0f}")
        now = time.perf_counter()
        if self.lines and (step % self.every == 0 or step == self.total or now - self.last_line >= self.seconds):
            self.last_line = now
            self.stream.write(self.line(step, loss, examples_per_s, now - self.start) + "\n")
            self.stream.flush()

    def line(self, step: int, loss: float, examples_per_s: float, elapsed: float) -> str:
        """``name: step s/T (p%)  loss x  n examples/s  elapsed h:mm:ss  ETA h:mm:ss``."""
        done = step - self.initial
        eta = elapsed / done * (self.total - step) if done > 0 else 0.0
        return (
            f"{self.name}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%)  loss {loss:.4f}  "
            f"{examples_per_s:,.0f} examples/s  elapsed {_clock(elapsed)}  ETA {_clock(eta)}"
        )

    def close(self) -> None:
        self.bar.close()


class BatchProgress:
    """Lines during work counted in batches (see the module docstring): ``name: batch b/B (p%)  task t (i/T)
    elapsed h:mm:ss  ETA h:mm:ss``, the first once ``seconds`` have passed, then at least every ``seconds``.

    On a terminal a line is written above training's bar (``tqdm.write``), elsewhere as a plain line.

    Args:
        name: heads each line (``validation``, ``eval test``). total: the batches of the whole job. tasks: how many
        tasks it covers (default: ``0``, not shown). seconds: the most time between lines. (default: ``10``)
        stream: where lines go. (default: stderr)
    """

    def __init__(
        self, name: str, total: int, tasks: int = 0, seconds: float = BATCH_SECONDS, stream: TextIO | None = None
    ) -> None:
        self.name, self.total, self.tasks, self.seconds = name, max(total, 1), tasks, seconds
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _mode() != "off"
        self.done, self.task_name, self.task_number = 0, "", 0
        self.start = self.last_line = time.perf_counter()

    def task(self, name: str) -> None:
        """Work on task ``name`` starts (the next of :attr:`tasks`)."""
        self.task_name, self.task_number = name, self.task_number + 1

    def advance(self, batches: int = 1) -> None:
        """``batches`` more are done; a line when :attr:`seconds` have passed since the last one (or the start)."""
        self.done += batches
        now = time.perf_counter()
        if self.enabled and now - self.last_line >= self.seconds:
            self.last_line = now
            self.write(self.line(now - self.start))

    def line(self, elapsed: float) -> str:
        """``name: batch b/B (p%)  task t (i/T)  elapsed h:mm:ss  ETA h:mm:ss``."""
        done = min(self.done, self.total)
        eta = elapsed / done * (self.total - done) if done else 0.0
        task = f"  task {self.task_name} ({self.task_number}/{self.tasks})" if self.task_name and self.tasks else ""
        return (
            f"{self.name}: batch {done}/{self.total} ({100 * done / self.total:.0f}%){task}  "
            f"elapsed {_clock(elapsed)}  ETA {_clock(eta)}"
        )

    def write(self, line: str) -> None:
        if hasattr(self.stream, "isatty") and self.stream.isatty() and _mode() != "lines":
            tqdm.write(line, file=self.stream)  # above an open bar, which stays whole
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def __repr__(self) -> str:
        return f"BatchProgress({self.name!r}, {self.done}/{self.total}, seconds={self.seconds:g})"


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
