"""A generative task's examples: an input text and a target text per row (``objective: generate``).

Two ways a row gives its target:

* a target column, named by ``data.target`` (JSONL / CSV / hf-disk)::

      {source: jsonl, path: qa.jsonl, text: question, target: answer}

* a label, cast as text-to-text by the task's ``choices`` (T0's protocol; any labelled source, the catalog
  too): the target of label ``y`` is ``choices[y]``. With a target column *and* choices, a target must be
  one of the choices and its label is its index.

The input is the ``data.text`` column, or the task's ``template`` rendered with the row's fields
(:mod:`taskgraph.spec.template`; a labelled source without a row of its own, such as the catalog, offers
the slot ``{text}``). Every problem names the task, the file and the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from taskgraph.data.examples import Examples, Row, TextParams, parse_label, shown_value
from taskgraph.errors import DataError
from taskgraph.files import check_text
from taskgraph.spec.template import render, template_fields

FIELD_TYPES = (str, int, float)  # what a template slot accepts from a row (not bool, None, lists, objects)


@dataclass(frozen=True)
class Text2Text:
    """What turns a generative task's rows into inputs and targets.

    Args:
        template: the input built from a row's fields, or None (the ``data.text`` column is the input).
        choices: the targets a label indexes (``choices[label]``), or None.
    """

    template: str | None = None
    choices: tuple[str, ...] | None = None

    @classmethod
    def of(cls, task: Any) -> Text2Text | None:
        """The settings of a :class:`~taskgraph.spec.TaskSpec`; None for a classification task."""
        if getattr(task, "objective", "classify") != "generate":
            return None
        return cls(task.template, None if task.choices is None else tuple(task.choices))

    def input_of(self, record: dict[str, Any], text_column: str, where: str) -> str:
        """The input of one row: the template rendered with its fields, or its text column."""
        if self.template is None:
            return _string_column(record, text_column, "input column (data.text; or give the task a template)", where)
        for name in template_fields(self.template):
            if name not in record:
                raise DataError(
                    f"{where}: no column {name!r} for the template's slot {{{name}}}; the row has "
                    f"columns {sorted(record)[:20]}"
                )
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, FIELD_TYPES):
                raise DataError(
                    f"{where}: column {name!r} (template slot {{{name}}}) holds "
                    f"{type(value).__name__} {shown_value(value)}; a slot takes a string or a number"
                )
        return render(self.template, record)

    def rows_to_examples(
        self, rows: Iterable[Row], params: TextParams, *, task: str, num_labels: int, file: str
    ) -> Examples:
        """Inputs, targets and labels of ``rows``; :class:`DataError` at the first bad row."""
        texts: list[str] = []
        targets: list[str] = []
        labels: list[int] = []
        for record, at in rows:
            where = f"task {task!r}: {file} {at}"
            text = self.input_of(record, params.text, where)
            check_text(text, f"{where}, the input", DataError)
            target, label = self._target(record, params, num_labels, where)
            check_text(target, f"{where}, the target", DataError)
            texts.append(text)
            targets.append(target)
            labels.append(label)
        return Examples(task, labels, texts=texts, targets=targets)

    def _target(self, record: dict[str, Any], params: TextParams, num_labels: int, where: str) -> tuple[str, int]:
        if params.target is not None:
            target = _string_column(record, params.target, "target column (data.target)", where)
            if self.choices is None:
                return target, 0
            if target not in self.choices:
                raise DataError(
                    f"{where}: target {shown_value(target)} is not one of the task's choices {list(self.choices)[:20]}"
                )
            return target, self.choices.index(target)
        if self.choices is None:
            raise DataError(
                f"{where}: a generative task needs a target: name its column with data.target, or "
                f"give the task choices (then the row's label picks its target)"
            )
        if params.label not in record:
            raise DataError(
                f"{where}: no column {params.label!r} (data.label) and no data.target; the row has "
                f"columns {sorted(record)[:20]}"
            )
        try:
            label = parse_label(record[params.label], params.labels, num_labels)
        except ValueError as exc:
            raise DataError(f"{where}: {exc}") from None
        return self.choices[label], label

    def cast(self, examples: Examples, task: str, origin: str) -> Examples:
        """Labelled examples (a source without target columns, e.g. the catalog) as text-to-text.

        The target of label ``y`` is ``choices[y]``; the template, if any, reads the slot ``{text}``.
        Examples that already carry targets are returned as they are.
        """
        if examples.generative:
            return examples
        if examples.texts is None:
            raise DataError(
                f"task {task!r}: {origin} gives token ids, not texts, so it cannot be cast as "
                "text-to-text; use the planted-gen source, or a text source"
            )
        if self.choices is None:
            raise DataError(
                f"task {task!r}: {origin} gives labels, not targets; give the task choices (the "
                "label's choice is its target), or a source with a target column (data.target)"
            )
        texts = examples.texts
        if self.template is not None:
            missing = [name for name in template_fields(self.template) if name != "text"]
            if missing:
                raise DataError(
                    f"task {task!r}: the template's slot {{{missing[0]}}} names no field of {origin}; "
                    "its rows give the slot {text} only"
                )
            texts = [render(self.template, {"text": t}) for t in texts]
        targets = [self.choices[y] for y in examples.labels]
        return Examples(task, list(examples.labels), texts=texts, targets=targets)


def _string_column(record: dict[str, Any], column: str, what: str, where: str) -> str:
    """``record[column]``, a string; DataError naming the row when it is missing or not a string."""
    if column not in record:
        raise DataError(
            f"{where}: no {what.split(' (')[0]} {column!r} ({what.split(' (', 1)[1]}; the row has "
            f"columns {sorted(record)[:20]}"
        )
    value = record[column]
    if not isinstance(value, str):
        raise DataError(
            f"{where}: {what.split(' (')[0]} {column!r} holds {type(value).__name__} {shown_value(value)}, expected a string"
        )
    return value
