"""What every data source gives a training loop, and the parts the text sources share.

A task's ``data:`` section names a source kind and that kind's own parameters::

    {source: jsonl, path: data/rt.jsonl, text: text, label: label}

The kind is looked up in :data:`taskgraph.registry.SOURCES`; its parameter model (pydantic,
``extra="forbid"``) validates the other keys. A training loop does, for each task::

    source = build_source(task_spec, base_dir)      # base_dir: the spec file's directory
    train = source.load("train")                    # -> Examples (also "val", "test")

Splits. A source may give each split its own file; the splits that have none are carved out of the
main file by a fixed split, seeded by ``split_seed`` (independent of the training seed, so every run
and every router sees the same rows), with ``split`` fractions (default 80 / 10 / 10).

Labels: one rule for every file format. A label is a label name listed in ``labels:``, or a whole
number in ``[0, num_labels)`` written as a number or as text: ``2``, ``2.0``, ``"2"`` and ``"2.0"`` are all
label 2 (JSON and CSV alike; CSV gives every value as text). ``2.5``, ``true``, ``null``, ``NaN`` and a
name that ``labels:`` does not list are errors naming the row.

Limits, the same for JSONL and CSV: a field (a text, a label, any column) holds at most
:data:`MAX_FIELD_CHARS` characters; a text must be valid Unicode (JSON's ``"\ud800"`` escapes can carry
a lone surrogate, which no tokenizer reads). A byte-order mark at the start of a file is allowed.

A task whose training split holds one label only is trained, with a :class:`~taskgraph.errors.DataWarning`
(its head can learn nothing but that label).

Every problem with the data is a :class:`~taskgraph.errors.DataError` naming the task, the file and
the row (``line 12``), and saying what is allowed.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import (
    ValidationError,
    model_validator,
)

from taskgraph.data.examples import (
    SPLITS,
    Examples,
    Row,
    TextParams,
    carve,
    parse_label,
    shown_value,
)
from taskgraph.data.text2text import Text2Text
from taskgraph.errors import DataError, DataWarning, validation_problems
from taskgraph.files import check_text, describe
from taskgraph.registry import SOURCES, UnknownKindError


class Source(ABC):
    """Base of every data source: reads a task's rows once and hands out its splits.

    Subclasses set ``kind`` and implement :meth:`_read`, returning every split with a short
    description of where it came from (for messages).

    Args:
        params: the kind's validated parameter model.
        task: the task's name (for messages and for :attr:`Examples.task`).
        num_labels: the task's label count; every label must lie in ``[0, num_labels)``.
        base_dir: the directory relative paths in the spec are resolved against.
        text2text: a generative task's template and choices (:class:`~taskgraph.data.text2text.Text2Text`);
            None for a classification task. (default: None)
    """

    kind: ClassVar[str] = "source"

    def __init__(
        self, params: Any, *, task: str, num_labels: int, base_dir: str | Path = ".", text2text: Text2Text | None = None
    ) -> None:
        self.params = params
        self.task = task
        self.num_labels = num_labels
        self.base_dir = Path(base_dir)
        self.text2text = text2text
        self._splits: dict[str, tuple[Examples, str]] | None = None

    def load(self, split: str) -> Examples:
        """The examples of ``split`` (``"train"``, ``"val"`` or ``"test"``); never empty."""
        if split not in SPLITS:
            raise DataError(f"task {self.task!r}: unknown split {split!r}; choose from {list(SPLITS)}")
        if self._splits is None:
            splits = self._read()
            if self.text2text is not None:  # a labelled source cast as text-to-text: the label's choice is the target
                splits = {
                    name: (self.text2text.cast(ex, self.task, origin), origin) for name, (ex, origin) in splits.items()
                }
            self._splits = splits
            self._warn_one_label(*self._splits["train"])
        examples, origin = self._splits[split]
        if len(examples) == 0:
            raise DataError(
                f"task {self.task!r}: the {split} split is empty ({origin}); give the task more rows, "
                f"a {split} file of its own, or other split fractions"
            )
        return examples

    def _warn_one_label(self, train: Examples, origin: str) -> None:
        present = sorted(set(train.labels))
        if len(present) == 1 and self.num_labels > 1:
            warnings.warn(
                DataWarning(
                    f"task {self.task!r}: its train split holds label {present[0]} only ({len(train)} rows; {origin}); "
                    f"its head can learn nothing but that label, so check data.label and the labels of the file"
                ),
                stacklevel=3,
            )

    @abstractmethod
    def _read(self) -> dict[str, tuple[Examples, str]]:
        """Every split in :data:`SPLITS`, each with where it came from (``"data/a.jsonl, 80% of it"``)."""

    def description_ids(self) -> list[int] | None:
        """A description given as the base's token ids, for sources with no text; None: the task's
        ``description:`` text is used."""
        return None

    def resolve(self, path: str) -> Path:
        """``path`` relative to the spec's directory (absolute paths are kept)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def fail(self, message: str) -> DataError:
        """A :class:`DataError` about this task."""
        return DataError(f"task {self.task!r}: {message}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, num_labels={self.num_labels}, params={self.params!r})"


def build_source(task: Any, base_dir: str | Path = ".") -> Source:
    """The data source of a :class:`~taskgraph.spec.TaskSpec` (``task.data``), ready to :meth:`~Source.load`.

    Uses the parameters bound by the spec loader when present, else validates ``task.data``'s own
    fields against the kind's parameter model. Relative paths resolve against ``base_dir``.
    """
    data = task.data
    if data is None:
        raise DataError(
            f"task {task.name!r} has no data section; give one, e.g. "
            f"data: {{source: jsonl, path: data/{task.name}.jsonl}}"
        )
    try:
        entry = SOURCES.get(data.source)
    except UnknownKindError as exc:
        raise DataError(f"task {task.name!r}: {exc}") from None
    params = data.params
    if params is None and entry.params is not None:
        try:
            params = entry.params.model_validate(data.own_fields())
        except ValidationError as exc:
            problems = validation_problems(exc, prefix="data.")
            raise DataError(f"task {task.name!r}: invalid {data.source} data section: {problems}") from None
    return entry.obj(
        params, task=task.name, num_labels=task.num_labels, base_dir=base_dir, text2text=Text2Text.of(task)
    )


# --------------------------------------------------------------------------- text rows


class FileParams(TextParams):
    """A text table in files: ``path`` (or ``train``) and optional ``val`` / ``test`` files.

    The splits without a file of their own are carved out of the main file.
    """

    path: str | None = None
    train: str | None = None
    val: str | None = None
    test: str | None = None

    @model_validator(mode="after")
    def _one_main_file(self) -> FileParams:
        if (self.path is None) == (self.train is None):
            raise ValueError(
                "give exactly one of 'path' (one file, split by the seeded split) and "
                "'train' (the training file, with optional 'val' and 'test' files)"
            )
        return self


def rows_to_examples(
    rows: Iterable[Row],
    params: TextParams,
    *,
    task: str,
    num_labels: int,
    file: str,
    text2text: Text2Text | None = None,
) -> Examples:
    """Texts and labels of ``rows`` (records with their locations); :class:`DataError` at the first bad row.

    With ``text2text`` (a generative task) the inputs and targets (:func:`~taskgraph.data.text2text.rows_to_pairs`).
    """
    if params.labels is not None and len(params.labels) != num_labels:
        raise DataError(
            f"task {task!r}: data.labels names {len(params.labels)} labels {params.labels} "
            f"but the task has num_labels: {num_labels}; make them agree"
        )
    if text2text is not None:
        return text2text.rows_to_examples(rows, params, task=task, num_labels=num_labels, file=file)
    if params.target is not None:
        raise DataError(
            f"task {task!r}: data.target ({params.target!r}) names a target column, which only a "
            "generative task reads; give the task objective: generate, or drop data.target"
        )
    texts: list[str] = []
    labels: list[int] = []
    bad: list[tuple[str, str]] = []  # (where, why) of every row whose label does not parse
    for record, where in rows:
        for column in (params.text, params.label):
            if column not in record:
                raise DataError(
                    f"task {task!r}: {file} {where}: no column {column!r}; the row has columns "
                    f"{sorted(record)}; name the right ones with data.text / data.label"
                )
        text = record[params.text]
        if not isinstance(text, str):
            raise DataError(
                f"task {task!r}: {file} {where}: text column {params.text!r} holds "
                f"{type(text).__name__} {shown_value(text)}, expected a string"
            )
        check_text(text, f"task {task!r}: {file} {where}, column {params.text!r}", DataError)
        try:
            labels.append(parse_label(record[params.label], params.labels, num_labels))
        except ValueError as exc:
            bad.append((where, f"{exc}{case_hint(record[params.label], params.labels)}"))
        texts.append(text)
    if bad:
        raise DataError(bad_labels_message(task, file, bad))
    return Examples(task, labels, texts=texts)


MAX_REASONS, MAX_PLACES = 10, 8  # a bad-label message lists this many distinct reasons, each with this many rows


def case_hint(value: Any, names: list[str] | None) -> str:
    """``"; did you mean 'upbeat'? ..."`` when the text ``value`` is a label name but for case or surrounding
    spaces (``"Upbeat"``, ``"upbeat "``), else ``""``."""
    if not isinstance(value, str) or not names or value in names:
        return ""
    near = [n for n in names if n.strip().casefold() == value.strip().casefold()]
    if not near:
        return ""
    return f"; did you mean {near[0]!r}? label names match exactly, case and spaces included"


def bad_labels_message(task: str, file: str, bad: list[tuple[str, str]]) -> str:
    """One message for every row whose label does not parse: rows sharing a reason are listed together
    (at most :data:`MAX_REASONS` reasons, :data:`MAX_PLACES` rows each, then how many more)."""
    if len(bad) == 1:
        where, why = bad[0]
        return f"task {task!r}: {file} {where}: {why}"
    by_reason: dict[str, list[str]] = {}
    for where, why in bad:
        by_reason.setdefault(why, []).append(where)
    lines = []
    for why, places in list(by_reason.items())[:MAX_REASONS]:
        more = f" (+{len(places) - MAX_PLACES} more)" if len(places) > MAX_PLACES else ""
        lines.append(f"  {', '.join(places[:MAX_PLACES])}{more}: {why}")
    if len(by_reason) > MAX_REASONS:
        lines.append(f"  ... and {len(by_reason) - MAX_REASONS} more distinct bad labels")
    return f"task {task!r}: {file}: {len(bad)} rows have a label taskgraph cannot read:\n" + "\n".join(lines)


class FileSource(Source):
    """A text table in one file or one file per split (JSONL, CSV, ...).

    Subclasses implement :meth:`read_rows`, turning a file into records with their locations.
    """

    params: FileParams

    @abstractmethod
    def read_rows(self, path: Path) -> list[Row]:
        """Every record of ``path`` with where it is (``"line 12"``); :class:`DataError` if unreadable."""

    def _read(self) -> dict[str, tuple[Examples, str]]:
        p = self.params
        main = p.path if p.path is not None else p.train
        own = {name: getattr(p, name) for name in ("val", "test") if getattr(p, name) is not None}
        out: dict[str, tuple[Examples, str]] = {}
        for name, path in own.items():
            file = self.check_file(path, name)
            out[name] = (self._examples(file), f"{file} is empty")
        main_file = self.check_file(main, "path" if p.path is not None else "train")
        carved = [name for name in SPLITS if name not in own]
        out.update(carve(self._examples(main_file), carved, p, str(main_file)))
        return out

    def _examples(self, path: Path) -> Examples:
        return rows_to_examples(
            self.read_rows(path),
            self.params,
            task=self.task,
            num_labels=self.num_labels,
            file=str(path),
            text2text=self.text2text,
        )

    def check_file(self, path: str, key: str) -> Path:
        """``path`` resolved; :class:`DataError` saying what it is when it is not a regular file (a missing
        file, a folder, a FIFO that would block the read, a symlink loop, ...)."""
        file = self.resolve(path)
        problem = describe(file)
        if problem is not None:
            raise self.fail(
                f"data file {str(file)!r} {problem} (data.{key}: {path!r}, relative to "
                f"the spec's directory {str(self.base_dir)!r})"
            )
        return file
