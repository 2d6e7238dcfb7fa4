"""Names a package exports but imports on first use (PEP 562), so that importing the package stays light.

A package lists ``{name: the module that defines it}`` and hands the table to :func:`lazy_api`::

    LAZY = {"train": "taskgraph.train.loop"}
    __getattr__, __dir__ = lazy_api(__name__, LAZY, globals(), __all__)

The table is explicit: nothing is looked up by a computed name. A lazy name must not also be a submodule's name
(``taskgraph.data.encode`` would rebind ``encode`` to the module once the submodule is imported).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

__all__ = ["lazy_api"]


def lazy_api(
    package: str, table: dict[str, str], namespace: MutableMapping[str, Any], listing: Iterable[str] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__``: a name of ``table`` is imported from its module when first read
    and kept in ``namespace`` (the package's globals); another name is an AttributeError, which lists ``listing``
    (the package's API) when given."""
    names = None if listing is None else sorted(listing)

    def __getattr__(name: str) -> Any:
        if name not in table:
            hint = "" if names is None else f"; its API is {names}"
            raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
