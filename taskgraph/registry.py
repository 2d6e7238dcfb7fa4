"""One registry per extension point: routers, merge methods, data sources.

A new kind is one new file with one decorator::

    @ROUTERS.register("poly", params=PolyParams)
    class PolyRouter(Router): ...

This module imports nothing of ours. The built-in kinds live in the package named by each
registry (``taskgraph.routing`` for routers, ...); it is imported by name the first time the
registry is read, so a spec is always checked against the full set of built-ins.

A registry whose built-ins need torch (routers) also names a torch-free *declarations* module that
:meth:`Registry.declare` s each built-in kind by ``"module:Class"`` with its parameter model: checking a
spec (kinds and their keys) then reads only the declarations, and a kind's module is imported when its
object is first asked for (:meth:`Registry.get`). The decorator in the kind's own file must agree with
its declaration (a test checks every built-in).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [  # the module's public API
    "MERGES",
    "ROUTERS",
    "SOURCES",
    "DuplicateKindError",
    "Registry",
    "UnknownKindError",
]

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
        declarations: dotted name of a torch-free module declaring the built-in kinds lazily (or None).
    """

    def __init__(self, what: str, builtins: str, declarations: str | None = None) -> None:
        self.what = what
        self._builtins = builtins
        self._declarations = declarations
        self._loaded = False
        self._declared_loaded = declarations is None
        self._entries: dict[str, Entry[T]] = {}
        self._declared: dict[str, tuple[str, Any]] = {}  # kind -> ("module:attr", params)

    def declare(self, kind: str, target: str, *, params: Any = None) -> None:
        """Declare a built-in ``kind`` implemented by ``target`` (``"package.module:Class"``), imported on first use."""
        if kind in self._declared:
            raise DuplicateKindError(f"{self.what} kind {kind!r} is already declared (by {self._declared[kind][0]})")
        self._declared[kind] = (target, params)

    def register(self, kind: str, *, params: Any = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``kind``; registering a kind twice is an error."""

        def decorate(obj: T) -> T:
            if kind in self._entries:
                raise DuplicateKindError(
                    f"{self.what} kind {kind!r} is already registered "
                    f"(by {self._entries[kind].obj!r}); choose another name"
                )
            declared = self._declared.get(kind)
            name = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', '?')}"
            if declared is not None and (declared[0] != name or declared[1] is not params):
                raise DuplicateKindError(
                    f"{self.what} kind {kind!r} is declared as {declared[0]} but {name} "
                    "registers it (or with other parameters); make the two agree"
                )
            self._entries[kind] = Entry(kind, obj, params)
            return obj

        return decorate

    def _load_declarations(self) -> None:
        if not self._declared_loaded:
            self._declared_loaded = True
            assert self._declarations is not None
            importlib.import_module(self._declarations)

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            importlib.import_module(self._builtins)

    def _known(self) -> set[str]:
        """Every kind known without importing an implementation (all built-ins when there are declarations)."""
        self._load_declarations()
        if self._declarations is None:
            self._load_builtins()
        return set(self._entries) | set(self._declared)

    def kinds(self) -> list[str]:
        """The registered kind names, sorted."""
        return sorted(self._known())

    def __contains__(self, kind: object) -> bool:
        return kind in self._known()

    def params_of(self, kind: str) -> Any:
        """The parameter model of ``kind`` (None when it takes none), without importing its implementation."""
        if kind not in self._known():
            raise UnknownKindError(f"unknown {self.what} {kind!r}; choose from {self.kinds()}")
        if kind in self._entries:
            return self._entries[kind].params
        return self._declared[kind][1]

    def get(self, kind: str) -> Entry[T]:
        """The entry of ``kind``; :class:`UnknownKindError` naming the valid choices otherwise."""
        if kind not in self._known():
            raise UnknownKindError(f"unknown {self.what} {kind!r}; choose from {self.kinds()}")
        if kind not in self._entries:
            module = self._declared[kind][0].partition(":")[0]
            importlib.import_module(module)  # its decorator registers the kind
            if kind not in self._entries:
                raise DuplicateKindError(
                    f"{self.what} kind {kind!r} is declared in {module}, which does not register it"
                )
        return self._entries[kind]

    def ordered(self) -> list[str]:
        """Every kind: the declared built-ins in declaration order (the tables' order), then the others as
        they registered."""
        known = self._known()
        return [k for k in self._declared if k in known] + [k for k in self._entries if k not in self._declared]

    def declared(self) -> dict[str, str]:
        """``{kind: "module:attr"}`` of the declared built-ins."""
        self._load_declarations()
        return {kind: target for kind, (target, _) in self._declared.items()}

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, kinds={sorted(set(self._entries) | set(self._declared))})"


ROUTERS: Registry[Any] = Registry("router", "taskgraph.routing", declarations="taskgraph.spec.router_kinds")
MERGES: Registry[Any] = Registry("merge method", "taskgraph.merge")
SOURCES: Registry[Any] = Registry("data source", "taskgraph.data")
