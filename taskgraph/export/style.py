"""How node and edge types look, in one place for every drawing format (DOT, Mermaid, HTML, PNG)."""

from __future__ import annotations

from dataclasses import dataclass

from taskgraph.graph.vocab import ADAPTER, LAYER, TASK


@dataclass(frozen=True)
class NodeStyle:
    """The look of one node type.

    Args:
        fill: fill colour (``#rrggbb``).
        stroke: outline colour.
        dot_shape: Graphviz node shape.
        mermaid: opening and closing brackets of the Mermaid node shape.
        marker: matplotlib marker.
        radius: SVG radius (HTML) in view-box units.
        size: matplotlib marker area (points²).
    """

    fill: str
    stroke: str
    dot_shape: str
    mermaid: tuple[str, str]
    marker: str
    radius: float
    size: float


@dataclass(frozen=True)
class EdgeStyle:
    """The look of one edge type; ``dashed`` edges are structure, the others carry learned weights."""

    color: str
    dashed: bool


NODE_STYLES: dict[str, NodeStyle] = {
    TASK: NodeStyle("#9ecae1", "#2171b5", "ellipse", ("([", "])"), "o", 16.0, 700.0),
    ADAPTER: NodeStyle("#fdd49e", "#d94801", "box", ("[", "]"), "s", 6.0, 90.0),
    LAYER: NodeStyle("#d9d9d9", "#525252", "hexagon", ("{{", "}}"), "h", 9.0, 220.0),
}
OTHER_NODE = NodeStyle("#ffffff", "#636363", "ellipse", ("(", ")"), "o", 8.0, 150.0)

EDGE_STYLES: dict[str, EdgeStyle] = {
    "relates": EdgeStyle("#2171b5", False),
    "uses": EdgeStyle("#e6550d", False),
    "in": EdgeStyle("#969696", True),
    "next": EdgeStyle("#bdbdbd", True),
}
OTHER_EDGE = EdgeStyle("#636363", False)


def node_style(kind: str) -> NodeStyle:
    """The style of node type ``kind`` (a neutral style for unknown types)."""
    return NODE_STYLES.get(kind, OTHER_NODE)


def node_class(kind: str) -> str:
    """The style class of node type ``kind``: the type itself if known, ``"other"`` otherwise."""
    return kind if kind in NODE_STYLES else "other"


def edge_style(kind: str) -> EdgeStyle:
    """The style of edge type ``kind`` (a neutral style for unknown types)."""
    return EDGE_STYLES.get(kind, OTHER_EDGE)


def edge_width(weight: float, thin: float = 0.5, thick: float = 4.0) -> float:
    """Line width for an edge of ``weight`` in [0, 1]: linear from ``thin`` to ``thick``."""
    w = min(max(weight, 0.0), 1.0)
    return thin + (thick - thin) * w


def is_weighted(kind: str) -> bool:
    """Whether an edge type carries a learned or declared weight (relations, adapter use, unknown)."""
    return not edge_style(kind).dashed


def edge_opacity(weight: float, count: int) -> float:
    """Opacity of one of ``count`` weighted edges of a type: grows with weight, fades when they are many."""
    w = min(max(weight, 0.0), 1.0)
    crowd = min(0.85, max(0.05, 60.0 / max(count, 1)))
    return crowd * (0.2 + 0.8 * w)


def task_scale(n_tasks: int) -> float:
    """Size factor of task nodes: 1 up to 12 tasks, shrinking as 1/sqrt(T) to at least 0.45."""
    return min(1.0, max(0.45, (12.0 / max(n_tasks, 1)) ** 0.5))


# Communities of the HTML view's task map: a qualitative palette (Tableau 10 and two more), repeating.
COMMUNITY_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#17becf",
    "#8c564b",
)
SMALL_COMMUNITY = "#c7c7c7"  # a task related to no other (a community of one)


def community_color(number: int, size: int) -> str:
    """The colour of community ``number`` (0 = the largest) of ``size`` tasks; the palette repeats past 12."""
    if size < 2:
        return SMALL_COMMUNITY
    return COMMUNITY_PALETTE[number % len(COMMUNITY_PALETTE)]
