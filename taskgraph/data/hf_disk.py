"""A local Hugging Face ``datasets`` directory (written by ``save_to_disk``), read with ``load_from_disk``.

``{source: hf-disk, path: data/imdb, text: text, label: label}``. A ``DatasetDict``'s splits are
found by name (train; validation / val / dev / valid; test) or named with ``splits: {val: dev}``;
a split it lacks, or a plain ``Dataset``, is carved out of the train rows by the seeded split.
Nothing is downloaded: only ``load_from_disk`` is called. ``datasets`` is an optional extra
(``pip install datasets``). Rows in messages are 0-based, as ``dataset[i]``.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import Field

from taskgraph.data.base import Source, rows_to_examples
from taskgraph.data.examples import SPLITS, Examples, TextParams, carve
from taskgraph.files import describe
from taskgraph.registry import SOURCES

SplitName = Literal["train", "val", "test"]

# Names a DatasetDict commonly gives each of our splits, in order of preference.
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": ("train",),
    "val": ("validation", "val", "dev", "valid"),
    "test": ("test",),
}


class HfDiskParams(TextParams):
    """Parameters of an ``hf-disk`` task: the directory, the columns, optional split names."""

    path: str = Field(..., min_length=1)
    splits: dict[SplitName, str] | None = None


@SOURCES.register("hf-disk", params=HfDiskParams)
class HfDiskSource(Source):
    """Examples from a ``datasets.load_from_disk`` directory (see :class:`HfDiskParams`)."""

    kind = "hf-disk"
    params: HfDiskParams

    def _read(self) -> dict[str, tuple[Examples, str]]:
        datasets = self._import_datasets()
        directory = self.resolve(self.params.path)
        if not directory.is_dir():
            problem = describe(directory) or "is a file, not a directory"
            raise self.fail(
                f"datasets directory {str(directory)!r} {problem} (data.path: "
                f"{self.params.path!r}, relative to the spec's directory {str(self.base_dir)!r})"
            )
        odd = next((f for f in sorted(directory.rglob("*")) if not (f.is_dir() or describe(f) is None)), None)
        if odd is not None:  # a FIFO would block the reader; a broken link or a loop would crash it
            raise self.fail(f"{str(odd)!r} {describe(odd)}; a datasets directory holds regular files and folders")
        try:
            loaded = datasets.load_from_disk(str(directory))
        except Exception as exc:  # noqa: BLE001  (datasets raises FileNotFoundError, ValueError, its own)
            raise self.fail(
                f"{str(directory)!r} is not a directory written by datasets' save_to_disk: {type(exc).__name__}: {exc}"
            ) from None
        if isinstance(loaded, dict):  # a DatasetDict
            names = self._split_names(sorted(loaded), str(directory))
        else:
            if self.params.splits is not None:
                raise self.fail(
                    f"{str(directory)!r} holds one Dataset, not a DatasetDict with splits; "
                    f"drop data.splits (its rows are split by the seeded split)"
                )
            loaded, names = {"train": loaded}, {"train": "train"}
        out: dict[str, tuple[Examples, str]] = {}
        for ours, theirs in names.items():
            where = f"{directory}[{theirs}]"
            out[ours] = (self._examples(loaded[theirs], where), f"{where} is empty")
        missing = [name for name in SPLITS if name not in names]
        if missing:
            origin = f"{directory}[{names['train']}]"
            out.update(carve(out["train"][0], ["train"] + missing, self.params, origin))
        return out

    def _import_datasets(self) -> Any:
        try:
            return importlib.import_module("datasets")
        except ImportError:
            raise self.fail(
                "source 'hf-disk' needs the optional 'datasets' package, which is not "
                "installed; pip install datasets (or pip install 'taskgraph[datasets]'), "
                "or convert the data to JSONL and use source: jsonl"
            ) from None

    def _split_names(self, available: list[str], directory: str) -> dict[str, str]:
        """Our split name -> the DatasetDict's, for the splits it has (train is required)."""
        names: dict[str, str] = {}
        for ours in SPLITS:
            given = (self.params.splits or {}).get(ours)  # type: ignore[call-overload]
            if given is not None:
                if given not in available:
                    raise self.fail(f"data.splits.{ours}: {directory!r} has no split {given!r}; it has {available}")
                names[ours] = given
                continue
            found = [alias for alias in SPLIT_ALIASES[ours] if alias in available]
            if found:
                names[ours] = found[0]
        if "train" not in names:
            raise self.fail(
                f"{directory!r} has no train split (its splits are {available}); "
                f"name it with data.splits: {{train: <split>}}"
            )
        return names

    def _examples(self, dataset: Any, where: str) -> Examples:
        if self.text2text is not None:  # a generative task: whole rows (a template may read any column)
            rows = ((dict(row), f"row {i}") for i, row in enumerate(dataset))
            return rows_to_examples(
                rows, self.params, task=self.task, num_labels=self.num_labels, file=where, text2text=self.text2text
            )
        columns = list(dataset.column_names)
        for key, column in (("text", self.params.text), ("label", self.params.label)):
            if column not in columns:
                raise self.fail(f"{where}: no column {column!r} (data.{key}); its columns are {columns}")
        texts, labels = dataset[self.params.text], dataset[self.params.label]  # [N], [N]
        rows = (
            ({self.params.text: t, self.params.label: y}, f"row {i}") for i, (t, y) in enumerate(zip(texts, labels))
        )
        return rows_to_examples(
            rows, self.params, task=self.task, num_labels=self.num_labels, file=where, text2text=self.text2text
        )
