"""Dotted ``key=value`` overrides of a spec file (``taskgraph train --set``, ``taskgraph sweep --param``).

    spec = spec_with_overrides("configs/quickstart.yaml", ["training.steps=100", "tasks[0].num_labels=3"])

Values are YAML scalars (``1e-3`` is read as the number a user means); keys are dotted paths with
list indices (``tasks[0].data.path`` or ``tasks.0.data.path``). The changed document is validated
whole, so every problem is reported at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from taskgraph.errors import SpecError
from taskgraph.spec.loader import load_spec, parse_yaml, spec_from_dict
from taskgraph.spec.models import Spec

_PART = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def spec_with_overrides(path: str | Path, overrides: list[str]) -> Spec:
    """The spec file at ``path`` with every ``key=value`` of ``overrides`` applied, validated whole.

    Raises:
        SpecError: the file's own problems (``file:line: ...``), a malformed ``--set``, or the
            problems of the changed spec (``file with --set: dotted.path: ...``, no line numbers).
    """
    spec = load_spec(path)
    if not overrides:
        return spec
    data, _ = parse_yaml(Path(path).read_text(encoding="utf-8-sig"), str(path))
    for item in overrides:
        apply_override(data, item)
    return spec_from_dict(data, source=f"{path} with --set")


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``data[a][b]...`` from ``"a.b...=value"`` (value parsed as YAML); SpecError if it cannot."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError([f"--set {item!r}: write it as key=value, e.g. training.steps=100"])
    value, _ = parse_yaml(raw, f"--set {key}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string; a user means the number
    parts = _path(key, item)
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        here = _dotted(parts[: depth + 1])
        if isinstance(node, dict):
            part = str(part)
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            node = node[_index(node, part, _dotted(parts[:depth]), item)]
        if not isinstance(node, (dict, list)):
            raise SpecError([f"--set {item!r}: {here} is a {type(node).__name__} ({node!r}), not a section or list"])
    last = parts[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    else:
        node[_index(node, last, _dotted(parts[:-1]), item)] = value


def _path(key: str, item: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _PART.match(piece)
        if match is None:
            raise SpecError(
                [f"--set {item!r}: cannot read the key {key!r}; write it like training.steps or tasks[0].num_labels"]
            )
        name, indices = match.groups()
        parts.append(int(name) if name.isdigit() else name)
        parts += [int(i) for i in re.findall(r"\d+", indices)]
    return parts


def _index(node: list[Any], part: str | int, where: str, item: str) -> int:
    if not isinstance(part, int):
        raise SpecError([f"--set {item!r}: {where} is a list; index it by number, e.g. {where}[0]"])
    if not 0 <= part < len(node):
        raise SpecError([f"--set {item!r}: {where} has {len(node)} items (indices 0..{len(node) - 1})"])
    return part


def _dotted(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + part)
    return out
