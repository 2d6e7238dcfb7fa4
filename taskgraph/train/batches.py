"""Multi-task batches: every task's splits encoded once, a seeded task sampler, and the collator.

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
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from taskgraph.adapters.context import distinct_tasks
from taskgraph.data.base import build_source
from taskgraph.data.examples import Examples
from taskgraph.errors import CheckpointError, DataError, TaskgraphError
from taskgraph.model.predict import encode
from taskgraph.spec.models import Spec
from taskgraph.train.run_checkpoint import decode_state, encode_state
from taskgraph.train.text2text_data import LMInfo, TargetLayout, encode_targets, text2text_rows

SAMPLING_MODES = ("uniform", "proportional", "temperature")


# ----------------------------------------------------------------------------- encoded data
@dataclass(frozen=True, eq=False)
class TaskData:
    """One split of one task, encoded once: right-padded token ids, lengths, labels.

    Args:
        name: the task's name.
        task_id: its index in ``spec.tasks``.
        ids: ``[N, S]`` long token ids, right-padded with the pad id.
        lengths: ``[N]`` long, the real length of every row (>= 1).
        labels: ``[N]`` long labels in ``[0, num_labels)``.
        targets: a generative task's ``[N, T]`` target tokens with the end token, -100-padded; else None.
        layout: a generative task's ``"causal"`` / ``"seq2seq"`` (:mod:`taskgraph.train.text2text_data`); else None.
        choices: a ``choices`` task's choices as token ids (end token included), for rank classification; else None.
    """

    name: str
    task_id: int
    ids: Tensor
    lengths: Tensor
    labels: Tensor
    targets: Tensor | None = None
    layout: str | None = None
    choices: tuple[tuple[int, ...], ...] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def fingerprint(self) -> str:
        """sha256 of the ids, lengths, labels (and targets) (a resumed run checks its data did not change)."""
        digest = hashlib.sha256()
        for tensor in (self.ids, self.lengths, self.labels) + (() if self.targets is None else (self.targets,)):
            digest.update(str(tuple(tensor.shape)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return f"TaskData(name={self.name!r}, task_id={self.task_id}, n={len(self)}, width={self.ids.shape[1]})"


def encode_examples(
    examples: Examples,
    task_id: int,
    *,
    tokenizer: Any | None,
    max_length: int,
    pad_id: int,
    vocab_size: int | None = None,
    target: TargetLayout | None = None,
) -> TaskData:
    """Token ids of every example: the tokenizer's (truncated at ``max_length``) or the given ``token_ids``.

    A generative task's examples (``target``: its layout) keep the end of a long prompt and their targets
    (:mod:`taskgraph.train.text2text_data`).

    Raises:
        DataError: text data with no tokenizer, token ids longer than ``max_length`` or outside
            the vocabulary, or an empty sequence; a generative example without ``target`` or with a target
            longer than its task's ``max_new_tokens``.
    """
    if examples.generative != (target is not None):
        raise DataError(
            f"task {examples.task!r}: its examples {'carry' if examples.generative else 'lack'} targets "
            f"but the task is {'not ' if target is None else ''}generative here (objective and model disagree)"
        )
    if examples.token_ids is not None:
        sequences = [list(map(int, row)) for row in examples.token_ids]
        longest = max((len(s) for s in sequences), default=0)
        if longest > max_length:
            raise DataError(
                f"task {examples.task!r}: token_ids rows are up to {longest} tokens long but "
                f"model.max_length is {max_length}; raise model.max_length or shorten the rows"
            )
    else:
        if tokenizer is None:
            raise DataError(
                f"task {examples.task!r} has text data but the model has no tokenizer; give "
                f"model.tokenizer (a local directory or package: path) in the spec"
            )
        if target is not None:
            from taskgraph.model.lm_text import tokenize_prompts

            sequences = tokenize_prompts(tokenizer, examples.texts or [], max_length)
        else:
            sequences = encode(tokenizer, examples.texts or [], max_length)
    empty = [i for i, s in enumerate(sequences) if not s]
    if empty:
        raise DataError(f"task {examples.task!r}: example {empty[0]} encodes to no tokens; remove empty rows")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [N, S]
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)  # [N]
    if vocab_size is not None:
        top = max(max(s) for s in sequences)
        low = min(min(s) for s in sequences)
        if top >= vocab_size or low < 0:
            raise DataError(
                f"task {examples.task!r}: token id {top if top >= vocab_size else low} is outside "
                f"the model's vocabulary [0, {vocab_size}); the data and model.config disagree"
            )
    labels = torch.tensor(examples.labels, dtype=torch.long)  # [N]
    if target is None:
        return TaskData(examples.task, task_id, ids, lengths, labels)
    targets, choices = encode_targets(examples, target, tokenizer)  # [N, T]
    if vocab_size is not None and int(targets.max()) >= vocab_size:
        raise DataError(
            f"task {examples.task!r}: target token id {int(targets.max())} is outside the model's "
            f"vocabulary [0, {vocab_size}); the data and model.config disagree"
        )
    return TaskData(examples.task, task_id, ids, lengths, labels, targets, target.kind, choices)


def tokenizer_pad_id(tokenizer: Any | None) -> int:
    """The id batches are padded with: the tokenizer's pad id, else 0 (token-id data has no tokenizer)."""
    pad = getattr(tokenizer, "pad_token_id", None) if tokenizer is not None else None
    return int(pad) if pad is not None else 0


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

    ``lm`` (:meth:`LMInfo.of` the model) encodes the generative tasks' targets for the model's layout.

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


# ----------------------------------------------------------------------------- collation
@dataclass
class Batch:
    """A mixed-task batch, with its distinct tasks and example → task row computed once.

    Shapes:
        input_ids, attention_mask ``[B, S]``; labels, task_ids, inverse ``[B]``; tasks ``[U]``; targets (a batch with
        generative rows, :mod:`taskgraph.train.text2text_data`) ``[B, S]`` (causal) or ``[B, T]`` (seq2seq), else None.
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    task_ids: Tensor
    tasks: Tensor
    inverse: Tensor
    targets: Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.input_ids.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        """This batch on ``device``, but ``tasks`` (``[U]``) stays on the host: the model moves it for the router and
        reads its ids for the heads there, without waiting for the device."""
        moved = (
            None if t is None else t.to(device, non_blocking=True)
            for t in (self.input_ids, self.attention_mask, self.labels, self.task_ids)
        )
        return Batch(
            *moved,
            self.tasks,
            self.inverse.to(device, non_blocking=True),
            None if self.targets is None else self.targets.to(device, non_blocking=True),
        )

    def rows(self, part: slice) -> Batch:
        """Examples ``part`` of this batch, as wide as the whole batch, keeping the whole batch's distinct
        tasks (``inverse`` still points into them): one process's share of a data-parallel step."""
        return Batch(
            self.input_ids[part],
            self.attention_mask[part],
            self.labels[part],
            self.task_ids[part],
            self.tasks,
            self.inverse[part],
            None if self.targets is None else self.targets[part],
        )

    def task_names(self, names: Sequence[str]) -> list[str]:
        """The names of the distinct tasks of the batch."""
        return [names[int(t)] for t in self.tasks.tolist()]

    def __repr__(self) -> str:
        return f"Batch(size={self.size}, width={self.input_ids.shape[1]}, tasks={self.tasks.tolist()})"


def collate(items: Sequence[tuple[int, int]], data: Sequence[TaskData] | Mapping[int, TaskData], pad_id: int) -> Batch:
    """Stack ``(task id, row)`` pairs into a right-padded batch as wide as its longest row.

    ``data[t]`` is the :class:`TaskData` of task id ``t`` (a list in task order, or a dict).
    """
    task_ids = torch.tensor([t for t, _ in items], dtype=torch.long)  # [B]
    rows = torch.tensor([r for _, r in items], dtype=torch.long)  # [B]
    lengths = torch.empty(len(items), dtype=torch.long)  # [B]
    labels = torch.empty(len(items), dtype=torch.long)  # [B]
    tasks, inverse = distinct_tasks(task_ids)  # [U], [B]
    groups = [(data[t], (task_ids == t).nonzero().squeeze(1)) for t in tasks.tolist()]  # rows of each task
    for task_data, where in groups:
        lengths[where] = task_data.lengths[rows[where]]
        labels[where] = task_data.labels[rows[where]]
    if any(task_data.targets is not None for task_data, _ in groups):  # generative rows: laid out for the LM
        input_ids, attention_mask, target = text2text_rows(items, data, pad_id, tasks)
        return Batch(input_ids, attention_mask, labels, task_ids, tasks, inverse, target)
    width = int(lengths.max())
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # [B, S]
    for task_data, where in groups:
        cols = min(width, task_data.ids.shape[1])
        input_ids[where, :cols] = task_data.ids[rows[where], :cols]
    attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()  # [B, S]
    input_ids.masked_fill_(attention_mask == 0, pad_id)  # whatever a task padded with, the batch pads with pad_id
    return Batch(input_ids, attention_mask, labels, task_ids, tasks, inverse)


def task_batches(data: TaskData, batch_size: int, pad_id: int) -> Iterator[Batch]:
    """One task's examples in order, in batches of ``batch_size`` (for evaluation)."""
    for start in range(0, len(data), batch_size):
        rows = range(start, min(len(data), start + batch_size))
        yield collate([(data.task_id, r) for r in rows], {data.task_id: data}, pad_id)
