"""Finding the saved model inside a run directory."""

from __future__ import annotations

import os
from pathlib import Path

from taskgraph.errors import CheckpointError
from taskgraph.model.checkpoint import MANIFEST


def find_model_dir(path: str | os.PathLike[str], which: str = "model") -> Path:
    """The model folder of ``path``: ``path`` itself if it holds a manifest, else ``path/<which>``.

    Args:
        path: a run directory (written by ``taskgraph train``) or a saved model folder.
        which: the run's model to use: ``"model"`` (final) or ``"best"`` (best validation).
    """
    folder = Path(path)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "no such folder"
        raise CheckpointError(
            f"{str(folder)!r}: {what}; give a run folder (taskgraph train --out RUN) "
            "or a model folder (save_pretrained)"
        )
    if (folder / MANIFEST).is_file():
        return folder
    if (folder / which / MANIFEST).is_file():
        return folder / which
    raise CheckpointError(
        f"{str(folder)!r} is neither a run folder (it has no {which}/{MANIFEST}) nor a model folder "
        f"(it has no {MANIFEST}); give the folder of `taskgraph train --out RUN`, its model/ or best/ "
        "folder, or a folder written by TaskGraphModel.save_pretrained"
    )
