"""CSV (or TSV) files with a header row, text and label in named columns.

``{source: csv, path: data/rt.csv, text: review, label: sentiment, labels: [neg, pos]}``;
``delimiter: "\\t"`` for TSV. CSV labels arrive as strings and follow the one label rule of
:mod:`taskgraph.data.base` (``"2"`` and ``"2.0"`` are label 2, other strings need ``labels:`` names), as do
the field-size limit and the byte-order mark. Line numbers in messages count the header as line 1.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pydantic import Field

from taskgraph.data.base import FileParams, FileSource
from taskgraph.data.examples import MAX_FIELD_CHARS, Row, check_fields
from taskgraph.errors import DataError
from taskgraph.registry import SOURCES


class CsvParams(FileParams):
    """Parameters of a ``csv`` task: :class:`FileParams` plus the field delimiter."""

    delimiter: str = Field(",", min_length=1, max_length=1)


def read_csv(path: Path, delimiter: str = ",") -> list[Row]:
    """Every data row of the CSV file ``path`` as a ``{column: value}`` record with its line.

    Raises :class:`DataError` naming the line for text that is not UTF-8, broken quoting, or a
    row whose field count differs from the header's.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{str(path)!r} line {line} is not UTF-8 text") from None
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    try:
        for fields in reader:
            where = f"line {reader.line_num}"
            if not fields or all(not f.strip() for f in fields):
                continue
            if header is None:
                header = fields
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{str(path)!r} {where} has {len(fields)} fields but the header has {len(header)} ({header})"
                )
            record = dict(zip(header, fields))
            check_fields(record, where)
            rows.append((record, where))
    except ValueError as exc:
        raise DataError(f"{str(path)!r} {exc}") from None
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise DataError(
                f"{str(path)!r} line {reader.line_num}: a field holds more than the {MAX_FIELD_CHARS:,} "
                "characters taskgraph reads from one field (JSONL and CSV alike)"
            ) from None
        raise DataError(f"{str(path)!r} line {reader.line_num}: unreadable CSV: {exc}") from None
    return rows


@SOURCES.register("csv", params=CsvParams)
class CsvSource(FileSource):
    """Examples from CSV files (see :class:`CsvParams`)."""

    kind = "csv"
    params: CsvParams

    def read_rows(self, path: Path) -> list[Row]:
        try:
            return read_csv(path, self.params.delimiter)
        except DataError as exc:
            raise self.fail(str(exc)) from None
