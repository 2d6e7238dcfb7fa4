"""Parsers: the files of a catalog task (already pulled out of their archive) to ``(text, label)`` pairs.

Each parser reads the member files a task names (``[(path inside the archive, bytes), ...]``, in path
order) and yields ``(text, label name)``; a label of ``None`` (or one the task does not list) drops
the row. Texts are returned as they are: the converter normalises white space and deduplicates.

========== ========================================================================================
parser     format
========== ========================================================================================
vader      ``id<TAB>score<TAB>text`` lines (VADER ground truth; CRLF). ``positive`` when
           ``score > threshold``, ``negative`` when ``score < -threshold``, else dropped.
csv        a CSV table with a header: text in column ``text``, label in column ``label``; with
           ``label_map`` the raw label is renamed (raw labels missing from the map are dropped).
folder     one text file per row, labelled by the folder holding it (``data/<label>/001.txt``).
chatterbot chatterbot-corpus YAML (``conversations: [[utterance, reply, ...], ...]``), every
           utterance labelled by the folder holding the file (its language).
========== ========================================================================================
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from taskgraph.errors import DataError

Member = tuple[str, bytes]  # (path inside the archive, content)
Pair = tuple[str, "str | None"]  # (text, label name or None: drop)


class Options(BaseModel):
    """Base of every parser's options (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Parser:
    """A parser id's options model and reader."""

    name: str
    options: type[Options]
    read: Callable[[list[Member], Any], Iterator[Pair]]


PARSERS: dict[str, Parser] = {}


def _register(
    name: str, options: type[Options]
) -> Callable[[Callable[..., Iterator[Pair]]], Callable[..., Iterator[Pair]]]:
    def decorate(fn: Callable[..., Iterator[Pair]]) -> Callable[..., Iterator[Pair]]:
        if name in PARSERS:
            raise ValueError(f"catalog parser {name!r} is already registered; choose another name")
        PARSERS[name] = Parser(name, options, fn)
        return fn

    return decorate


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM dropped); bytes that are not UTF-8 are read as Windows-1252 (old corpora)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def label_folder(path: str) -> str:
    """The name of the folder holding ``path`` (``a/b/sport/001.txt`` → ``sport``)."""
    return PurePosixPath(path).parent.name


def parse_rows(parser: str, members: list[Member], options: dict[str, Any]) -> Iterator[Pair]:
    """``(text, label)`` pairs of ``members`` read by the parser ``parser`` with ``options``."""
    entry = PARSERS[parser]
    return entry.read(members, entry.options.model_validate(options))


# --------------------------------------------------------------------------- vader


class VaderOptions(Options):
    threshold: float = Field(0.5, ge=0.0)


@_register("vader", VaderOptions)
def read_vader(members: list[Member], options: VaderOptions) -> Iterator[Pair]:
    for name, data in members:
        for number, line in enumerate(decode_text(data).splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("\t", 2)
            try:
                score = float(fields[1])
                text = fields[2]
            except (IndexError, ValueError):
                raise DataError(f"{name} line {number}: expected 'id<TAB>score<TAB>text', got {line[:80]!r}") from None
            label = "positive" if score > options.threshold else "negative" if score < -options.threshold else None
            yield text, label


# --------------------------------------------------------------------------- csv


class CsvOptions(Options):
    text: str = Field(..., min_length=1)
    label: str = Field(..., min_length=1)
    label_map: dict[str, str] | None = None
    delimiter: str = Field(",", min_length=1, max_length=1)


@_register("csv", CsvOptions)
def read_csv_table(members: list[Member], options: CsvOptions) -> Iterator[Pair]:
    for name, data in members:
        reader = csv.DictReader(io.StringIO(decode_text(data), newline=""), delimiter=options.delimiter)
        missing = [c for c in (options.text, options.label) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{name}: no column {missing[0]!r}; the header has {reader.fieldnames}")
        try:
            for row in reader:
                raw = row[options.label]
                label = raw if options.label_map is None else options.label_map.get(raw)
                yield row[options.text] or "", label
        except csv.Error as exc:
            raise DataError(f"{name} line {reader.line_num}: unreadable CSV: {exc}") from None


# --------------------------------------------------------------------------- folder


class FolderOptions(Options):
    pass


@_register("folder", FolderOptions)
def read_folder(members: list[Member], options: FolderOptions) -> Iterator[Pair]:
    for name, data in members:
        yield decode_text(data), label_folder(name)


# --------------------------------------------------------------------------- chatterbot


class ChatterbotOptions(Options):
    pass


def utterances(document: Any) -> Iterator[str]:
    """Every string of a chatterbot document's ``conversations`` (lists of turns, or single turns)."""
    conversations = document.get("conversations") if isinstance(document, dict) else None
    for conversation in conversations if isinstance(conversations, list) else []:
        for turn in conversation if isinstance(conversation, list) else [conversation]:
            if isinstance(turn, str):
                yield turn


@_register("chatterbot", ChatterbotOptions)
def read_chatterbot(members: list[Member], options: ChatterbotOptions) -> Iterator[Pair]:
    import yaml

    for name, data in members:
        try:
            document = yaml.safe_load(decode_text(data))
        except yaml.YAMLError as exc:
            raise DataError(f"{name}: unreadable YAML: {str(exc).splitlines()[0]}") from None
        label = label_folder(name)
        for text in utterances(document):
            yield text, label
