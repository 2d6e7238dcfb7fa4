"""One split of one task's examples, the seeded split every source shares, and the one label rule.

:class:`Examples` is what every data source hands a training loop (:mod:`taskgraph.data.base`); a
generative task's examples carry targets (:mod:`taskgraph.data.text2text`). Splits that have no file of their
own are carved out of the main file by :func:`carve`, seeded by ``split_seed``.

Labels: a label is a label name listed in ``labels:``, or a whole number in ``[0, num_labels)`` written as a
number or as text (:func:`parse_label`). A field holds at most :data:`MAX_FIELD_CHARS` characters
(:func:`check_fields`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskgraph.spec.models import Seed

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


_WHOLE = re.compile(r"\s*([+-]?)0*([0-9]+?)(?:\.0*)?\s*", re.ASCII)  # "2", " +2 ", "2.0", "002." -> sign, digits
_MAX_DIGITS = 18  # more digits than any label count: out of range, and never handed to int()


def parse_label(value: Any, names: list[str] | None, num_labels: int) -> int:
    """The label index of ``value`` by the module's one rule; ``ValueError`` with a one-line reason otherwise.

    A listed label name, or a whole number as a JSON number or as text (``2``, ``2.0``, ``"2"``, ``"2.0"``).
    """
    shown = shown_value(value)
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


def shown_value(value: Any) -> str:
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
                f"{where}: field {shown_value(column)} holds {len(value):,} characters, more than the "
                f"{MAX_FIELD_CHARS:,} taskgraph reads from one field (JSONL and CSV alike)"
            )
