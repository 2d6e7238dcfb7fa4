"""The ``catalog`` data source: a task of the catalog, fetched and converted on first use.

``{source: catalog, name: vader-tweets}``; optional ``split: [0.7, 0.15, 0.15]`` and ``split_seed: 1``
re-split the converted rows the same stratified way (test still capped at 1,000 rows). The task's
``num_labels`` must be the catalog's (``taskgraph data list`` shows it); label ``i`` is the catalog
task's ``labels[i]``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from taskgraph.data.base import Source
from taskgraph.data.catalog.cache import (
    DEFAULT_SPLIT,
    DEFAULT_SPLIT_SEED,
    TEST_CAP,
    ensure_task,
)
from taskgraph.data.catalog.manifest import catalog_task, load_manifest
from taskgraph.data.catalog.split import stratified_split
from taskgraph.data.examples import SPLITS, Examples, SplitParams
from taskgraph.errors import DataError
from taskgraph.registry import SOURCES


class CatalogParams(SplitParams):
    """Parameters of a ``catalog`` task: the catalog task's name, optional split overrides."""

    name: str = Field(..., min_length=1)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            load_manifest().task(value)
        except DataError as exc:
            raise ValueError(str(exc)) from None
        return value


@SOURCES.register("catalog", params=CatalogParams)
class CatalogSource(Source):
    """Examples of a catalog task (see the module docstring and :class:`CatalogParams`)."""

    kind = "catalog"
    params: CatalogParams

    def _read(self) -> dict[str, tuple[Examples, str]]:
        task = catalog_task(self.params.name)
        if self.num_labels != task.num_labels:
            raise self.fail(
                f"catalog task {task.name!r} has {task.num_labels} labels {list(task.labels)}, but the "
                f"task says num_labels: {self.num_labels}; set num_labels: {task.num_labels}"
            )
        entry = ensure_task(task)
        origin = f"catalog task {task.name} ({task.package.requirement}, cached in {entry.directory})"
        splits = {split: entry.read(split) for split in SPLITS}
        p = self.params
        if tuple(p.split) != DEFAULT_SPLIT or p.split_seed != DEFAULT_SPLIT_SEED:
            texts = [t for split in SPLITS for t in splits[split][0]]
            labels = [y for split in SPLITS for y in splits[split][1]]
            parts = stratified_split(texts, labels, tuple(p.split), p.split_seed, TEST_CAP)  # type: ignore[arg-type]
            splits = {
                split: ([texts[i] for i in part], [labels[i] for i in part]) for split, part in zip(SPLITS, parts)
            }
            origin += f", re-split {list(p.split)} with split_seed {p.split_seed}"
        return {split: (Examples(self.task, labels, texts=texts), origin) for split, (texts, labels) in splits.items()}
