"""Choose a merge's hyper-parameters on the **validation** split (never on test).

Every point of the method's grid (:meth:`MergeParams.grid`: the product of the grids of the values given
as ``auto``) is merged and scored on every task's validation split; the point with the highest mean
accuracy over tasks wins, a tie going to the earlier point of the grid. Every point's scores are kept
for ``merge.json``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from taskgraph.data import TaskData
from taskgraph.merge.evaluate import MergedScorer
from taskgraph.merge.lowrank import LowRank
from taskgraph.merge.merging import merge_modules
from taskgraph.merge.method import MergeMethod
from taskgraph.merge.params import MergeParams
from taskgraph.merge.progress import SILENT, MergeProgress, clock, shown
from taskgraph.merge.sources import MergeSources


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
    sources: MergeSources,
    method: MergeMethod,
    params: MergeParams,
    scorer: MergedScorer,
    val: Sequence[TaskData],
    progress: MergeProgress = SILENT,
) -> tuple[int, list[GridPoint], dict[str, LowRank]]:
    """Score every grid point on ``val`` (task i's validation split at ``val[i]``). ``progress`` writes the first and
    last point's scores (``grid point k/N (values): val mean x; best y``), any point's a few seconds after its last
    line, and the modules merged and tasks scored within a long point.

    Returns:
        ``(index of the chosen point, every point, the chosen point's merged updates)``.
    """
    points: list[GridPoint] = []
    best, best_merged = -1, None
    grid = params.grid()
    started = time.perf_counter()
    for k, point in enumerate(grid, 1):
        values = params.values(point)
        progress.stage = f"grid point {k}/{len(grid)} ({shown(values)})"
        merged = merge_modules(sources, method, values, rank=params.rank, seed=params.draw_seed(), progress=progress)
        scorer.apply(merged)
        scores = []
        for index, data in enumerate(val):
            scores.append(scorer.score(data, index))
            progress.tick(f"scored {index + 1}/{len(val)} tasks on validation")
        accuracy = {t.name: s["accuracy"] for t, s in zip(sources.tasks, scores)}
        mean = sum(accuracy.values()) / len(accuracy)
        points.append(GridPoint(values, accuracy, mean))
        if best < 0 or mean > points[best].mean:
            best, best_merged = len(points) - 1, merged
        if k in (1, len(grid)) or progress.due():
            eta = (time.perf_counter() - started) / k * (len(grid) - k)
            progress.say(
                f"{progress.stage}: val mean {mean:.4f}; best {points[best].mean:.4f}  elapsed {progress.elapsed()}  "
                f"ETA {clock(eta)}"
            )
    progress.stage = ""
    assert best_merged is not None
    return best, points, best_merged
