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

import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from taskgraph.errors import DataError, DataWarning, validation_problems
from taskgraph.files import check_text, describe
from taskgraph.registry import SOURCES, UnknownKindError
from taskgraph.spec.models import Seed

if TYPE_CHECKING:
    from taskgraph.data.text2text import Text2Text

SPLITS = ("train", "val", "test")
MAX_FIELD_CHARS = 131_072  # Python's csv default, applied to JSONL too: a text is truncated to max_length tokens

# A record read from a file and where it is, for messages: ({"text": ..., "label": ...}, "line 12").
Row = tuple[dict[str, Any], str]


@dataclass(frozen=True, eq=False)
class Examples:
    """One split of one task: inputs and integer labels (and, for a generative task, targets).

    Exactly one of ``texts`` (raw strings, to be tokenized by the model's tokenizer) and
    ``token_ids`` (already token ids, fixed length; the planted benchmark) is set. A generative task
    (``objective: generate``) also sets its targets, as strings (``targets``, with ``texts``) or token ids
    (``target_ids``, with ``token_ids``); its labels are the index of the target among the task's
    ``choices``, or 0 without choices.

    Args:
        task: the task's name.
        labels: ``[N]`` integers in ``[0, num_labels)``.
        texts: ``[N]`` strings, or None.
        token_ids: ``[N][seq_len]`` token ids, or None.
        targets: ``[N]`` target strings, or None.
        target_ids: ``[N][*]`` target token ids (without the end token), or None.
    """

    task: str
    labels: list[int]
    texts: list[str] | None = None
    token_ids: list[list[int]] | None = None
    targets: list[str] | None = None
    target_ids: list[list[int]] | None = None

    def __post_init__(self) -> None:
        if (self.texts is None) == (self.token_ids is None):
            raise ValueError("Examples needs exactly one of texts and token_ids")
        n_inputs = len(self.texts if self.texts is not None else self.token_ids)  # type: ignore[arg-type]
        if n_inputs != len(self.labels):
            raise ValueError(f"Examples of task {self.task!r}: {n_inputs} inputs but {len(self.labels)} labels")
        if self.targets is not None and self.target_ids is not None:
            raise ValueError("Examples takes at most one of targets and target_ids")
        given = self.targets if self.targets is not None else self.target_ids
        if given is not None and len(given) != n_inputs:
            raise ValueError(f"Examples of task {self.task!r}: {n_inputs} inputs but {len(given)} targets")

    @property
    def generative(self) -> bool:
        """True when the examples carry targets (a generative task's)."""
        return self.targets is not None or self.target_ids is not None

    @property
    def is_tokenized(self) -> bool:
        """True when the inputs are token ids (no tokenizer needed)."""
        return self.token_ids is not None

    def label_counts(self, num_labels: int) -> list[int]:
        """How many examples carry each label ``0 .. num_labels - 1``."""
        return np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=num_labels).tolist()

    def subset(self, rows: Iterable[int]) -> Examples:
        """The examples at positions ``rows``, in that order."""
        idx = list(rows)
        labels = [self.labels[i] for i in idx]
        targets = None if self.targets is None else [self.targets[i] for i in idx]
        target_ids = None if self.target_ids is None else [self.target_ids[i] for i in idx]
        if self.texts is not None:
            return Examples(self.task, labels, texts=[self.texts[i] for i in idx], targets=targets)
        return Examples(
            self.task,
            labels,
            token_ids=[self.token_ids[i] for i in idx],  # type: ignore[index]
            target_ids=target_ids,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        kind = "token_ids" if self.is_tokenized else "texts"
        with_targets = ", with targets" if self.generative else ""
        return f"Examples(task={self.task!r}, n={len(self)}, inputs={kind}{with_targets})"


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
    from taskgraph.data.text2text import Text2Text

    return entry.obj(
        params, task=task.name, num_labels=task.num_labels, base_dir=base_dir, text2text=Text2Text.of(task)
    )


# --------------------------------------------------------------------------- splits


class SplitParams(BaseModel):
    """The seeded split shared by every source: fractions of train / val / test and its seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: Seed = 0

    @field_validator("split")
    @classmethod
    def _fractions(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in value) or abs(sum(value) - 1.0) > 1e-6 or value[0] <= 0:
            raise ValueError(
                f"split must be three fractions [train, val, test], >= 0, train > 0, summing to 1; got {list(value)}"
            )
        return value


def split_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """How many of ``n`` rows each split gets: every split but the first rounds, the first takes the rest."""
    counts = [round(f * n) for f in fractions[1:]]
    while sum(counts) > n:  # tiny n with large fractions: trim the last non-empty split
        counts[max(i for i, c in enumerate(counts) if c > 0)] -= 1
    return [n - sum(counts)] + counts


def seeded_split(n: int, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Disjoint sorted row indices covering ``range(n)``, one array per fraction, fixed by ``seed``."""
    order = np.random.default_rng(seed).permutation(n)  # [n]
    bounds = np.cumsum([0] + split_counts(n, fractions))
    return [np.sort(order[bounds[i] : bounds[i + 1]]) for i in range(len(fractions))]


def carve(examples: Examples, names: list[str], params: SplitParams, origin: str) -> dict[str, tuple[Examples, str]]:
    """Split ``examples`` into the splits ``names`` by their renormalised fractions (seeded)."""
    share = {name: params.split[SPLITS.index(name)] for name in names}
    total = sum(share.values())
    fractions = tuple(share[name] / total for name in names)
    parts = seeded_split(len(examples), fractions, params.split_seed)
    pct = "/".join(f"{100 * f:g}" for f in fractions)
    how = f"{origin}: {len(examples)} rows split {pct} as {'/'.join(names)} with split_seed {params.split_seed}"
    return {name: (examples.subset(part.tolist()), how) for name, part in zip(names, parts)}


# --------------------------------------------------------------------------- text rows


class TextParams(SplitParams):
    """Columns of a text classification table, and optional label names.

    ``labels: [negative, positive]`` maps string labels to their index; integer labels (or
    integer strings, as CSV gives them) are used as they are.
    """

    text: str = Field("text", min_length=1)
    label: str = Field("label", min_length=1)
    labels: list[str] | None = Field(None, min_length=2)
    target: str | None = Field(None, min_length=1)  # a generative task's target column (objective: generate)

    @field_validator("labels")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            dup = sorted({v for v in value if value.count(v) > 1})
            raise ValueError(f"label names must be unique; repeated: {dup}")
        return value


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


_WHOLE = re.compile(r"\s*([+-]?)0*([0-9]+?)(?:\.0*)?\s*", re.ASCII)  # "2", " +2 ", "2.0", "002." -> sign, digits
_MAX_DIGITS = 18  # more digits than any label count: out of range, and never handed to int()


def parse_label(value: Any, names: list[str] | None, num_labels: int) -> int:
    """The label index of ``value`` by the module's one rule; ``ValueError`` with a one-line reason otherwise.

    A listed label name, or a whole number as a JSON number or as text (``2``, ``2.0``, ``"2"``, ``"2.0"``).
    """
    shown = _shown(value)
    if names is not None and isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"label {shown} is not an integer")
    if isinstance(value, int):
        index = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"label {shown} is not an integer")
        index = int(value)
    elif isinstance(value, str) and (match := _WHOLE.fullmatch(value)):
        sign, digits = match.groups()
        index = int(sign + digits) if len(digits) <= _MAX_DIGITS else num_labels
    elif isinstance(value, str) and names is not None:
        raise ValueError(f"label {shown} is not one of the label names {names} (data.labels) nor an integer")
    elif isinstance(value, str):
        raise ValueError(
            f"label {shown} is not an integer; to use label names, list them in the "
            f"task's data section, e.g. labels: [negative, positive]"
        )
    else:
        raise ValueError(f"label {shown} is not an integer (it is a JSON {type(value).__name__})")
    if not 0 <= index < num_labels:
        raise ValueError(f"label {shown} is outside [0, {num_labels}) (the task has num_labels: {num_labels})")
    return index


def _shown(value: Any) -> str:
    """``repr(value)``, cut to 40 characters (a 4,000-digit label must not fill the message)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return f"{str(value)[:20]}... ({len(str(abs(value))):,} digits)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_fields(record: dict[str, Any], where: str) -> None:
    """ValueError when a field of ``record`` holds more than :data:`MAX_FIELD_CHARS` characters."""
    for column, value in record.items():
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            raise ValueError(
                f"{where}: field {_shown(column)} holds {len(value):,} characters, more than the "
                f"{MAX_FIELD_CHARS:,} taskgraph reads from one field (JSONL and CSV alike)"
            )


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
                f"{type(text).__name__} {_shown(text)}, expected a string"
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
