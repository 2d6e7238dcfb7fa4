"""Training data: every task's splits read and encoded once, the train split's perturbations, a seeded task sampler.

:class:`~taskgraph.data.TaskData`, :class:`~taskgraph.data.Batch` and :func:`~taskgraph.data.collate` are
:mod:`taskgraph.data`'s.

The loop asks for one batch at a time::

    data = load_task_data(spec, base_dir, tokenizer=model.tokenizer, pad_id=0)       # once
    sampler = MultiTaskSampler([len(t) for t in data["train"]], "temperature", 2.0, seed=0)
    batch = collate(sampler.sample(16), data["train"], pad_id)                       # each step

Sampling. Each example of a batch first draws its task from ``p`` (:func:`sampling_probabilities`:
uniform ``p_t = 1/T``, proportional ``p_t ∝ n_t``, or temperature ``p_t ∝ n_t^(1/τ)``), then takes
the next row of that task's current epoch. A task's epoch is a permutation of its rows fixed by
``(seed, task, epoch)``, so every row is seen once per epoch and the sampler's whole state is its
``torch.Generator`` plus, per task, an epoch counter and a position (:meth:`~MultiTaskSampler.state_dict`).

Data sensitivity. ``training.train_examples`` keeps a class-stratified seeded subset of at most N
training rows per task (:func:`stratified_subset`), then ``training.label_noise`` replaces the labels
of ``round(share × n)`` of the kept rows by a uniformly drawn *other* label (:func:`noisy_labels`).
Both touch the train split only, are seeded by ``(training.seed, task name)``, and change the train
data's :meth:`TaskData.fingerprint`, so a run resumed with other values is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from taskgraph.data.base import build_source
from taskgraph.data.task_data import TaskData, encode_examples, tokenizer_pad_id
from taskgraph.data.text2text_encoding import LMInfo
from taskgraph.errors import CheckpointError, DataError, TaskgraphError
from taskgraph.spec.models import Spec
from taskgraph.train.run_checkpoint import decode_state, encode_state

if TYPE_CHECKING:
    from taskgraph.model import TaskGraphModel

SAMPLING_MODES = ("uniform", "proportional", "temperature")


# ----------------------------------------------------------------------------- loading
def load_task_data(
    spec: Spec,
    base_dir: str | Path,
    *,
    tokenizer: Any | None,
    pad_id: int,
    vocab_size: int | None = None,
    splits: Sequence[str] = ("train", "val"),
    problems: list[str] | None = None,
    skip: Collection[str] = (),
    lm: LMInfo | None = None,
) -> dict[str, list[TaskData]]:
    """Every task's ``splits``, read from its source once and encoded once, in ``spec.tasks`` order.

    ``lm`` (the model's :meth:`~taskgraph.model.TaskGraphModel.lm_info`) encodes the generative tasks' targets for the model's layout.

    With ``problems`` (a list), a task whose data fails is recorded there and the next task is read, so
    every task's problem is known at once (``taskgraph validate``); without it the first one raises.
    Tasks named in ``skip`` are not read.
    """
    out: dict[str, list[TaskData]] = {split: [] for split in splits}
    training = spec.training
    for task_id, task in enumerate(spec.tasks):
        if task.name in skip:
            continue
        try:
            source = build_source(task, base_dir)
            layout = None if lm is None else lm.for_task(task)
            if task.generative and layout is None:
                raise DataError(f"task {task.name!r} generates, but the model has no LM head to write with")
            for split in splits:
                examples = source.load(split)
                encoded = encode_examples(
                    examples,
                    task_id,
                    tokenizer=tokenizer,
                    pad_id=pad_id,
                    max_length=spec.model.max_length,
                    vocab_size=vocab_size,
                    target=layout,
                )
                if split == "train":
                    encoded = perturb_train(
                        encoded,
                        task.num_labels,
                        limit=training.train_examples,
                        noise=training.label_noise,
                        seed=training.seed,
                    )
                out[split].append(encoded)
        except TaskgraphError as exc:
            if problems is None:
                raise
            problems.append(f"tasks[{task_id}] ({task.name}): {exc}")
    return out


# ----------------------------------------------------------------------------- data sensitivity
def _derived_seed(purpose: str, seed: int, task: str) -> int:
    digest = hashlib.sha256(f"taskgraph-{purpose}:{seed}:{task}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def load_model_data(
    model: TaskGraphModel, spec: Spec, base_dir: str | Path, **options: Any
) -> dict[str, list[TaskData]]:
    """:func:`load_task_data` encoded for ``model``: its tokenizer, padding id, vocabulary size and language-model
    layout; ``options`` are load_task_data's others (``splits``, ``problems``, ``skip``)."""
    return load_task_data(
        spec,
        base_dir,
        tokenizer=model.tokenizer,
        pad_id=tokenizer_pad_id(model.tokenizer),
        vocab_size=model.base.get_input_embeddings().num_embeddings,
        lm=model.lm_info(),
        **options,
    )


def stratified_quotas(counts: Sequence[int], limit: int) -> list[int]:
    """Rows to keep per class: ``min(limit, n)`` in all, shared in proportion to ``counts`` (largest remainder).

    Class ``c`` gets ``floor(k · n_c / n)`` and the ``k − Σ floor`` rows left go one each to the classes
    with the largest remainders (ties: the lower class), so every quota lies within 1 of its exact share
    ``k · n_c / n`` and never exceeds ``n_c``.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    n = sum(counts)
    keep = min(limit, n)
    exact = [keep * c / n for c in counts] if n else [0.0] * len(counts)
    quotas = [math.floor(e) for e in exact]
    order = sorted(range(len(counts)), key=lambda c: (-(exact[c] - quotas[c]), c))
    for c in order[: keep - sum(quotas)]:
        quotas[c] += 1
    return quotas


def stratified_subset(labels: Tensor, limit: int, num_labels: int, generator: torch.Generator) -> Tensor:
    """``[k]`` sorted row indices of a class-stratified random subset of ``k = min(limit, N)`` rows.

    Args:
        labels: ``[N]`` long labels in ``[0, num_labels)``.
        limit: the most rows to keep.
        num_labels: the task's label count.
        generator: draws which rows of each class are kept.
    """
    counts = torch.bincount(labels, minlength=num_labels)  # [C]
    quotas = stratified_quotas(counts.tolist(), limit)
    kept = []
    for c, quota in enumerate(quotas):
        rows = (labels == c).nonzero().squeeze(1)  # [n_c]
        kept.append(rows[torch.randperm(rows.numel(), generator=generator)[:quota]])  # [quota]
    return torch.cat(kept).sort().values if kept else torch.empty(0, dtype=torch.long)  # [k]


def noisy_labels(labels: Tensor, num_labels: int, share: float, generator: torch.Generator) -> Tensor:
    """``[N]`` labels where ``round(share × N)`` random rows carry a uniformly drawn *different* label.

    A changed label is ``(y + o) mod C`` with ``o`` uniform in ``1 .. C−1``: uniform over the other
    ``C − 1`` labels, never ``y``. ``round`` is Python's (halves to even).
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"label noise must lie in [0, 1), got {share}")
    if num_labels < 2:
        raise ValueError(f"label noise needs at least 2 labels, got {num_labels}")
    n = labels.shape[0]
    changed = round(share * n)
    out = labels.clone()  # [N]
    rows = torch.randperm(n, generator=generator)[:changed]  # [m]
    offset = torch.randint(1, num_labels, (changed,), generator=generator)  # [m] in 1 .. C-1
    out[rows] = (labels[rows] + offset) % num_labels  # [m]
    return out


def perturb_train(data: TaskData, num_labels: int, *, limit: int | None, noise: float, seed: int) -> TaskData:
    """The training split as ``training.train_examples`` / ``label_noise`` ask: subset first, then noise.

    Seeded by ``(seed, task name)``; unchanged (the same object) when ``limit`` is None or not below
    the row count and ``noise`` is 0. The kept rows stay in their original order; ``ids`` is trimmed
    to the longest kept row.
    """
    ids, lengths, labels, targets = data.ids, data.lengths, data.labels, data.targets
    if limit is not None and limit < len(data):
        gen = torch.Generator().manual_seed(_derived_seed("subset", seed, data.name))
        rows = stratified_subset(labels, limit, num_labels, gen)  # [k]
        lengths, labels = lengths[rows], labels[rows]  # [k], [k]
        ids = ids[rows, : int(lengths.max())]  # [k, S']
        targets = None if targets is None else targets[rows]  # [k, T]
    if noise > 0 and data.targets is None:  # label noise flips class labels; a generative task's targets stay
        gen = torch.Generator().manual_seed(_derived_seed("label-noise", seed, data.name))
        labels = noisy_labels(labels, num_labels, noise, gen)  # [k]
    if ids is data.ids and labels is data.labels:
        return data
    return dataclasses.replace(data, ids=ids, lengths=lengths, labels=labels, targets=targets)


# ----------------------------------------------------------------------------- sampling
_WEIGHTS: dict[str, Callable[[Tensor, float], Tensor]] = {
    "uniform": lambda n, tau: torch.ones_like(n),
    "proportional": lambda n, tau: n,
    "temperature": lambda n, tau: n ** (1.0 / tau),
}


def sampling_probabilities(sizes: Sequence[int], mode: str, temperature: float = 1.0) -> Tensor:
    """``[T]`` float64 task probabilities: uniform ``1/T``, proportional ``n_t/Σn``, or ``∝ n_t^(1/τ)``.

    ``temperature`` τ = 1 is proportional; τ → ∞ tends to uniform.
    """
    if mode not in _WEIGHTS:
        raise ValueError(f"unknown sampling {mode!r}; choose from {list(SAMPLING_MODES)}")
    n = torch.tensor(list(sizes), dtype=torch.float64)  # [T]
    if n.numel() == 0 or bool((n <= 0).any()):
        raise ValueError(f"every task needs at least one training example, got sizes {list(sizes)}")
    weights = _WEIGHTS[mode](n, float(temperature))  # [T]
    return weights / weights.sum()


def _epoch_seed(seed: int, task: int, epoch: int) -> int:
    digest = hashlib.sha256(f"taskgraph-epoch:{seed}:{task}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class MultiTaskSampler:
    """Draws ``(task, row)`` pairs: the task from ``p`` (seeded), the row from the task's epoch order.

    Args:
        sizes: ``[T]`` training examples per task.
        mode: ``uniform`` | ``proportional`` | ``temperature``.
        temperature: τ for ``temperature`` sampling (``p ∝ n^(1/τ)``).
        seed: seeds the task draws and every epoch permutation.
    """

    def __init__(self, sizes: Sequence[int], mode: str, temperature: float, seed: int) -> None:
        self.sizes = [int(n) for n in sizes]
        self.mode = mode
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.probs = sampling_probabilities(self.sizes, mode, temperature)  # [T]
        self.generator = torch.Generator().manual_seed(self.seed)
        self.epoch = [0] * len(self.sizes)
        self.position = [0] * len(self.sizes)
        self._orders: dict[int, tuple[int, Tensor]] = {}  # task -> (epoch, permutation) cache

    def _order(self, task: int) -> Tensor:
        cached = self._orders.get(task)
        if cached is None or cached[0] != self.epoch[task]:
            gen = torch.Generator().manual_seed(_epoch_seed(self.seed, task, self.epoch[task]))
            cached = (self.epoch[task], torch.randperm(self.sizes[task], generator=gen))  # [n_t]
            self._orders[task] = cached
        return cached[1]

    def sample(self, batch_size: int) -> list[tuple[int, int]]:
        """``batch_size`` pairs ``(task id, row)``."""
        tasks = torch.multinomial(self.probs, batch_size, replacement=True, generator=self.generator)  # [B]
        out: list[tuple[int, int]] = []
        for task in tasks.tolist():
            if self.position[task] == self.sizes[task]:
                self.epoch[task] += 1
                self.position[task] = 0
            out.append((task, int(self._order(task)[self.position[task]])))
            self.position[task] += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-ready state: generator, per-task epoch and position, and what the sampler was built with."""
        return {
            "generator": encode_state(self.generator.get_state()),
            "epoch": list(self.epoch),
            "position": list(self.position),
            "sizes": list(self.sizes),
            "mode": self.mode,
            "temperature": self.temperature,
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; CheckpointError when it is malformed or was built for other data."""
        try:
            same = (
                list(state["sizes"]) == self.sizes
                and state["mode"] == self.mode
                and float(state["temperature"]) == self.temperature
                and int(state["seed"]) == self.seed
            )
            epoch, position = [int(e) for e in state["epoch"]], [int(p) for p in state["position"]]
            generator = decode_state(state["generator"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"the sampler state is malformed ({type(exc).__name__}: {exc})") from None
        if not same:
            raise CheckpointError(
                f"the sampler state was saved for task sizes {state.get('sizes')} "
                f"({state.get('mode')}), but the data now gives {self.sizes} ({self.mode}); "
                f"the training data changed since the checkpoint"
            )
        if (
            len(epoch) != len(self.sizes)
            or len(position) != len(self.sizes)
            or any(not 0 <= p <= n for p, n in zip(position, self.sizes))
        ):
            raise CheckpointError("the sampler state's epochs / positions do not fit the task sizes")
        try:
            self.generator.set_state(generator)
        except RuntimeError as exc:
            raise CheckpointError(f"the sampler's generator state is invalid ({exc})") from None
        self.epoch, self.position = epoch, position
        self._orders.clear()

    def __repr__(self) -> str:
        probs = ", ".join(f"{p:.3f}" for p in self.probs.tolist())
        return f"MultiTaskSampler(tasks={len(self.sizes)}, mode={self.mode!r}, probs=[{probs}], seed={self.seed})"
