"""The planted benchmark's pure generators: the task × skill incidence, and the examples of one task.

Pure numpy functions of a seeded ``np.random.Generator``; the construction they follow (skill token sets, the
label as a count of first-half skills) is described in :mod:`taskgraph.data.planted`, whose
:class:`~taskgraph.data.planted.PlantedUniverse` calls them.
"""

from __future__ import annotations

import numpy as np

from taskgraph.errors import DataError


def sample_incidence(
    rng: np.random.Generator,
    skills: int,
    tasks: int,
    sizes: tuple[int, int],
    held_out: int,
    min_tasks_per_skill: int,
    tries: int = 1000,
) -> np.ndarray:
    """``[tasks, skills]`` bool: distinct skill sets of ``sizes[0]..sizes[1]`` skills each, such that
    every skill is used by ``min_tasks_per_skill`` of the first ``tasks - held_out`` (seen) tasks."""
    seen = tasks - held_out
    for _ in range(tries):
        chosen: set[tuple[int, ...]] = set()
        incidence = np.zeros((tasks, skills), dtype=bool)  # [T, S]
        t = 0
        while t < tasks:
            k = int(rng.integers(sizes[0], sizes[1] + 1))
            subset = tuple(sorted(rng.choice(skills, size=k, replace=False).tolist()))
            if subset not in chosen:
                chosen.add(subset)
                incidence[t, list(subset)] = True
                t += 1
        if incidence[:seen].sum(0).min() >= min_tasks_per_skill:
            return incidence
    raise DataError(
        f"planted: no task × skill incidence found in {tries} tries: {seen} seen tasks of "
        f"{sizes[0]}-{sizes[1]} skills rarely use each of {skills} skills {min_tasks_per_skill} "
        f"times; add tasks or lower min_tasks_per_skill"
    )


def plant_examples(
    rng: np.random.Generator, members: np.ndarray, skill_tokens: np.ndarray, filler: np.ndarray, n: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` examples of the task whose skills are ``members`` (the construction: :mod:`taskgraph.data.planted`).

    Returns:
        token ids ``[n, seq_len]`` int64; labels ``[n]`` int64, how many of ``members`` have
        their token in the first half (exactly balanced up to ``n mod (|members| + 1)``); and the
        skill bits ``[n, S]`` bool (skill ``s``'s token lies in the first half).
    """
    S, m = skill_tokens.shape
    k = len(members)
    half = seq_len // 2
    labels = np.arange(n) % (k + 1)  # [n]
    rng.shuffle(labels)
    bits = rng.random((n, S)) < 0.5  # [n, S] skills outside the task: either half, evenly
    rank = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)  # [n, k] a random order of members
    bits[:, members] = rank < labels[:, None]  # the first y members (in that order) go to the first half
    first = np.argsort(rng.random((n, half)), axis=1)  # [n, half] free positions of the first half, shuffled
    second = half + np.argsort(rng.random((n, seq_len - half)), axis=1)  # [n, L - half] and of the second
    nth = np.where(bits, np.cumsum(bits, axis=1), np.cumsum(~bits, axis=1)) - 1  # [n, S] slot in its half
    pos = np.where(
        bits,
        np.take_along_axis(first, np.minimum(nth, half - 1), axis=1),
        np.take_along_axis(second, np.minimum(nth, seq_len - half - 1), axis=1),
    )  # [n, S]
    ids = filler[rng.integers(len(filler), size=(n, seq_len))]  # [n, L]
    tok = skill_tokens[np.arange(S)[None, :], rng.integers(m, size=(n, S))]  # [n, S]
    np.put_along_axis(ids, pos, tok, axis=1)
    return ids.astype(np.int64), labels.astype(np.int64), bits
