"""The registry of export formats and :func:`export_graph`, which writes one of them to a file.

A new format is one new file with one decorator::

    @EXPORTS.register("dot")
    def write_dot(graph: nx.Graph, out: Path) -> Path:
        return write_text(out, render_dot(graph))

A writer gets a checked graph and a checked output path, writes through :mod:`taskgraph.atomic`
(temporary file + rename, so an interrupted export leaves no half-written file), and returns the path
of the main file it wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from taskgraph.atomic import WriteError
from taskgraph.errors import ExportError
from taskgraph.export.contract import check_graph
from taskgraph.registry import Registry, UnknownKindError

if TYPE_CHECKING:  # networkx is imported where a graph is built or read, not with the package
    import networkx as nx

Writer = Callable[["nx.Graph", Path], Path]

EXPORTS: Registry[Writer] = Registry("export format", "taskgraph.export")


def export_graph(graph: nx.Graph, fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write ``graph`` in format ``fmt`` to ``out``; returns the path written.

    ``png`` also writes the relation heatmap beside the drawing as ``<stem>-relations.png``, and refuses to
    when a file there is not a heatmap taskgraph wrote (:func:`taskgraph.export.png.check_relations_target`).

    Args:
        graph: an undirected graph following :mod:`taskgraph.export.contract`
            (``TaskGraph.to_networkx()``).
        fmt: one of :data:`taskgraph.export.FORMATS`.
        out: the file to write; missing parent folders are created.

    Raises:
        ExportError: unknown format, a graph outside the contract, or an output path that cannot be
            written (a directory, a path under a file, a read-only place, a file of the user's beside a png).
    """
    try:
        writer = EXPORTS.get(fmt).obj
    except UnknownKindError:
        raise ExportError(f"unknown export format {fmt!r}; choose from {EXPORTS.kinds()}") from None
    target = check_out_path(out, fmt)
    check_graph(graph)
    try:
        return writer(graph, target)
    except WriteError as exc:
        raise ExportError(f"{fmt} export: {exc}") from None
    except OSError as exc:
        raise ExportError(f"{fmt} export: cannot write {str(target)!r}: {exc.strerror or exc}") from None


def check_out_path(out: str | os.PathLike[str], fmt: str) -> Path:
    """``out`` as a Path if a file could be created there; :class:`ExportError` saying why not."""
    target = Path(out)
    where = f"{fmt} export: cannot write {str(out)!r}"
    if str(out) == "" or target.name in ("", ".", ".."):
        raise ExportError(f"{where}: it is not a file path; give one such as graph.{fmt}")
    if target.is_dir():
        raise ExportError(f"{where}: it is a directory; give a file path such as {str(target / f'graph.{fmt}')!r}")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError(f"{where}: {str(parent)!r} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ExportError(f"{where}: the folder {str(parent)!r} is not writable")
            break
    return target
