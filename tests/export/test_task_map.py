"""The task map: relation ranks (top-k per task), communities and the deterministic layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from taskgraph.export.task_map import (
    DEFAULT_TOP_K,
    _stress_majorization,
    communities,
    default_top_k,
    relation_ranks,
    task_positions,
)


def two_cliques(size: int = 5, strong: float = 0.9, weak: float = 0.1) -> list[tuple[int, int, float]]:
    """Tasks 0..size-1 and size..2size-1 related strongly inside, one weak relation between."""
    inside = [
        (a, b, strong - 0.01 * (a + b) / size)
        for group in (range(size), range(size, 2 * size))
        for a, b in itertools.combinations(group, 2)
    ]
    return inside + [(0, size, weak)]


def test_ranks_keep_each_tasks_k_strongest():
    relations = [(0, 1, 0.9), (0, 2, 0.5), (0, 3, 0.1), (1, 2, 0.3), (2, 3, 0.2)]
    ranks = relation_ranks(4, relations)
    # 0-1 is the strongest of 0 and of 1; 0-2 second of 0 but first of 2; 0-3 third of 0 but second of 3 ...
    assert ranks == [0, 0, 1, 1, 0]
    for k in range(4):
        kept = [r for r, rank in zip(relations, ranks) if rank < k]
        for t in range(4):
            own = sorted((w for a, b, w in relations if t in (a, b)), reverse=True)
            assert sorted((w for a, b, w in kept if t in (a, b)), reverse=True)[:k] == own[:k]


def test_ties_are_broken_by_task_index():
    assert relation_ranks(3, [(0, 2, 0.5), (0, 1, 0.5)]) == [0, 0]  # task 1 and 2 see it first; task 0 sees 1 first
    assert relation_ranks(3, [(0, 2, 0.5), (0, 1, 0.5)]) == relation_ranks(3, [(0, 2, 0.5), (0, 1, 0.5)])


def test_default_top_k():
    assert default_top_k(20) == DEFAULT_TOP_K == 3
    assert (default_top_k(1), default_top_k(2)) == (0, 1)


def test_communities_find_the_two_cliques_largest_first():
    relations = two_cliques(5) + [(10, 11, 0.9), (11, 12, 0.9)]  # a third, smaller group
    label = communities(14, relations)  # task 13 has no relation
    assert label[:5] == [label[0]] * 5 and label[5:10] == [label[5]] * 5
    assert {label[0], label[5]} == {0, 1} and label[10:13] == [2, 2, 2]
    assert label[13] == 3  # alone
    assert communities(3, []) == [0, 1, 2]


def test_positions_separate_the_cliques_and_are_deterministic():
    relations = two_cliques(6)
    label = communities(12, relations)
    x = task_positions(12, relations, label)
    assert x.shape == (12, 2) and x.min() >= 0.0 and x.max() <= 1.0 + 1e-12
    np.testing.assert_array_equal(x, task_positions(12, relations, label))
    gap = np.linalg.norm(x[:, None] - x[None, :], axis=-1)  # [T, T]
    inside = [gap[a, b] for a, b in itertools.combinations(range(12), 2) if (a < 6) == (b < 6)]
    across = [gap[a, b] for a in range(6) for b in range(6, 12)]
    assert max(inside) < min(across)
    assert min(inside) > 0.02  # no two tasks on top of each other


def test_positions_without_relations_are_a_grid_and_one_task_is_centred():
    x = task_positions(7, [], list(range(7)))
    assert len({tuple(p) for p in x.round(6)}) == 7 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(task_positions(1, [], [0]), [[0.5, 0.5]])


def test_stress_majorization_recovers_a_square():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)
    dist = np.linalg.norm(square[:, None] - square[None, :], axis=-1)
    x = _stress_majorization(dist)
    got = np.linalg.norm(x[:, None] - x[None, :], axis=-1)
    np.testing.assert_allclose(got, dist, atol=1e-3)


@pytest.mark.parametrize("tasks", [2, 3])
def test_tiny_maps(tasks):
    relations = [(0, 1, 0.4)] if tasks == 2 else [(0, 1, 0.4), (1, 2, 0.6)]
    x = task_positions(tasks, relations, communities(tasks, relations))
    assert x.shape == (tasks, 2) and np.isfinite(x).all()
    assert len({tuple(p) for p in x.round(6)}) == tasks
