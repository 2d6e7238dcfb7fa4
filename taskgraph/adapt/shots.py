"""The few-shot sample: N training examples of the new task, drawn class-stratified and seeded.

Stratified means as balanced as the data allows: the N shots are dealt to the labels one at a
time, round-robin in a seeded order of the labels, skipping a label once its examples run out; then
each label's rows are drawn without replacement. So label counts differ by at most one except
where a label has too few examples, and the same ``(labels, shots, seed)`` always gives the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from taskgraph.errors import DataError

SHOTS_STREAM = 0x5E07  # a fixed second word of the generator's seed: shots draw their own stream


def stratified_shots(
    labels: Sequence[int], shots: int, num_labels: int, seed: int, *, task: str = "the task"
) -> list[int]:
    """Row indices (ascending) of a seeded, class-stratified sample of ``shots`` rows.

    Args:
        labels: ``[N]`` the train split's labels, each in ``[0, num_labels)``.
        shots: how many rows to draw (at least one per label present, at most N).
        num_labels: C, the task's label count.
        seed: fixes the draw.
        task: the task's name, for messages.

    Raises:
        DataError: fewer than ``shots`` rows, or fewer shots than labels present.
    """
    y = np.asarray(list(labels), dtype=np.int64)  # [N]
    if shots < 1:
        raise DataError(f"{task}: --shots must be at least 1, got {shots}")
    if shots > y.shape[0]:
        raise DataError(
            f"{task}: --shots {shots} asks for more examples than its train split holds ({y.shape[0]}); "
            f"give --shots {y.shape[0]} or fewer"
        )
    rng = np.random.default_rng([seed, SHOTS_STREAM])
    rows = [np.flatnonzero(y == c) for c in range(num_labels)]  # C x [n_c]
    present = sum(1 for r in rows if len(r))
    if shots < present:
        raise DataError(
            f"{task}: --shots {shots} is fewer than the {present} labels of its train split; a "
            f"stratified sample needs one example of each label at least (give --shots {present} or more)"
        )
    quota = [0] * num_labels
    order = rng.permutation(num_labels).tolist()
    left = shots
    while left:
        for c in order:
            if left and quota[c] < len(rows[c]):
                quota[c] += 1
                left -= 1
    picked = [rng.choice(rows[c], size=quota[c], replace=False) for c in range(num_labels) if quota[c]]
    return sorted(int(i) for part in picked for i in part)


def label_counts(labels: Sequence[int], rows: Sequence[int], num_labels: int) -> list[int]:
    """How many of ``rows`` carry each label ``0 .. num_labels - 1``."""
    y = np.asarray(list(labels), dtype=np.int64)[np.asarray(list(rows), dtype=np.int64)]
    return np.bincount(y, minlength=num_labels).tolist()
