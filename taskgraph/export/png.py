"""PNG figures with matplotlib: the graph drawing and a heatmap of task–task relation weights.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas: pyplot is never imported
and no backend or global setting is changed, so exporting from a notebook or an application leaves
the user's matplotlib as it was; matplotlib and numpy are imported when a figure is drawn (``taskgraph --help``
does not pay for them). Text is drawn with ``parse_math=False`` (a ``$`` in a label is a dollar sign). In the
drawing the legend sits above the nodes, under the title, and the node labels are placed so that none covers
another or the legend (:mod:`taskgraph.export.label_placement`: task labels first, each below, above or beside
its node; a long module name is wrapped at its dots; an adapter or layer label with no free place is left out,
the other formats keep every name). The ``png`` export writes the drawing to ``--out`` and the heatmap beside it as
``<stem>-relations.png`` (see :func:`relations_path`). The heatmap carries its identity in a PNG text chunk
(``taskgraph: relation-heatmap``), so that a later export replaces a heatmap taskgraph wrote there and refuses
to replace any other file of that name (:func:`check_relations_target`).
"""

from __future__ import annotations

import io
import math
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from taskgraph.atomic import write_bytes
from taskgraph.errors import ExportError
from taskgraph.export.contract import check_graph, edge_weight, node_label, node_type, nodes_of_type
from taskgraph.export.formats import EXPORTS
from taskgraph.export.label_placement import Box, LabelRequest, place_labels, wrap_label
from taskgraph.export.layout import layout
from taskgraph.export.style import (
    NODE_STYLES,
    edge_opacity,
    edge_style,
    edge_width,
    is_weighted,
    node_class,
    node_style,
    task_scale,
)
from taskgraph.graph.vocab import ADAPTER, TASK

if TYPE_CHECKING:  # networkx, matplotlib and numpy are imported when a figure is drawn, not with the package
    import networkx as nx
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Bbox

DPI = 120
MAX_ANNOTATED = 16  # heatmap cells carry their value up to this many tasks
MAX_TICKS = 60  # heatmap axes name the tasks up to this many
MAX_ADAPTER_LABELS = 48  # the drawing names adapters up to this many
DRAWING_BOX = (0.02, 0.02, 0.96, 0.84)  # the nodes' axes in the figure; the legend and title sit above it
HEATMAP_MARK = ("taskgraph", "relation-heatmap")  # the heatmap's PNG text chunk: keyword, text
MARK_WINDOW = 64 * 1024  # the bytes of a file read to find that chunk (it comes right after the header)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def relations_path(out: str | Path) -> Path:
    """Where the ``png`` export puts the relation heatmap: ``<stem>-relations.png`` beside ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}-relations.png")


def check_relations_target(out: str | Path) -> Path:
    """The heatmap's path beside ``out`` (:func:`relations_path`), if the ``png`` export may write it there:
    nothing is there, or a relation heatmap taskgraph wrote (its text chunk says so).

    Raises:
        ExportError: another file is there (a PNG of the user's, any other file, a folder, a FIFO); nothing
            was written.
    """
    target = relations_path(out)
    if not os.path.lexists(target) or is_relation_heatmap(target):
        return target
    raise ExportError(
        f"png export: {str(target)!r} exists and is not a relation heatmap taskgraph wrote; --format png writes "
        f"the drawing to {str(out)!r} and the relation heatmap beside it at <stem>-relations.png, and will not "
        "replace a file it did not write. Move or rename that file, or give another --out (nothing was written)"
    )


def is_relation_heatmap(path: Path) -> bool:
    """Whether ``path`` (a symlink followed) is a regular file holding a PNG whose text chunks, before its image
    data, mark it as a relation heatmap of taskgraph (:data:`HEATMAP_MARK`)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            head = handle.read(MARK_WINDOW)
    except OSError:
        return False
    return png_text(head).get(HEATMAP_MARK[0]) == HEATMAP_MARK[1]


def png_text(data: bytes) -> dict[str, str]:
    """The ``tEXt`` chunks (keyword -> text) of the PNG ``data`` up to its image data; ``{}`` for no PNG."""
    if data[:8] != PNG_SIGNATURE:
        return {}
    found: dict[str, str] = {}
    pos = 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            break
        if kind == b"tEXt":
            keyword, _, text = data[pos + 8 : pos + 8 + length].partition(b"\0")
            found[keyword.decode("latin-1")] = text.decode("latin-1")
        pos += 12 + length  # length, type, data, CRC
    return found


def render_png(graph: nx.Graph) -> bytes:
    """PNG bytes of the graph drawing (:func:`draw_graph`)."""
    return _png_bytes(draw_graph(graph))


def draw_graph(graph: nx.Graph) -> Figure:
    """The figure of the graph drawing: nodes where :mod:`taskgraph.export.layout` puts them, the legend above
    them, every label placed clear of the others and of the legend (see the module docstring)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_graph(graph)
    fig = Figure(figsize=(11, 7), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(DRAWING_BOX)
    ax.set_axis_off()
    ax.set_xlim(-0.06, 1.06)
    ax.set_ylim(-0.1, 1.06)
    pos = {n: (x, 1.0 - y) for n, (x, y) in layout(graph).items()}  # matplotlib's y grows upwards
    _draw_edges(ax, graph, pos)
    sizes = _draw_nodes(ax, graph, pos)
    if len(graph):
        ax.legend(
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),  # above the drawing: it covers no node and no label
            ncol=len(sizes),
            fontsize=8,
            frameon=False,
            markerscale=0.5,
            borderaxespad=0.2,
        )
    fig.suptitle(str(graph.graph.get("name", "taskgraph")), fontsize=13, parse_math=False)
    _draw_labels(fig, ax, graph, pos, sizes)
    return fig


def _draw_nodes(ax: Axes, graph: nx.Graph, pos: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Scatter every node class (task, adapter, layer, other) with its style; returns each drawn class's marker
    size (points²)."""
    import numpy as np

    scale = task_scale(len(nodes_of_type(graph, TASK)))
    sizes = {}
    for kind in [*NODE_STYLES, "other"]:
        nodes = [n for n in graph if node_class(node_type(graph, n)) == kind]
        if not nodes:
            continue
        style = node_style(kind)
        sizes[kind] = style.size * (scale**2 if kind == TASK else 1.0)
        xy = np.array([pos[n] for n in nodes])  # [N, 2]
        ax.scatter(
            xy[:, 0],
            xy[:, 1],
            s=sizes[kind],
            marker=style.marker,
            c=style.fill,
            edgecolors=style.stroke,
            linewidths=1.2,
            zorder=3,
            label=f"{kind} ({len(nodes)})",
        )
    return sizes


def _draw_labels(
    fig: Figure, ax: Axes, graph: nx.Graph, pos: dict[str, tuple[float, float]], sizes: dict[str, float]
) -> None:
    """Every node's label, placed by :func:`~taskgraph.export.label_placement.place_labels` in display pixels:
    task labels first, then layers and adapters (left out past :data:`MAX_ADAPTER_LABELS` adapters)."""
    renderer = fig.canvas.get_renderer()
    to_pixels, to_data = ax.transData.transform, ax.transData.inverted().transform
    legend = ax.get_legend()
    blocked = [_box(legend.get_window_extent(renderer))] if legend is not None else []
    frame = (0.0, 0.0, fig.bbox.width, blocked[0][1] if blocked else fig.bbox.height)
    column = _column_pixels(graph, pos, to_pixels)
    order = sorted(graph, key=lambda n: node_class(node_type(graph, n)) != TASK)  # tasks first, stable
    if len(nodes_of_type(graph, ADAPTER)) > MAX_ADAPTER_LABELS:
        order = [n for n in order if node_type(graph, n) != ADAPTER]
    radius = {kind: math.sqrt(size) * DPI / 72 / 2 for kind, size in sizes.items()}  # marker size is points²
    nodes = []
    for n in graph:
        (x, y), r = to_pixels(pos[n]), radius[node_class(node_type(graph, n))]
        nodes.append((x - r, y - r, x + r, y + r))
    texts, requests = [], []
    for n in order:
        big = node_class(node_type(graph, n)) == TASK
        fontsize = 10 if big else 7
        label = node_label(graph, n) if big else wrap_label(node_label(graph, n), _chars(column, fontsize))
        text = ax.text(
            *pos[n],
            label,
            ha="left",
            va="bottom",
            multialignment="center",
            fontsize=fontsize,
            zorder=4,
            fontweight="bold" if big else "normal",
            parse_math=False,
        )
        extent = text.get_window_extent(renderer)
        gap = radius[node_class(node_type(graph, n))] + 2.0
        requests.append(LabelRequest(tuple(to_pixels(pos[n])), (extent.width, extent.height), gap, not big))
        texts.append(text)
    for text, box in zip(texts, place_labels(requests, frame, blocked, nodes)):
        if box is None:
            text.remove()
        else:
            text.set_position(tuple(to_data((box[0], box[1]))))


def _column_pixels(graph: nx.Graph, pos: dict[str, tuple[float, float]], to_pixels: Callable[..., Any]) -> float:
    """The room, in pixels, between neighbouring columns of the adapter grid (the drawing's width with none)."""
    xs = sorted({round(float(to_pixels(pos[n])[0]), 1) for n in graph if node_class(node_type(graph, n)) != TASK})
    steps = [b - a for a, b in zip(xs, xs[1:])]
    return min(steps) if steps else 11 * DPI


def _chars(width: float, fontsize: float) -> int:
    """About how many characters of ``fontsize`` points fit in ``width`` pixels (at least 8)."""
    return max(8, int(width / (0.6 * fontsize * DPI / 72)))


def _box(extent: Bbox) -> Box:
    """A matplotlib extent as a plain box."""
    return (float(extent.x0), float(extent.y0), float(extent.x1), float(extent.y1))


def render_relation_heatmap_png(graph: nx.Graph) -> bytes:
    """PNG bytes of the task × task relation weights (grey: the diagonal and pairs with no edge)."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    check_graph(graph)
    tasks = nodes_of_type(graph, TASK)
    matrix, declared = relation_matrix(graph, tasks)  # [T, T], [T, T]
    n = len(tasks)
    side = min(max(4.5, 0.45 * n + 3.0), 20.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    title = f"{graph.graph.get('name', 'taskgraph')}: task relations"
    if n == 0:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no tasks", ha="center", va="center", fontsize=14, parse_math=False)
    else:
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="relation weight")
        if n <= MAX_TICKS:
            names = [node_label(graph, t) for t in tasks]
            ax.set_xticks(range(n), labels=names, rotation=45, ha="right", fontsize=8, parse_math=False)
            ax.set_yticks(range(n), labels=names, fontsize=8, parse_math=False)
        if n <= MAX_ANNOTATED:
            for i, j in zip(*np.nonzero(~np.isnan(matrix)), strict=True):
                value = matrix[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}" + ("*" if declared[i, j] else ""),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value < 0.6 else "black",
                    parse_math=False,
                )
        if declared.any():
            title += " (* declared)"
    ax.set_title(title, fontsize=11, parse_math=False)
    fig.tight_layout()
    return _png_bytes(fig, dict([HEATMAP_MARK]))


def relation_matrix(graph: nx.Graph, tasks: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric relation weights ``[T, T]`` (NaN where no edge) and the declared mask ``[T, T]``."""
    import numpy as np

    index = {t: i for i, t in enumerate(tasks)}
    matrix = np.full((len(tasks), len(tasks)), np.nan)  # [T, T]
    declared = np.zeros((len(tasks), len(tasks)), dtype=bool)  # [T, T]
    for u, v, data in graph.edges(data=True):
        if u in index and v in index and u != v and data.get("type", "relates") == "relates":
            i, j = index[u], index[v]
            matrix[i, j] = matrix[j, i] = edge_weight(data)
            declared[i, j] = declared[j, i] = bool(data.get("declared", False))
    return matrix, declared


def relation_heatmap_png(graph: nx.Graph, out: str | Path) -> Path:
    """Write :func:`render_relation_heatmap_png` to ``out`` atomically; returns the path."""
    return write_bytes(out, render_relation_heatmap_png(graph))


@EXPORTS.register("png")
def write_png(graph: nx.Graph, out: Path) -> Path:
    """Write the drawing to ``out`` and the relation heatmap to :func:`relations_path` ``(out)``.

    The heatmap's place is checked first (:func:`check_relations_target`: a file there that taskgraph did not
    write is refused), and both figures are rendered before either file is written.
    """
    sibling = check_relations_target(out)
    drawing, heatmap = render_png(graph), render_relation_heatmap_png(graph)
    write_bytes(sibling, heatmap)
    return write_bytes(out, drawing)


def _draw_edges(ax: Axes, graph: nx.Graph, pos: dict[str, tuple[float, float]]) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba

    groups: dict[str, list[tuple[tuple[float, float], tuple[float, float], float]]] = {}
    for u, v, data in graph.edges(data=True):
        groups.setdefault(str(data.get("type", "")), []).append((pos[u], pos[v], edge_weight(data)))
    for kind, edges in groups.items():
        style = edge_style(kind)
        weighted = is_weighted(kind)
        widths = [edge_width(w, 0.3, 3.5) if weighted else 0.6 for _, _, w in edges]
        colors = [to_rgba(style.color, edge_opacity(w, len(edges)) if weighted else 0.35) for _, _, w in edges]
        ax.add_collection(
            LineCollection(
                [(a, b) for a, b, _ in edges],
                linewidths=widths,
                colors=colors,
                linestyles="dashed" if style.dashed else "solid",
                zorder=2 if kind == "relates" else 1,
            )
        )


def _png_bytes(fig: Figure, text: dict[str, str] | None = None) -> bytes:
    """The PNG of ``fig`` with the text chunks ``text`` and no "Software" chunk (the same bytes every time)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None, **(text or {})})
    return buffer.getvalue()
