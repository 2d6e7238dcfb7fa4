"""What a run folder is, and the rules that keep one — and everything around it — from being lost.

A *run folder* is a folder taskgraph made and marked with :data:`MARKER`, a JSON file holding the
run's identity::

    {"format": "taskgraph-run", "version": 1, "kind": "train", "id": "3f2c...", "name": "quickstart",
     "created": "2026-12-04T15:02:11Z", "taskgraph": "0.1.0"}

Kinds: ``train``, ``adapt`` and ``merge`` make runs; ``sweep`` and ``bench`` make *containers* whose
cells are runs; ``export --format peft`` makes *exports* (``peft-export``), whose marker lists the entries the
export wrote (``"entries"``). The rules every writer follows:

1. Only a marked folder of the writer's own kind is ever replaced (``--overwrite``), and only after
   the new spec and data were checked; an unmarked folder that is not empty is never removed. What
   taskgraph did not write there (``RUN/graph.html``: :func:`foreign_entries`) is kept and named.
2. A writer holds the folder's exclusive OS lock (:data:`LOCK`, ``flock``) while it writes into it; a
   second writer gets :class:`RunLockedError` naming the holder's pid. The OS drops the lock when the
   holder exits or is killed, so a lock never goes stale.
3. An output folder is never ``""``, the current directory or one above it, a source, or a folder above
   a source; it never lies inside another run (containers hold runs).
4. No command writes inside a run it did not create: a new file directly in a run folder
   (``RUN/graph.html``) is fine, the run's own entries (:func:`own_entries`: :data:`RUN_ENTRIES`, and the
   entries an export lists) and anything below them (``RUN/model/...``) are refused, and so is a target that
   is one of the command's sources.
5. Temporary files carry their writer's pid (:mod:`taskgraph.atomic`); the next writer removes those whose
   process is gone, and puts back a folder a killed writer had set aside (:func:`claim_output_run`).

The package: :mod:`~taskgraph.run_folder.marker` (the marker, the kinds, a run's own entries),
:mod:`~taskgraph.run_folder.lock` (the lock) and :mod:`~taskgraph.run_folder.output` (the output checks, claiming,
publishing). Every name is imported from ``taskgraph.run_folder``.
"""

from taskgraph.run_folder.lock import run_lock
from taskgraph.run_folder.marker import (
    CONTAINER_KINDS,
    EXPORT_KINDS,
    FORMAT,
    KINDS,
    LOCK,
    MARKER,
    RUN_ENTRIES,
    RUN_KINDS,
    VERSION,
    OutputPathError,
    RunLockedError,
    enclosing_run,
    foreign_entries,
    kind_title,
    own_entries,
    read_marker,
    write_marker,
)
from taskgraph.run_folder.output import (
    OutputFolder,
    check_output_file,
    check_output_folder,
    check_replaceable,
    claim_container,
    claim_output_run,
    clear_run,
    holds_entries,
    kept_note,
    publish_run,
)

__all__ = [  # the module's public API: what a tool beside taskgraph needs to write its own folders safely
    "MARKER",
    "OutputPathError",
    "RunLockedError",
    "check_output_file",
    "claim_container",
    "kept_note",
    "read_marker",
]
