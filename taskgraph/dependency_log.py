"""What taskgraph's dependencies print, and where the command line sends it.

transformers speaks on every load: a "Loading weights" progress bar, a table of the weights a checkpoint lacks or has
over (its "LOAD REPORT"), and — on a BERT2BERT warm start, whose decoder is new by design — "This checkpoint seem
corrupted" about the new LM head's bias. A tokenizer warns "Token indices sequence length is longer than the specified
maximum" even where taskgraph cuts every sequence at ``model.max_length`` itself, and a causal LM's ``generate`` asks
for the attention mask taskgraph passes (it drops an all-ones mask, then warns on a prompt that holds the pad id).
Where torchao is installed, transformers' import of it says which of torchao's optional kernels failed to load, and
torch that torchao registers enums in a deprecated way. Inside :func:`quiet_dependencies` (the command line enters it for every command):

* transformers' and huggingface_hub's progress bars are off;
* every record of their loggers (:data:`DEPENDENCY_LOGGERS`) is kept (:class:`DependencyLog`); a command that writes a
  run folder (``train``, ``adapt``, ``merge``) appends them to ``RUN/dependencies.log`` (:func:`keep_in_run`), any
  other drops them;
* a record taskgraph knows is benign (:func:`is_benign`) leaves the terminal; any other prints as its library prints
  it, so a real problem (a checkpoint missing weights the model needs) stays in sight.

Outside it nothing changes: importing taskgraph touches no logger and no progress bar. ``TASKGRAPH_VERBOSE=1`` (or
``taskgraph --verbose``) leaves the dependencies' output as they print it. A Python caller who wants the command
line's quiet output enters the same context::

    with quiet_dependencies() as log:
        model = TaskGraphModel.from_pretrained("runs/text-gen/model")
    print(log.lines)  # what transformers said
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

__all__ = [  # the module's public API: the command line's quiet output, for a Python caller too
    "DEPENDENCY_LOGGERS",
    "VERBOSE_ENV",
    "DependencyLog",
    "keep_in_run",
    "quiet_dependencies",
]

DEPENDENCY_LOGGERS = ("transformers", "huggingface_hub", "torchao", "torch.utils._pytree")
VERBOSE_ENV = "TASKGRAPH_VERBOSE"  # "1": the dependencies print as they do, nothing is routed
LOG_NAME = "dependencies.log"  # RUN/dependencies.log
KEPT_LINES = 2000  # records held before a command knows its run folder; later ones are counted, not kept

TOO_LONG = "Token indices sequence length is longer than the specified maximum sequence length"
LOAD_REPORT = "LOAD REPORT"
TIED_ABSENT = "This checkpoint seem corrupted. The tied weights mapping"
OPTIONAL_KERNEL = re.compile(r"Failed to load \S+: Could not load this library")  # torchao's own kernels
ENUM_CONSTANT = "is an Enum subclass and is now natively supported by torch.compile"  # torchao's registration
# taskgraph passes an attention mask on every call; generate drops an all-ones one before the model's check, which
# then warns whenever a prompt holds the pad id (a padded batch keeps its mask and is never warned about)
NO_MASK = "We strongly recommend passing in an `attention_mask` since your input_ids may be padded"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNUSED = ("pooler",)  # parts of a base taskgraph never reads: it pools the hidden states itself


def verbose_from_env() -> bool:
    """Whether ``TASKGRAPH_VERBOSE`` asks for the dependencies' own output (``1``, ``true``, ``yes``, ``on``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


# ----------------------------------------------------------------------------- what is benign
_new_weights_depth = 0  # > 0 while a load whose missing weights are new by design runs


@contextlib.contextmanager
def expecting_new_weights() -> Iterator[None]:
    """A load inside creates weights its checkpoint lacks on purpose (a warm start's decoder: cross-attention, LM
    head): its load report and its "tied weights ... absent" note are benign, provided they list nothing but missing
    and unexpected weights."""
    global _new_weights_depth
    _new_weights_depth += 1
    try:
        yield
    finally:
        _new_weights_depth -= 1


def load_report_rows(message: str) -> list[tuple[str, str]]:
    """``(key, status)`` of every row of a transformers load report (``key | STATUS | ...``)."""
    rows = []
    for line in _ANSI.sub("", message).splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) >= 2 and cells[1].isupper() and cells[1].isalpha() and cells[0] != "Key":
            rows.append((cells[0], cells[1]))
    return rows


def load_report_is_benign(message: str, *, new_weights: bool) -> bool:
    """A load report is benign when it lists only weights the checkpoint has over (``UNEXPECTED``: a head taskgraph
    does not load) and missing weights taskgraph never reads (a pooler) or that are new by design
    (``new_weights``). A missing weight the model reads, a size mismatch or a conversion error is not."""
    rows = load_report_rows(message)

    def fine(key: str, status: str) -> bool:
        if status == "UNEXPECTED":
            return True
        unused = any(part in _UNUSED for part in key.split("."))
        return status == "MISSING" and (new_weights or unused)

    return bool(rows) and all(fine(key, status) for key, status in rows)


def is_benign(message: str, *, new_weights: bool = False) -> bool:
    """Whether taskgraph knows a dependency's ``message`` as harmless here (see the module docstring)."""
    if message.startswith(TOO_LONG):  # taskgraph cuts every sequence at model.max_length itself
        return True
    if LOAD_REPORT in message.split("\n", 1)[0]:
        return load_report_is_benign(message, new_weights=new_weights)
    if OPTIONAL_KERNEL.match(message) or ENUM_CONSTANT in message:  # taskgraph uses no torchao kernel
        return True
    if message.startswith(NO_MASK):
        return True
    return new_weights and message.startswith(TIED_ABSENT)


def _record_is_benign(record: logging.LogRecord) -> bool:
    benign = getattr(record, "taskgraph_benign", None)  # decided once, when DependencyLog saw it
    if benign is None:
        benign = is_benign(record.getMessage(), new_weights=_new_weights_depth > 0)
    return bool(benign)


class _HideBenign(logging.Filter):
    """On the dependencies' terminal handlers: lets every record through but the benign ones."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _record_is_benign(record)


# ----------------------------------------------------------------------------- where records go
class DependencyLog(logging.Handler):
    """Every record of the dependency loggers as one text line (or block), held until :meth:`write_into` names a
    file; from then on written there as it comes.

    Args:
        limit: records held before a file is named; later ones are counted in :attr:`dropped`. (default: ``2000``)
    """

    def __init__(self, limit: int = KEPT_LINES) -> None:
        super().__init__()
        self.limit = limit
        self.lines: list[str] = []
        self.dropped = 0
        self.file: TextIO | None = None
        self.path: Path | None = None

    def emit(self, record: logging.LogRecord) -> None:
        _filter_handlers()  # a handler its library added since: filtered before it sees this record
        record.taskgraph_benign = benign = is_benign(record.getMessage(), new_weights=_new_weights_depth > 0)
        if not benign and record.levelno >= logging.WARNING and not _other_handlers(record.name, self):
            sys.stderr.write(record.getMessage() + "\n")  # as Python's last-resort handler would, but for this one
        text = self.text(record)
        if self.file is not None:
            self.file.write(text + "\n")
            self.file.flush()
        elif len(self.lines) < self.limit:
            self.lines.append(text)
        else:
            self.dropped += 1

    @staticmethod
    def text(record: logging.LogRecord) -> str:
        """``2026-12-08 10:02:11 WARNING transformers.modeling_utils: <message>`` (colour codes removed)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname} {record.name}: {_ANSI.sub('', record.getMessage())}"

    def write_into(self, path: Path) -> None:
        """Append the held lines to ``path`` and every later record as it comes.

        Raises:
            OSError: ``path`` is a symbolic link, a FIFO or anything but a regular file, or cannot be written.
        """
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags, 0o644)  # a FIFO without a reader fails here instead of blocking
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} is not a regular file")
        self.file, self.path = os.fdopen(fd, "a", encoding="utf-8"), path
        for line in self.lines:
            self.file.write(line + "\n")
        if self.dropped:
            self.file.write(f"... {self.dropped} more records were not kept (over {self.limit})\n")
        self.file.flush()
        self.lines, self.dropped = [], 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        super().close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else f"{len(self.lines)} held"
        return f"DependencyLog({where})"


# ----------------------------------------------------------------------------- the scope
@dataclass
class _Scope:
    log: DependencyLog
    engaged: bool = False
    bars_turned_off: bool = False
    filtered: list[logging.Handler] = field(default_factory=list)


_scope: _Scope | None = None
_HIDE = _HideBenign()


@contextlib.contextmanager
def quiet_dependencies(*, verbose: bool | None = None) -> Iterator[DependencyLog | None]:
    """Inside: the dependencies' bars off, their records kept in the yielded :class:`DependencyLog`, benign ones
    off the terminal (see the module docstring); everything as it was after. ``verbose`` (default: from
    ``TASKGRAPH_VERBOSE``) changes nothing and yields None; so does a scope inside another (the outer one holds)."""
    global _scope
    if verbose is None:
        verbose = verbose_from_env()
    if verbose or _scope is not None:
        yield None
        return
    log = DependencyLog()
    for name in DEPENDENCY_LOGGERS:
        logging.getLogger(name).addHandler(log)
    _scope = scope = _Scope(log)
    try:
        _filter_handlers()
        if "transformers.utils.logging" in sys.modules:
            engage_quiet()
        yield log
    finally:
        _scope = None
        for name in DEPENDENCY_LOGGERS:
            logging.getLogger(name).removeHandler(log)
        for handler in scope.filtered:
            handler.removeFilter(_HIDE)
        if scope.bars_turned_off:
            from transformers.utils import logging as hf_logging

            hf_logging.enable_progress_bar()
        log.close()


def engage_quiet() -> None:
    """Inside :func:`quiet_dependencies`, once transformers is (or is about to be) imported: its progress bars off and
    its own terminal handler filtered. Outside a scope, and a second time, it does nothing. Model loading calls it
    (:func:`taskgraph.model.base.load_base`), so the scope itself never imports transformers."""
    scope = _scope
    if scope is None or scope.engaged:
        return
    scope.engaged = True
    from huggingface_hub import constants
    from transformers.utils import logging as hf_logging

    hf_logging.get_verbosity()  # transformers sets up its own handler on first use: filter that one too
    _filter_handlers()
    if hf_logging.is_progress_bar_enabled() and constants.HF_HUB_DISABLE_PROGRESS_BARS is not False:  # False: the
        hf_logging.disable_progress_bar()  # user set HF_HUB_DISABLE_PROGRESS_BARS=0, asking for the bars
        scope.bars_turned_off = True


def _chain(name: str) -> Iterator[logging.Logger]:
    """The logger ``name`` and the ones its records propagate to."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        yield logger
        logger = logger.parent if logger.propagate else None


def _other_handlers(name: str, log: DependencyLog) -> bool:
    """Whether a record of logger ``name`` reaches a handler besides ``log`` (else Python's last resort prints it)."""
    return any(handler is not log for logger in _chain(name) for handler in logger.handlers)


def _filter_handlers() -> None:
    """Inside a scope: every handler a dependency logger's records reach (its library's own terminal handler, the
    root's) gets the filter that drops benign records. Imports nothing."""
    scope = _scope
    if scope is None:
        return
    for name in DEPENDENCY_LOGGERS:
        for logger in _chain(name):
            for handler in logger.handlers:
                if handler is not scope.log and _HIDE not in handler.filters:
                    handler.addFilter(_HIDE)
                    scope.filtered.append(handler)


def keep_in_run(log: DependencyLog, folder: str | os.PathLike[str] | None, since: float) -> Path | None:
    """Append what ``log`` holds to ``folder/dependencies.log`` when ``folder`` is a run (``train``, ``adapt``,
    ``merge``) written since ``since`` (a ``time.time()``); returns the file, or None when nothing was written (no
    record, not a run, not written by this command, another process holds its lock, or this is not rank 0 of a
    data-parallel run: the other ranks' loads are the same)."""
    from taskgraph.errors import TaskgraphError
    from taskgraph.run_folder import MARKER, RUN_KINDS, read_marker, run_lock

    if folder is None or not (log.lines or log.dropped) or os.environ.get("RANK", "0").strip() not in ("", "0"):
        return None
    run = Path(folder)
    try:
        marker = read_marker(run)
        touched = max(run.stat().st_mtime, (run / MARKER).stat().st_mtime)
    except (OSError, TaskgraphError):
        return None
    if marker is None or marker.get("kind") not in RUN_KINDS or touched < since - 1.0:
        return None
    try:
        with run_lock(run, what="run folder"):
            log.write_into(run / LOG_NAME)
    except (OSError, TaskgraphError):  # the log is a courtesy: a command that worked still exits 0
        return None
    return run / LOG_NAME
