"""Where each task of a run came from: trained with the run, or added later few-shot or zero-shot.

Two records say it, and :func:`task_provenance` reads both:

- the spec: a task the graph router routes from its relations alone is listed in ``router.zero_shot``
  (:meth:`TaskGraphModel.add_task_from_relations` appends it), so a saved model knows its zero-shot tasks;
- the run folders: ``taskgraph adapt`` writes :data:`ADAPT_RECORD` into its output folder (``task``,
  ``mode``, ``shots``, ``source_run``), and an adapted run may itself be adapted again, so the record of
  the source run is read too, back along ``source_run`` (at most :data:`MAX_CHAIN` folders; a folder
  that is gone or a record that does not parse ends the chain — provenance is a label, never a failure).

A task is ``"trained"`` unless a record says otherwise: ``"zero-shot"`` (routed from relations, no
gradient step) or ``"few-shot"`` (any other adapt mode: ``full``, ``routing``, ``mhr-mu``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.files import describe
from taskgraph.run_records import parse_json

ADAPT_RECORD = "adapt.json"  # written by taskgraph.adapt.run (ADAPT_JSON) into the adapted run folder
MAX_CHAIN = 32
TRAINED, FEW_SHOT, ZERO_SHOT, ATTACHED = "trained", "few-shot", "zero-shot", "attached"
ZERO_SHOT_MODE = "zero-shot"  # the adapt mode that takes no gradient step (taskgraph.adapt.ADAPT_MODES)
ATTACH_MODE = "attach"  # taskgraph attach: joined from its description / examples / relations (taskgraph.adapt.attach)


@dataclass(frozen=True)
class Provenance:
    """How one task entered the model.

    Args:
        kind: ``"trained"``, ``"few-shot"``, ``"zero-shot"`` or ``"attached"`` (``taskgraph attach``).
        mode: the ``taskgraph adapt`` mode, when a record names it.
        shots: the examples it was adapted on (zero-shot: those its head was fit on), when recorded.
    """

    kind: str
    mode: str | None = None
    shots: int | None = None

    def attributes(self) -> dict[str, str | int]:
        """The graph attributes of a task node: ``provenance`` and, if known, ``adapt_mode`` and ``shots``."""
        attrs: dict[str, str | int] = {"provenance": self.kind}
        if self.mode is not None:
            attrs["adapt_mode"] = self.mode
        if self.shots is not None:
            attrs["shots"] = self.shots
        return attrs


def task_provenance(task_names: list[str], zero_shot: list[str], run_dir: Path | None) -> dict[str, Provenance]:
    """The provenance of every task, from the spec's zero-shot list and the adapt records of ``run_dir``'s chain.

    Args:
        task_names: the model's tasks.
        zero_shot: the spec's ``router.zero_shot`` (tasks routed from their relations).
        run_dir: the run folder the model was read from (``None`` for a model in memory).
    """
    found = {name: Provenance(ZERO_SHOT if name in zero_shot else TRAINED) for name in task_names}
    for record in _adapt_records(run_dir):
        task, mode, shots = record.get("task"), record.get("mode"), record.get("shots")
        if not isinstance(task, str) or task not in found or not isinstance(mode, str):
            continue
        kind = {ZERO_SHOT_MODE: ZERO_SHOT, ATTACH_MODE: ATTACHED}.get(mode, FEW_SHOT)
        found[task] = Provenance(kind, mode, shots if type(shots) is int else None)
    return found


def _adapt_records(run_dir: Path | None) -> list[dict[str, Any]]:
    """The adapt records of ``run_dir`` and of the runs it was adapted from, newest first."""
    records: list[dict[str, Any]] = []
    seen: set[Path] = set()
    folder = run_dir
    while folder is not None and len(records) < MAX_CHAIN:
        try:
            place = folder.resolve()
            if describe(place / ADAPT_RECORD) is not None:  # absent, or a FIFO that would block the read
                break
            record = parse_json((place / ADAPT_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            break
        if place in seen or not isinstance(record, dict):
            break
        seen.add(place)
        records.append(record)
        source = record.get("source_run")
        folder = Path(source) if isinstance(source, str) and source else None
    return records
