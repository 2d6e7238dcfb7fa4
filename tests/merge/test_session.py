"""``MergeSession``: the runs loaded once, each merge chosen on validation and scored on test in memory — the same
choice and figures as ``merge_runs`` of the same sources, method and values."""

from __future__ import annotations

import pytest

from taskgraph.eval import evaluate_run
from taskgraph.merge import MergeError, MergeSession, merge_runs


@pytest.fixture(scope="module")
def session(runs) -> MergeSession:
    return MergeSession(runs("single"))


def test_a_merge_chooses_and_scores_as_merge_runs_does(runs, session, tmp_path):
    tasks = ["planted-0", "planted-2"]
    params = {"lambda": "auto", "density": 0.5}
    outcome = session.merge(tasks, "ties", params)
    result = merge_runs(runs("single"), method="ties", tasks=tasks, params=params, out_dir=tmp_path / "m")
    assert outcome.chosen == result.chosen and outcome.chosen["density"] == 0.5
    assert outcome.grid == result.record["grid"] and len(outcome.grid) > 1  # every λ of the grid, scored on val
    assert outcome.val == result.record["val_accuracy"] and outcome.val_mean == result.record["val_mean"]
    assert outcome.rank == result.record["rank"]
    test = evaluate_run(tmp_path / "m", split="test", timing=False, alignment=False)
    assert outcome.test == {t: test["tasks"][t]["accuracy"] for t in tasks}
    assert outcome.test_rows == {t: test["tasks"][t]["n"] for t in tasks}
    assert set(outcome.as_dict()) == {"chosen", "val_mean", "val", "grid", "test", "test_rows", "rank"}


def test_heads_only_is_a_merge_that_adds_nothing(session):
    floor = session.heads_only()
    assert list(floor) == session.task_names == ["planted-0", "planted-1", "planted-2"]
    nothing = session.merge(["planted-1", "planted-0"], "task-arithmetic", {"lambda": 0.0})
    assert nothing.test == {"planted-1": floor["planted-1"], "planted-0": floor["planted-0"]}
    assert nothing.grid == [{"values": {"lambda": 0.0}, "val_accuracy": nothing.val, "val_mean": nothing.val_mean}]


@pytest.mark.parametrize("tasks", [["planted-0", "nope"], ["planted-0", "planted-0"], []])
def test_tasks_outside_the_session_are_refused(session, tasks):
    with pytest.raises(MergeError, match="give distinct tasks of the session"):
        session.merge(tasks, "average")


def test_the_validation_cap_scores_fewer_rows(runs):
    capped = MergeSession(runs("single")[:2], val_examples=5)
    assert all(len(data) == 5 for data in capped.val.values())
    assert all(len(data) > 5 for data in capped.test.values())
    assert repr(capped) == "MergeSession(runs=2, tasks=['planted-0', 'planted-1'])"
