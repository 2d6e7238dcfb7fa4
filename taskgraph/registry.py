"""One registry per extension point: routers, merge methods, data sources.

A new kind is one new file with one decorator::

    @ROUTERS.register("poly", params=PolyParams)
    class PolyRouter(Router): ...

This module imports nothing of ours. The built-in kinds live in the package named by each
registry (``taskgraph.routing`` for routers, ...); it is imported by name the first time the
registry is read, so a spec is always checked against the full set of built-ins.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class DuplicateKindError(ValueError):
    """A kind was registered twice in the same registry (a programming error)."""


class UnknownKindError(KeyError):
    """A lookup named a kind that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered kind: the object (class or function) and its parameter model (or None)."""

    kind: str
    obj: T
    params: Any = None  # a pydantic model class validating the kind's own spec fields, or None


class Registry(Generic[T]):
    """Maps a kind name to a registered object.

    Args:
        what: what the entries are, for messages (``"router"``).
        builtins: dotted name of the package whose import registers the built-in kinds.
    """

    def __init__(self, what: str, builtins: str) -> None:
        self.what = what
        self._builtins = builtins
        self._loaded = False
        self._entries: dict[str, Entry[T]] = {}

    def register(self, kind: str, *, params: Any = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``kind``; registering a kind twice is an error."""

        def decorate(obj: T) -> T:
            if kind in self._entries:
                raise DuplicateKindError(
                    f"{self.what} kind {kind!r} is already registered "
                    f"(by {self._entries[kind].obj!r}); choose another name"
                )
            self._entries[kind] = Entry(kind, obj, params)
            return obj

        return decorate

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._builtins)

    def kinds(self) -> list[str]:
        """The registered kind names, sorted."""
        self._load_builtins()
        return sorted(self._entries)

    def __contains__(self, kind: object) -> bool:
        self._load_builtins()
        return kind in self._entries

    def get(self, kind: str) -> Entry[T]:
        """The entry of ``kind``; :class:`UnknownKindError` naming the valid choices otherwise."""
        self._load_builtins()
        if kind not in self._entries:
            raise UnknownKindError(f"unknown {self.what} {kind!r}; choose from {self.kinds()}")
        return self._entries[kind]

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, kinds={sorted(self._entries)})"


ROUTERS: Registry[Any] = Registry("router", "taskgraph.routing")
MERGES: Registry[Any] = Registry("merge method", "taskgraph.merge")
SOURCES: Registry[Any] = Registry("data source", "taskgraph.data")
