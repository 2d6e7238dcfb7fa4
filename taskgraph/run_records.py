"""The JSON records taskgraph reads back (a run folder's files, data lines), each checked by a schema.

A run folder is the user's to copy, edit and share, so every file of it that taskgraph reads is
untrusted input: it is read only when it is a regular file of bounded size (:func:`taskgraph.files.check_file`),
parsed by :func:`parse_json` (nesting too deep for the parser or an integer of more digits than Python
converts are a ``ValueError`` like any other malformed JSON, never a ``RecursionError``), and validated by
its pydantic model. One message names the file and every field that is wrong::

    RUN/checkpoints/step-000004/trainer.json: log_bytes: Input should be greater than or equal to 0 (got -5)

- ``RUN/train.json``: :class:`RunSummary`, read by eval, adapt and merge for its ``base_dir``
  (:func:`read_summary`);
- ``RUN/checkpoints/step-N/trainer.json``: :class:`TrainerRecord`, read by ``train --resume``;
- ``RUN/log.jsonl``, each line: :class:`LogRow`, read by the plots and by ``train --resume`` (:func:`read_log`).

JSONL data files, predict inputs, the catalog's files and a sweep's or bench's cell records are parsed by
:func:`parse_json` too.

The models check the fields taskgraph uses (type, sign, finiteness) and let other keys through, so a
file written by a later taskgraph with more keys still reads.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from taskgraph.errors import CheckpointError, TaskgraphError
from taskgraph.files import check_file

MAX_RECORD_BYTES = 256 * 1024 * 1024  # trainer.json holds the spec: a 10,000-task spec is a few MB

Record = TypeVar("Record", bound=BaseModel)


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` whose message continues "<the file> ..."
    ("is not valid JSON: ...", "is nested too deeply ...", "holds an integer of ...").

    ``json.loads`` raises ``RecursionError`` for nesting deeper than the interpreter's recursion limit
    (``[[[[...]]]]`` 100,000 deep) and a ``ValueError`` mentioning ``sys.set_int_max_str_digits`` for an
    integer of more than 4,300 digits; both become a plain ``ValueError`` here. ``NaN`` and ``Infinity``
    are read as floats, as ``json`` does (the schemas refuse them where a finite number is needed).
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise ValueError(f"is not valid JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise ValueError(
            "is nested too deeply (arrays or objects inside one another thousands of levels deep)"
        ) from None
    except ValueError as exc:
        if "int_max_str_digits" in str(exc) or "integer string conversion" in str(exc):
            raise ValueError(f"holds an integer of more than {_int_digits():,} digits") from None
        raise ValueError(f"is not valid JSON: {exc}") from None


def _int_digits() -> int:
    import sys

    return sys.get_int_max_str_digits() or 4300


def read_json(
    path: str | os.PathLike[str],
    what: str,
    error: type[TaskgraphError] = CheckpointError,
    *,
    max_bytes: int = MAX_RECORD_BYTES,
) -> Any:
    """The JSON value in the regular file ``path``; ``error`` naming ``what`` and the path otherwise."""
    file = check_file(path, what, error, max_bytes=max_bytes)
    try:
        return parse_json(file.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        problem = f"is not UTF-8 text (byte {exc.start + 1})"
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        problem = str(exc)
    raise error(f"{file} {problem}; it should hold {what}, as taskgraph wrote it")


def validate_record(
    data: Any, model: type[Record], where: str, error: type[TaskgraphError] = CheckpointError
) -> Record:
    """``data`` as ``model``; ``error`` listing ``where: field: problem`` for every field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{where}: {_location(e['loc'])}: {e['msg']}{_shown(e)}" for e in exc.errors()[:6])
        raise error(f"{problems} (the file was edited or damaged; taskgraph wrote it otherwise)") from None


def read_record(
    path: str | os.PathLike[str], model: type[Record], what: str, error: type[TaskgraphError] = CheckpointError
) -> Record:
    """The file ``path`` read with :func:`read_json` and checked by ``model`` (:func:`validate_record`)."""
    return validate_record(read_json(path, what, error), model, str(path), error)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(the whole file)"


def _shown(err: Any) -> str:
    value = err.get("input")
    if isinstance(value, (bool, int, float, str)) and len(repr(value)) <= 40:
        return f" (got {value!r})"
    return f" (got a {type(value).__name__})" if not isinstance(value, dict) else ""


# ----------------------------------------------------------------------------- field types
def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Count = Annotated[int, Field(ge=0, strict=True)]
Step = Annotated[int, Field(ge=1, strict=True)]
Seconds = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Share = Annotated[float, Field(ge=0, le=1), AfterValidator(_finite)]
Finite = Annotated[float, AfterValidator(_finite)]


class _Record(BaseModel):
    """Base of the records: known fields checked strictly (no ``"4"`` for 4, no ``true`` for 1), others kept."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ----------------------------------------------------------------------------- RUN/train.json
class Validation(_Record):
    """A validation pass recorded in ``train.json`` (``final_val`` / ``best_val``)."""

    step: Count | None = None
    mean_acc: Share | None = None
    acc: dict[str, Share] | None = None
    loss: Finite | None = None


class RunSummary(_Record):
    """``RUN/train.json``: written by train (every field), adapt and merge (``name``, ``base_dir``, where from)."""

    name: str | None = None
    base_dir: str | None = Field(None, min_length=1)
    steps: Count | None = None
    target_steps: Count | None = None
    completed: bool | None = None
    resumed_from: Count | None = None
    wall_time_s: Seconds | None = None
    examples_per_s: Seconds | None = None
    final_val: Validation | None = None
    best_val: Validation | None = None
    processes: Count | None = None  # torchrun's world size (1: one process)
    backend: str | None = None  # gloo or nccl under torchrun, else null
    torch_threads: Count | None = None
    versions: dict[str, str] | None = None  # taskgraph, torch, transformers, python


# ----------------------------------------------------------------------------- checkpoints/step-N/trainer.json
class BestSoFar(_Strict):
    step: Step | None
    mean_acc: Share | None


class OptimizerRecord(_Record):
    file: str
    bytes: Count
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    param_groups: list[dict[str, Any]]
    scalars: dict[str, dict[str, Any]]


class RngRecord(_Strict):
    """Generator states; their content is checked by applying them to throwaway generators (run_checkpoint)."""

    torch: str
    cuda: list[str] | None = None
    python: Annotated[tuple[int, list[Count], Finite | None], Field(strict=False)]  # JSON has lists, not tuples
    numpy: Annotated[tuple[str, list[Count], Count, Count, Finite], Field(strict=False)]


class TrainerRecord(_Record):
    """``checkpoints/step-N/trainer.json``: what continues a run besides the weights (see ``run_checkpoint``)."""

    format: Literal["taskgraph-trainer"]
    format_version: Literal[1]
    step: Step
    spec_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    spec: dict[str, Any]
    optimizer: OptimizerRecord
    rng: RngRecord
    sampler: dict[str, Any]
    best: BestSoFar
    log_bytes: Count
    elapsed_s: Seconds
    examples: Count
    data: dict[str, str]


# ----------------------------------------------------------------------------- RUN/log.jsonl
class LogRow(_Record):
    """One line of ``RUN/log.jsonl``: a training step (``split: train``) or a validation (``split: val``)."""

    step: Count
    split: str
    loss: float | None = None  # NaN when a step diverged (the loop stops there, the line is kept)
    task_loss: float | None = None
    reg_loss: float | None = None
    examples_per_s: Seconds | None = None
    acc: dict[str, Share] | None = None
    mean_acc: Share | None = None


def read_summary(path: Path) -> RunSummary:
    """``RUN/train.json`` checked by :class:`RunSummary` (:class:`CheckpointError` naming file and field)."""
    return read_record(path, RunSummary, "the run summary")


def read_log(path: str | os.PathLike[str], upto: int | None = None) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl`` (its first ``upto`` bytes, when given), in file order, each checked
    by :class:`LogRow`.

    A last line without its newline that is not valid JSON (the process was killed while writing it)
    is skipped; any other line that is not a JSON object of the log's shape is an error.

    Raises:
        CheckpointError: the log is not a regular file, cannot be read, or a line is not a log row (naming
            the line and the field).
    """
    log = check_file(path, "the run's log", CheckpointError, max_bytes=MAX_RECORD_BYTES)
    try:
        with open(log, "rb") as handle:
            text = handle.read(-1 if upto is None else upto).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{log}: cannot read the run's log: {getattr(exc, 'strerror', None) or exc}") from None
    lines = text.split("\n")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = parse_json(line)
        except ValueError as exc:
            if number == len(lines):  # no newline after it: a write cut short
                break
            raise CheckpointError(
                f"{log}:{number}: not a JSON line (the line {exc}); the run's log is corrupted"
            ) from None
        if not isinstance(row, dict):
            raise CheckpointError(f"{log}:{number}: a log line is a JSON object, got {type(row).__name__}")
        validate_record(row, LogRow, f"{log}:{number}")
        rows.append(row)
    return rows
