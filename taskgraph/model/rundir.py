"""Finding the saved model inside a run directory."""

from __future__ import annotations

import os
from pathlib import Path

from taskgraph.errors import CheckpointError

MANIFEST = "manifest.json"


def find_model_dir(path: str | os.PathLike[str], which: str = "model") -> Path:
    """The model folder of ``path``: ``path`` itself if it holds a manifest, else ``path/<which>``.

    Args:
        path: a run directory (written by ``taskgraph train``) or a saved model folder.
        which: the run's model to use: ``"model"`` (final) or ``"best"`` (best validation).
    """
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{str(folder)!r} does not exist; give a run directory written by "
                              "'taskgraph train' or a folder written by save_pretrained")
    if not folder.is_dir():
        raise CheckpointError(f"{str(folder)!r} is a file; give a run directory or a saved model folder")
    if (folder / MANIFEST).is_file():
        return folder
    if (folder / which / MANIFEST).is_file():
        return folder / which
    raise CheckpointError(f"{str(folder)!r} holds no saved model: neither {MANIFEST} nor {which}/{MANIFEST} "
                          "is there; give a run directory written by 'taskgraph train' or a saved model folder")
