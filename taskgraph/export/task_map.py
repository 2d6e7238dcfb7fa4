"""The task map of the HTML view: which relations are drawn, where each task goes, which community it is in.

Everything here is a pure, deterministic function of the relation weights ``R`` (no seed, no clock), so
one run always gives the same picture:

- :func:`relation_ranks` — a relation's rank is its place among the relations of the endpoint that ranks it
  higher (0 = the strongest relation of some task). Showing the relations of rank ``< k`` shows each task's
  ``k`` strongest relations, which keeps the picture sparse whatever the scale of the weights
  (:data:`DEFAULT_TOP_K`).
- :func:`communities` — networkx's greedy modularity communities of the weighted relation graph (every
  relation, not only the drawn ones), numbered by size, largest first.
- :func:`task_positions` — each community on its own by stress majorization (Gansner, Koren & North,
  *Graph drawing by stress majorization*, 2004) of the graph distances over its relations, an edge being
  shorter the stronger it is (length ``2 − w̃`` with ``w̃`` the weight rescaled to [0, 1] over all
  relations), started from classical MDS; then the communities as discs, placed the same way on how much
  they relate to each other and pushed apart where they overlap. A community above
  :data:`STRESS_LIMIT` tasks (the dense distances cost too much) gets networkx's sparse spectral layout.

A relation is ``(a, b, weight)`` with task indices ``a != b`` and a weight in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from scipy.spatial.distance import cdist

Relation = tuple[int, int, float]

DEFAULT_TOP_K = 3  # relations shown per task when the page opens
STRESS_LIMIT = 3000  # a community larger than this: spectral layout instead of stress majorization
NODE_ROOM = 0.6  # edge-length units around a community's outermost task
GROUP_GAP = 1.0  # edge-length units between two communities' discs, at least
OVERLAP_PASSES = 200
STRESS_ITERATIONS = 50
STRESS_TOLERANCE = 1e-4  # stop when no task moves by more than this fraction of the drawing


def relation_ranks(num_tasks: int, relations: Sequence[Relation]) -> list[int]:
    """For each relation, its rank at the endpoint that ranks it higher (0 = some task's strongest).

    Ties are broken by the other task's index, so the ranks are deterministic.
    """
    per_task: list[list[tuple[float, int, int]]] = [[] for _ in range(num_tasks)]
    for e, (a, b, w) in enumerate(relations):
        per_task[a].append((-w, b, e))
        per_task[b].append((-w, a, e))
    ranks = [num_tasks] * len(relations)
    for entries in per_task:
        for place, (_, _, e) in enumerate(sorted(entries)):
            ranks[e] = min(ranks[e], place)
    return ranks


def default_top_k(num_tasks: int) -> int:
    """Relations shown per task when the page opens: :data:`DEFAULT_TOP_K`, at most ``T − 1``."""
    return max(0, min(DEFAULT_TOP_K, num_tasks - 1))


def communities(num_tasks: int, relations: Sequence[Relation]) -> list[int]:
    """The community of every task: greedy modularity on the weighted relation graph, 0 = the largest.

    Tasks without any relation (or with only zero weights) are communities of their own.
    """
    graph = nx.Graph()
    graph.add_nodes_from(range(num_tasks))
    graph.add_weighted_edges_from((a, b, w) for a, b, w in relations if w > 0)
    if graph.number_of_edges() == 0:
        return list(range(num_tasks))
    found = nx.community.greedy_modularity_communities(graph, weight="weight")
    ordered = sorted((sorted(c) for c in found), key=lambda c: (-len(c), c[0]))
    label = [0] * num_tasks
    for number, members in enumerate(ordered):
        for t in members:
            label[t] = number
    return label


def task_positions(num_tasks: int, relations: Sequence[Relation], community: Sequence[int]) -> np.ndarray:
    """Positions ``[T, 2]`` in the unit square (equal scale on both axes, centred), y growing downwards.

    Each community is laid out on its own (:func:`_local_layout`), then the communities are placed as
    discs, nearer the more they relate (:func:`_place_groups`).

    Args:
        num_tasks: T.
        relations: ``(a, b, weight)`` with task indices.
        community: :func:`communities` of the tasks.
    """
    if num_tasks == 1:
        return np.full((1, 2), 0.5)
    if not relations:
        return _grid(num_tasks)
    weights = np.array([w for _, _, w in relations])
    lo, hi = float(weights.min()), float(weights.max())
    groups: list[list[int]] = [[] for _ in range(max(community) + 1)]
    for t, c in enumerate(community):
        groups[c].append(t)
    inside: list[list[tuple[int, int, float]]] = [[] for _ in groups]
    between = np.zeros((len(groups), len(groups)))  # [C, C] summed relation weight
    for a, b, w in relations:
        ca, cb = community[a], community[b]
        if ca == cb:
            inside[ca].append((a, b, 2.0 - ((w - lo) / (hi - lo) if hi > lo else 1.0)))  # length in [1, 2]
        else:
            between[ca, cb] += w
            between[cb, ca] += w
    local = [_local_layout(members, edges) for members, edges in zip(groups, inside, strict=True)]
    centres = _place_groups(local, between, [len(m) for m in groups])
    x = np.zeros((num_tasks, 2))
    for members, coords, centre in zip(groups, local, centres, strict=True):
        x[members] = coords + centre
    return _fit_unit_square(x)


def _local_layout(members: list[int], edges: list[tuple[int, int, float]]) -> np.ndarray:
    """One community's tasks ``[n, 2]``, centred, in edge-length units: stress majorization of its relations."""
    n = len(members)
    if n == 1:
        return np.zeros((1, 2))
    where = {t: i for i, t in enumerate(members)}
    if n > STRESS_LIMIT:
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_weighted_edges_from((where[a], where[b], 1.0 / length) for a, b, length in edges)
        raw = nx.spectral_layout(graph, weight="weight")
        x = np.array([raw[i] for i in range(n)], dtype=float)
        return (x - x.mean(axis=0)) * np.sqrt(n) / max(float(np.abs(x).max()), 1e-12)
    rows = [where[a] for a, _, _ in edges]
    cols = [where[b] for _, b, _ in edges]
    adjacency = coo_matrix(([length for _, _, length in edges], (rows, cols)), shape=(n, n)).tocsr()
    dist = shortest_path(adjacency, directed=False)  # [n, n]
    finite = np.isfinite(dist) & (dist > 0)
    dist[~np.isfinite(dist)] = dist[finite].max() + 1.0 if finite.any() else 1.0
    if n == 2:
        return np.array([[-0.5, 0.0], [0.5, 0.0]]) * dist[0, 1]
    x = _stress_majorization(dist)
    return x - x.mean(axis=0)


def _place_groups(local: list[np.ndarray], between: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Centres ``[C, 2]`` of the communities as non-overlapping discs; related communities sit nearer.

    The wanted distance of two discs is their radii plus a gap of :data:`GROUP_GAP` to 3 × that, less the
    more the two relate (summed relation weight over ``sqrt(n_g n_h)``, rescaled to [0, 1]); stress
    majorization places them, then overlapping discs are pushed apart.
    """
    count = len(local)
    radius = np.array([float(np.linalg.norm(x, axis=1).max()) + NODE_ROOM for x in local])  # [C]
    if count == 1:
        return np.zeros((1, 2))
    scale = np.sqrt(np.outer(sizes, sizes))  # [C, C]
    affinity = between / scale
    if affinity.max() > 0:
        affinity = affinity / affinity.max()
    want = radius[:, None] + radius[None, :] + GROUP_GAP * (1.0 + 2.0 * (1.0 - affinity))  # [C, C]
    np.fill_diagonal(want, 0.0)
    if count == 2:
        centres = np.array([[-0.5, 0.0], [0.5, 0.0]]) * want[0, 1]
    else:
        centres = _stress_majorization(want)
    off = ~np.eye(count, dtype=bool)
    for _ in range(OVERLAP_PASSES):
        delta = centres[:, None, :] - centres[None, :, :]  # [C, C, 2]
        gap = np.linalg.norm(delta, axis=-1)  # [C, C]
        need = radius[:, None] + radius[None, :] + GROUP_GAP
        over = np.where(off & (gap < need), need - gap, 0.0)  # [C, C]
        if not over.any():
            break
        direction = delta / np.maximum(gap, 1e-9)[..., None]
        centres = centres + 0.5 * (over[..., None] * direction).sum(axis=1)
    return centres


def _classical_mds(dist: np.ndarray) -> np.ndarray:
    """Classical (Torgerson) MDS: the top-2 eigenvectors of the double-centred squared distances."""
    n = dist.shape[0]
    sq = dist**2  # [T, T]
    gram = -0.5 * (sq - sq.mean(axis=0) - sq.mean(axis=1)[:, None] + sq.mean())  # [T, T]
    values, vectors = eigh(gram, subset_by_index=[n - 2, n - 1])  # ascending: [2], [T, 2]
    return vectors[:, ::-1] * np.sqrt(np.clip(values[::-1], 0.0, None))  # [T, 2]


def _stress_majorization(dist: np.ndarray) -> np.ndarray:
    """Minimise Σ d⁻² (‖x_i − x_j‖ − d)² by Guttman transforms, from classical MDS: ``[T, T] -> [T, 2]``.

    Each transform solves ``L_w x = L_Z(x) x``; ``L_w`` (the weighted Laplacian) is singular along
    translations, so task 0 is pinned at the origin and the rest inverted once (Cholesky).
    """
    n = dist.shape[0]
    off = ~np.eye(n, dtype=bool)
    weight = np.zeros_like(dist)
    weight[off] = dist[off] ** -2.0  # [T, T]
    laplacian = np.diag(weight.sum(axis=1)) - weight  # [T, T]
    inverse = cho_solve(cho_factor(laplacian[1:, 1:]), np.eye(n - 1))  # [T-1, T-1]; positive definite: all d > 0
    x = _classical_mds(dist)  # [T, 2]
    x = x - x[0] + 1e-6 * np.arange(2 * n, dtype=float).reshape(n, 2)  # break coincidences, deterministically
    pull = weight * dist  # [T, T]
    for _ in range(STRESS_ITERATIONS):
        gap = cdist(x, x)  # [T, T]
        np.fill_diagonal(gap, 1.0)
        ratio = pull / np.maximum(gap, 1e-12)  # [T, T], zero on the diagonal
        rhs = ratio.sum(axis=1)[:, None] * x - ratio @ x  # [T, 2] = L_Z(x) x
        moved = np.vstack([np.zeros((1, 2)), inverse @ rhs[1:]])  # [T, 2]
        step = float(np.abs(moved - x).max())
        x = moved
        if step < STRESS_TOLERANCE * float(np.abs(x).max()):
            break
    return x


def _fit_unit_square(x: np.ndarray) -> np.ndarray:
    """Rotate to principal axes (wider axis across), fix the signs, centre in [0, 1]² at one scale."""
    x = x - x.mean(axis=0)
    _, _, axes = np.linalg.svd(x, full_matrices=False)
    x = x @ axes.T  # [T, 2], first axis = the widest spread
    skew = (x**3).sum(axis=0)
    x = x * np.where(skew < 0, -1.0, 1.0)  # a mirror image is the same layout: pick one
    span = float(np.abs(x).max())
    if span < 1e-12:
        return np.full_like(x, 0.5)
    return 0.5 + 0.5 * x / span


def _grid(num_tasks: int) -> np.ndarray:
    """Tasks without relations: a grid in task order, wider than high."""
    cols = int(np.ceil(np.sqrt(num_tasks * 1.6)))
    rows = int(np.ceil(num_tasks / cols))
    at = np.array([(i % cols, i // cols) for i in range(num_tasks)], dtype=float)
    return np.stack([(at[:, 0] + 0.5) / cols, (at[:, 1] + 0.5) / max(rows, cols)], axis=1)
