"""Every router's learning held against the committed record (see :mod:`tests.quality.guard`)."""

from __future__ import annotations

import json

import pytest

from benchmarks.numerics_paths import PLAINEST
from tests.quality.guard import (
    DTYPE,
    FIGURES,
    LR,
    RECORD,
    ROUTERS,
    SEEDS,
    STEPS,
    TOLERANCE,
    UNIVERSE,
    departures,
    loss_curve,
    measure,
)


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text())


def test_the_record_describes_this_guard(record: dict):
    assert record["universe"] == {k: list(v) if isinstance(v, tuple) else v for k, v in UNIVERSE.items()}
    assert (record["steps"], record["seeds"], record["tolerance"]) == (STEPS, list(SEEDS), TOLERANCE)
    assert (record["lr"], record["dtype"]) == (LR, DTYPE)
    assert set(record["routers"]) == set(ROUTERS)
    assert record["history"] and all(h["why"] for h in record["history"])  # every pin says why


@pytest.mark.parametrize("router", ROUTERS)
def test_router_learns_as_recorded(router: str, record: dict):
    problems = departures(record["routers"][router], measure(router))
    assert not problems, (
        f"{router}'s learning moved beyond the record (tests/quality/guard_record.json): "
        + "; ".join(problems)
        + ". If the change is intended, run `python -m tests.quality.guard --write --why '...'` in the same commit."
    )


def test_the_figures_do_not_depend_on_the_cpus_kernels():
    """The guard's premise (module docstring of :mod:`tests.quality.guard`): the record pinned on one CPU holds on
    another. This machine's own code paths (torch's AVX2 / AVX-512 kernels, MKL's and oneDNN's for its CPU) and the
    plainest ones (torch unvectorised, MKL's SSE2-compatible path, oneDNN at SSE4.1) sum in other orders, as two CPUs
    do; trained as the guard trains, the graph router — relations, task features, gates — follows one loss curve
    under both, to 1e-9 after 100 steps (float32 anywhere in training would leave 1e-7)."""
    native = loss_curve("graph", 0, 100)
    plain = loss_curve("graph", 0, 100, PLAINEST)
    assert len(native) == len(plain) == 100
    worst = max(abs(a - b) for a, b in zip(native, plain))
    assert worst <= 1e-9, f"the loss curves differ by {worst:.2e} between the two code paths"


def seeds(*pairs: tuple[float, float]) -> dict:
    """A measure() result of test accuracy and allocation precision per seed (means included)."""
    rows = {str(s): {"test_accuracy": a, "allocation_precision": p} for s, (a, p) in enumerate(pairs)}
    mean = {f: sum(r[f] for r in rows.values()) / len(rows) for f in FIGURES}
    return {"seeds": rows, "mean": mean}


def test_departures_hold_every_seed_and_show_both_figures_seed_by_seed():
    pinned = seeds((0.90, 0.60), (0.70, 0.50))
    assert departures(pinned, seeds((0.90, 0.60), (0.70 + 0.00625, 0.50))) == []  # one test row of 160
    [problem] = departures(pinned, seeds((0.93, 0.60), (0.67, 0.50)))  # the mean holds, two seeds moved
    assert problem.startswith("test_accuracy: seed 0, 1 moved beyond 0.01 — seed 0: 0.9000 -> 0.9300")
    assert "seed 1: 0.7000 -> 0.6700" in problem and problem.endswith("mean 0.8000 in the record, 0.8000 now")
    missing = departures(pinned, {"seeds": {"0": pinned["seeds"]["0"]}, "mean": pinned["mean"]})
    assert len(missing) == 2 and "seed 1: 0.7000 -> none" in missing[0]  # a seed that did not run moved, both figures
    assert set(FIGURES) == {"test_accuracy", "allocation_precision"}
