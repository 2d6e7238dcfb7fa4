"""``SideFeatures``: the graph router's task side features and their projection into the GNN (the math:
:mod:`taskgraph.routing.task_features`).

It holds the raw blocks ``values [N, F]`` (every task's description, examples and relations blocks, as computed)
and the learned projection ``P [d, F]``; its output is ``P · standardize(values)`` ``[N, d]``, the part of the task
node features that comes from what is known about each task. The description and examples blocks are filled by the
model (:func:`taskgraph.model.task_features.fill_task_features`, which runs the frozen base) before training; the
relations block is the declared relations' spectral embedding, computed here at construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from taskgraph.errors import ModelError
from taskgraph.routing.task_features import (
    block_sizes,
    extend_spectral,
    side_kinds,
    spectral_embedding,
    standardize_blocks,
)


class SideFeatures(nn.Module):
    """Side-feature blocks of ``N`` tasks (the first ``trained`` standardise them) and their projection to ``hidden``.

    Args:
        features: ``router.features`` (its side kinds are used, in :data:`~taskgraph.routing.task_features.SIDE_KINDS`
            order).
        num_tasks: N, every task (trained and attached).
        trained: the trained tasks, whose rows set each block's centre and scale.
        width: the base's hidden size D (the description and examples blocks).
        relation_dims: r, the relations block.
        hidden: d, the GNN's node size.
        declared: the declared relations ``(i, j, weight)`` by task id (the relations block; trained pairs only,
            attached tasks' rows are the weighted mean of their neighbours').

    Shapes:
        - **output:** ``[N, d]``.
    """

    def __init__(
        self,
        features: Sequence[str],
        num_tasks: int,
        trained: int,
        width: int,
        relation_dims: int,
        hidden: int,
        declared: Sequence[tuple[int, int, float]] = (),
    ) -> None:
        super().__init__()
        self.kinds = side_kinds(features)
        self.sizes = block_sizes(features, width, relation_dims)
        self.trained = trained
        self.register_buffer("values", torch.zeros(num_tasks, sum(self.sizes)))  # [N, F]
        self.project = nn.Linear(sum(self.sizes), hidden, bias=False)
        self._standard: tuple[tuple[object, ...], Tensor] | None = None  # see standard_values
        if "relations" in self.kinds:
            self._fill_relations(declared, relation_dims)

    def _fill_relations(self, declared: Sequence[tuple[int, int, float]], dims: int) -> None:
        t, n = self.trained, self.values.shape[0]
        weights = torch.zeros(t, t)  # [T, T]
        for a, b, w in declared:
            if a < t and b < t and a != b:
                weights[a, b] = weights[b, a] = float(w)
        rows = spectral_embedding(weights, dims)  # [T, r]
        block = torch.zeros(n, dims)  # [N, r]
        block[:t] = rows
        for g in range(t, n):  # attached tasks: their neighbours' mean
            relate = {(b if a == g else a): w for a, b, w in declared if g in (a, b) and min(a, b) < t}
            if relate:
                block[g] = extend_spectral(rows, relate)
        self.set_block("relations", block)

    def block(self, kind: str) -> Tensor:
        """The raw block ``kind`` ``[N, F_kind]``."""
        start = sum(self.sizes[: self.kinds.index(kind)])
        return self.values[:, start : start + self.sizes[self.kinds.index(kind)]]

    @torch.no_grad()
    def set_block(self, kind: str, rows: Tensor, tasks: Sequence[int] | None = None) -> None:
        """Write block ``kind`` of ``tasks`` (default: every task, ``rows [N, F_kind]``)."""
        if kind not in self.kinds:
            raise ModelError(f"router.features has no {kind!r} block; its side blocks are {self.kinds}")
        target = self.block(kind)
        index = list(range(target.shape[0])) if tasks is None else list(tasks)
        if rows.shape != (len(index), target.shape[1]):
            raise ModelError(
                f"side block {kind!r}: expected rows {(len(index), target.shape[1])}, got {tuple(rows.shape)}"
            )
        target[index] = rows.to(target)

    def forward(self) -> Tensor:
        return self.project(self.standard_values())  # [N, d]

    def standard_values(self) -> Tensor:
        """``standardize_blocks(values)`` ``[N, F]``, kept while the buffer is the same tensor at the same version (a
        fill, a load, a task appended or a device move changes it): the training step's forward reads it, not a
        recomputation of a constant every step."""
        key = (self.values, self.values._version, self.trained)
        cached = self._standard
        if cached is None or cached[0][0] is not key[0] or cached[0][1:] != key[1:]:
            with torch.no_grad():
                cached = self._standard = (key, standardize_blocks(self.values, self.trained, self.sizes))
        return cached[1]

    def raw_row(self, given: Mapping[str, Tensor], relate: Mapping[int, float] | None = None) -> Tensor:
        """A new task's raw row ``[F]``: each block from ``given`` (raw, as the trained rows), the relations block from
        its trained neighbours ``relate`` (their weighted mean), a block not known the trained rows' mean (so it
        standardises to 0)."""
        unknown = sorted(set(given) - set(self.kinds))
        if unknown:
            raise ModelError(f"side features {unknown} are not among router.features' side blocks {self.kinds}")
        near = {int(i): float(w) for i, w in (relate or {}).items() if int(i) < self.trained and float(w) > 0}
        parts = []
        for kind, size in zip(self.kinds, self.sizes):
            trained = self.block(kind)[: self.trained]  # [T, F_kind]
            if kind in given:
                part = given[kind].reshape(-1).to(trained)
                if part.numel() != size:
                    raise ModelError(f"side feature {kind!r}: expected {size} values, got {part.numel()}")
            elif kind == "relations" and near:
                part = extend_spectral(trained, near)
            else:
                part = trained.mean(0)
            parts.append(part)
        return torch.cat(parts)  # [F]

    def compare(self, given: Mapping[str, Tensor], kinds: Sequence[str]) -> tuple[Tensor, Tensor]:
        """The trained rows' and a new task's standardised blocks ``kinds``: ``([T, F'], [F'])`` (what relations
        computed from features compare)."""
        rows = torch.cat([self.values[: self.trained], self.raw_row(given)[None]])  # [T+1, F]
        parts = standardize_blocks(rows, self.trained, self.sizes).split(self.sizes, dim=1)
        table = torch.cat([parts[self.kinds.index(k)] for k in kinds], dim=1)  # [T+1, F']
        return table[: self.trained], table[self.trained]

    @torch.no_grad()
    def append(self, given: Mapping[str, Tensor], relate: Mapping[int, float]) -> None:
        """Add a task's row (:meth:`raw_row`)."""
        self.values = torch.cat([self.values, self.raw_row(given, relate)[None]])  # [N+1, F]

    def extra_repr(self) -> str:
        return f"blocks={dict(zip(self.kinds, self.sizes))}, tasks={self.values.shape[0]}, trained={self.trained}"
