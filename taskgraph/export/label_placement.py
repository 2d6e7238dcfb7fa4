"""Where a drawing's node labels go so that none covers another: a greedy placement over boxes.

Pure functions over boxes in display units (pixels, y up), so the rules are tested without a figure:

- every label has an anchor (its node's centre), a size and a gap (its node's radius): its candidate places
  are below the node, above it, right, left and the four diagonals, in that order (:func:`candidate_boxes`);
- labels are placed in the order given (the drawing puts task labels first): each takes its first candidate
  that stays inside the drawing, covers no label placed before it nor a blocked box (the legend) and, where one
  exists, no other node; a label that fits nowhere is dropped when it may be (an adapter's or a layer's: the
  other exports keep every name) and otherwise takes the candidate that covers least;
- :func:`wrap_label` breaks a long dotted name (``encoder.layer.0.attention.self.query``) into lines at its
  separators, so that a column of the adapter grid is wide enough for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 with x0 <= x1, y0 <= y1

# candidate directions (dx, dy) from the anchor, in the order they are tried: below first (the usual place)
DIRECTIONS: tuple[tuple[float, float], ...] = (
    (0.0, -1.0),
    (0.0, 1.0),
    (1.0, 0.0),
    (-1.0, 0.0),
    (0.7, -0.7),
    (-0.7, -0.7),
    (0.7, 0.7),
    (-0.7, 0.7),
)
_BREAK = re.compile(r"(?<=[._/\- ])")  # a line may break after a separator


@dataclass(frozen=True)
class LabelRequest:
    """One label to place.

    Args:
        anchor: the node's centre ``(x, y)``.
        size: the label's width and height.
        gap: the distance kept from the anchor (the node's radius and a margin).
        droppable: whether the label may be left out when it fits nowhere (default: ``True``).
    """

    anchor: tuple[float, float]
    size: tuple[float, float]
    gap: float
    droppable: bool = True


def candidate_boxes(anchor: tuple[float, float], size: tuple[float, float], gap: float) -> list[Box]:
    """The label's boxes at each of :data:`DIRECTIONS`: beside the node at distance ``gap``, never over it."""
    (x, y), (w, h) = anchor, size
    boxes = []
    for dx, dy in DIRECTIONS:
        cx = x + dx * (gap + w / 2) if dx else x  # the box's centre, pushed out along the direction
        cy = y + dy * (gap + h / 2) if dy else y
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
    return boxes


def overlap_area(a: Box, b: Box) -> float:
    """The area two boxes share (0 when they only touch)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def inside(box: Box, frame: Box) -> bool:
    """Whether ``box`` lies within ``frame``."""
    return box[0] >= frame[0] and box[1] >= frame[1] and box[2] <= frame[2] and box[3] <= frame[3]


def place_labels(
    requests: Sequence[LabelRequest], frame: Box, blocked: Sequence[Box] = (), nodes: Sequence[Box] = ()
) -> list[Box | None]:
    """A box for every request (None: dropped), in order, as the module docstring says.

    Args:
        requests: the labels, the first placed first.
        frame: where labels may go.
        blocked: boxes no label may cover (the legend).
        nodes: the nodes' boxes; a label avoids those of other nodes where it can.
    """
    placed: list[Box] = []
    out: list[Box | None] = []
    for request in requests:
        x, y = request.anchor
        own = [n for n in nodes if n[0] <= x <= n[2] and n[1] <= y <= n[3]]
        others = [n for n in nodes if n not in own]
        hard = [*blocked, *placed]
        candidates = candidate_boxes(request.anchor, request.size, request.gap)
        fits = [b for b in candidates if inside(b, frame)]
        free = [b for b in fits if not any(overlap_area(b, o) for o in hard)]
        clear = [b for b in free if not any(overlap_area(b, o) for o in others)]
        if clear or free:
            box: Box | None = (clear or free)[0]
        elif request.droppable:
            box = None
        else:  # a label that must be shown: where it covers least
            box = min(fits or candidates, key=lambda b: sum(overlap_area(b, o) for o in hard))
        out.append(box)
        if box is not None:
            placed.append(box)
    return out


def wrap_label(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` characters, broken after ``.``, ``_``, ``/``, ``-`` or a space
    (a part longer than ``width`` keeps a line of its own); a text that fits is returned as it is."""
    if len(text) <= width:
        return text
    lines: list[str] = []
    line = ""
    for part in _BREAK.split(text):
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    if line:
        lines.append(line.rstrip())
    return "\n".join(lines)
