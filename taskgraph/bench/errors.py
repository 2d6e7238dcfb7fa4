"""The user benches' one error: asked for something this machine or these settings cannot do (exit 2)."""

from __future__ import annotations

from taskgraph.errors import TaskgraphError


class BenchError(TaskgraphError):
    """A bench was asked for something this machine or these settings cannot do."""
