"""Training progress a person can see: tqdm's bar on a terminal, plain lines everywhere else.

A run whose stderr is a pipe or a file (``nohup``, CI, a notebook log) prints one line every ``every`` steps
(``training.eval_every``) or every ``seconds``, whichever comes first, and at the last step::

    quickstart: step 300/1500 (20%)  loss 0.4321  2,461 examples/s  elapsed 0:00:12  ETA 0:00:48

so a run that is working never looks hung. ``TASKGRAPH_PROGRESS=off`` silences both (tests, scripts).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

PROGRESS_ENV = "TASKGRAPH_PROGRESS"  # "off": no bar and no lines; "lines": lines even on a terminal


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
        mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
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


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
