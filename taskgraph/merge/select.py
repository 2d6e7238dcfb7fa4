"""Choose a merge's hyper-parameters on the **validation** split (never on test).

Every point of the method's grid (:meth:`MergeParams.grid`: the product of the grids of the values given
as ``auto``) is merged and scored on every task's validation split; the point with the highest mean
accuracy over tasks wins, a tie going to the earlier point of the grid. Every point's scores are kept
for ``merge.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from taskgraph.merge.evaluate import MergedScorer
from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.merging import merge_modules
from taskgraph.merge.method import MergeMethod
from taskgraph.merge.params import MergeParams
from taskgraph.merge.sources import MergeSources
from taskgraph.train.batches import TaskData


@dataclass
class GridPoint:
    """One hyper-parameter point and its validation scores.

    Args:
        values: the hyper-parameters (``lambda``, ``density``, ``p``, ...).
        accuracy: task name -> validation accuracy.
        mean: mean accuracy over tasks.
    """

    values: dict[str, float]
    accuracy: dict[str, float]
    mean: float

    def as_dict(self) -> dict[str, object]:
        return {"values": self.values, "val_accuracy": self.accuracy, "val_mean": self.mean}


def search(
    sources: MergeSources, method: MergeMethod, params: MergeParams, scorer: MergedScorer, val: Sequence[TaskData]
) -> tuple[int, list[GridPoint], dict[str, LowRank]]:
    """Score every grid point on ``val`` (task i's validation split at ``val[i]``).

    Returns:
        ``(index of the chosen point, every point, the chosen point's merged updates)``.
    """
    points: list[GridPoint] = []
    best, best_merged = -1, None
    for point in params.grid():
        values = params.values(point)
        merged = merge_modules(sources, method, values, rank=params.rank, seed=params.draw_seed())
        scorer.apply(merged)
        scores = scorer.score_all(val)
        accuracy = {t.name: s["accuracy"] for t, s in zip(sources.tasks, scores)}
        mean = sum(accuracy.values()) / len(accuracy)
        points.append(GridPoint(values, accuracy, mean))
        if best < 0 or mean > points[best].mean:
            best, best_merged = len(points) - 1, merged
    assert best_merged is not None
    return best, points, best_merged
