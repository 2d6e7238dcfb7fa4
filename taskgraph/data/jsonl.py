"""JSON Lines files: one JSON object per line, text and label in named fields.

``{source: jsonl, path: data/rt.jsonl, text: text, label: label}``; or ``train: ...`` with
``val:`` / ``test:`` files. Blank lines are skipped; line numbers in messages count them. Labels, the
field-size limit (:data:`~taskgraph.data.base.MAX_FIELD_CHARS`) and the byte-order mark follow the rules
of :mod:`taskgraph.data.base`, the same as CSV's.
"""

from __future__ import annotations

from pathlib import Path

from taskgraph.data.base import FileParams, FileSource
from taskgraph.data.examples import Row, check_fields
from taskgraph.errors import DataError
from taskgraph.registry import SOURCES
from taskgraph.run_records import parse_json


class JsonlParams(FileParams):
    """Parameters of a ``jsonl`` task: the file(s), the text / label fields, the seeded split."""


def read_jsonl(path: Path) -> list[Row]:
    """Every object of the JSON Lines file ``path`` with its line (``"line 3"``): :func:`parse_jsonl` of its bytes.

    Raises :class:`DataError` naming the line for text that is not UTF-8, not JSON (nesting too deep or an
    integer of thousands of digits included), not an object, or a field longer than :data:`~taskgraph.data.base.MAX_FIELD_CHARS`.
    A byte-order mark before the first line is allowed.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return parse_jsonl(raw, str(path))


def parse_jsonl(raw: bytes, name: str) -> list[Row]:
    """Every object of the JSON Lines bytes ``raw`` with its line, as :func:`read_jsonl` reads a file; messages
    name the input ``name`` (a path, or ``<stdin>``)."""
    rows: list[Row] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        where = f"line {number}"
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name!r} {where} is not UTF-8 text (byte {exc.start + 1} of the line)") from None
        if not text.strip():
            continue
        try:
            record = parse_json(text)
        except ValueError as exc:
            raise DataError(f"{name!r} {where} {exc}; each line must be one JSON object") from None
        if not isinstance(record, dict):
            raise DataError(
                f"{name!r} {where} holds a JSON {type(record).__name__}, "
                f'expected an object like {{"text": ..., "label": ...}}'
            )
        try:
            check_fields(record, where)
        except ValueError as exc:
            raise DataError(f"{name!r} {exc}") from None
        rows.append((record, where))
    return rows


@SOURCES.register("jsonl", params=JsonlParams)
class JsonlSource(FileSource):
    """Examples from JSON Lines files (see :class:`JsonlParams`)."""

    kind = "jsonl"

    def read_rows(self, path: Path) -> list[Row]:
        try:
            return read_jsonl(path)
        except DataError as exc:
            raise self.fail(str(exc)) from None
