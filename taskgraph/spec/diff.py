"""Where two specs differ, as dotted field paths — for messages that say why a run, a checkpoint or a sweep cell
does not belong to the spec at hand."""

from __future__ import annotations

from typing import Any


def changed_fields(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON documents differ (``training.steps``, ``tasks[0].data.seq_len``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            p
            for key in sorted(set(old) | set(new), key=str)
            for p in changed_fields(old.get(key), new.get(key), f"{prefix}.{key}" if prefix else str(key))
        ]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in changed_fields(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix or "(whole spec)"]
