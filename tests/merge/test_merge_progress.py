"""A merge says what it is doing (progress lines on stderr), runs on ``--threads`` / ``threads=``, and notes an exact
merge whose rank exploded — with what it costs and a ``--rank`` that keeps most of the update."""

from __future__ import annotations

import functools
import json
import re

import pytest
import torch
from torch.testing import assert_close

import taskgraph.merge.run as merge_run
from taskgraph.cli import main
from taskgraph.merge import LowRank, merge_runs
from taskgraph.merge.lowrank import singular_values
from taskgraph.merge.progress import MergeProgress
from taskgraph.merge.rank_growth import KEEP_SHARE, rank_for_share, rank_growth
from taskgraph.model import TaskGraphModel


def merge(*args: object) -> int:
    return main(["merge", *map(str, args)])


@pytest.fixture
def threads_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """torch's thread count while the merged model is built (a spy around ``build_merged_model``)."""
    seen: list[int] = []
    build = merge_run.build_merged_model

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(torch.get_num_threads())
        return build(*args, **kwargs)

    monkeypatch.setattr(merge_run, "build_merged_model", spy)
    return seen


def test_merge_prints_progress_and_runs_on_the_threads_given(runs, tmp_path, capsys, monkeypatch, threads_seen):
    monkeypatch.delenv("TASKGRAPH_PROGRESS", raising=False)
    before = torch.get_num_threads()
    out = tmp_path / "m"
    assert merge(runs("routed"), "--method", "ties", "--threads", "1", "--out", out) == 0
    assert threads_seen == [1] and torch.get_num_threads() == before  # the caller's count is back
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"merge: read 4 tasks of {runs('routed')} (a routed run, every task folded) in 0:00:")
    assert err[1] == "merge: choosing lambda, density on the validation split: 36 grid points"
    assert err[2].startswith("merge: grid point 1/36 (lambda=0.1 density=0.2): val mean ")
    assert any(line.startswith("merge: grid point 36/36 (lambda=3 density=1): val mean ") for line in err)
    record = json.loads((out / "merge.json").read_text())
    chosen = " ".join(f"{k}={v:g}" for k, v in record["chosen"].items())
    assert f"merge: chose {chosen} (val mean {record['val_mean']:.4f}); building the merged model" in "\n".join(err)
    assert err[-1] == f"merge: writing {out}" and len(err) < 10  # a quick merge prints a handful of lines


def test_a_long_stage_says_what_it_has_done_every_few_seconds(runs, capsys, monkeypatch):
    """With the interval at 0 every module merged and every task scored is a line (the real interval is a few s)."""
    monkeypatch.delenv("TASKGRAPH_PROGRESS", raising=False)
    monkeypatch.setattr(merge_run, "MergeProgress", functools.partial(MergeProgress, seconds=0.0))
    merge_runs([runs("routed")], method="task-arithmetic", params={"lambda_grid": [0.5, 1.0]})
    err = capsys.readouterr().err
    modules = len(TaskGraphModel.from_pretrained(runs("routed") / "model").adapted_names)
    for k in range(1, modules + 1):
        assert f"merge: grid point 2/2 (lambda=1): merged {k}/{modules} modules  elapsed " in err
    assert "merge: grid point 1/2 (lambda=0.5): scored 4/4 tasks on validation  elapsed " in err
    assert re.search(r"merge: grid point 1/2 \(lambda=0.5\): task 'planted-0': scored (\d+)/\1 examples", err)
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    merge_runs([runs("routed")], method="task-arithmetic", params={"lambda": 0.5})
    assert capsys.readouterr().err == ""


def test_api_threads_are_checked_before_anything_is_read(runs, tmp_path, capsys, threads_seen):
    from taskgraph.threads import ThreadsError

    with pytest.raises(ThreadsError, match="threads must be a whole number from 1 to 1024"):
        merge_runs([runs("routed")], method="average", threads=0, out_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists() and threads_seen == []
    merge_runs([runs("routed")], method="average", threads=2)
    assert threads_seen == [2]
    assert merge(runs("routed"), "--method", "average", "--threads", "0", "--out", tmp_path / "m") == 2
    assert "--threads" in capsys.readouterr().err


def test_an_exploded_exact_merge_is_noted_with_its_cost_and_a_rank_to_try(runs, tmp_path, capsys):
    out = tmp_path / "ties"
    assert merge(runs("routed"), "--method", "ties", "--lambda", "1", "--density", "0.2", "--out", out) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "merge.json").read_text())
    growth = record["rank_growth"]
    model = TaskGraphModel.from_pretrained(out / "model")
    widths = sum(layer.in_features + layer.out_features for _, layer in model.adapted)
    assert growth["rank"] == record["rank"] == model.spec.adapters.rank > 2 * growth["task_rank"] == 4
    assert growth["bytes"] == 4 * record["rank"] * widths and growth["task_bytes"] == 4 * 2 * widths
    assert growth["flops_per_token"] == 2 * record["rank"] * widths and growth["task_flops_per_token"] == 4 * widths
    assert growth["note"] in printed and f"note: the exact merge reached rank {record['rank']}" in growth["note"]
    assert f"--rank {growth['suggested_rank']} keeps" in growth["note"]
    # the suggested rank keeps the share it says of the exact update's energy, and one rank less does not
    exact = {
        name: LowRank(layer.A[0, 0].T.detach(), layer.B[0, 0].T.detach()) for name, layer in model.adapted
    }  # [R, d_in], [d_out, R]
    spectra = [singular_values(u) for u in exact.values()]
    total = sum(float((s**2).sum()) for s in spectra)
    kept = [sum(float((s[:k] ** 2).sum()) for s in spectra) / total for k in range(1, record["rank"] + 1)]
    k = growth["suggested_rank"]
    assert kept[k - 1] == pytest.approx(growth["kept_share"]) and kept[k - 1] >= KEEP_SHARE
    assert k == 1 or kept[k - 2] < KEEP_SHARE
    truncated = tmp_path / "ties-r"
    assert (
        merge(runs("routed"), "--method", "ties", "--lambda", "1", "--density", "0.2", "--rank", k, "--out", truncated)
        == 0
    )
    assert json.loads((truncated / "merge.json").read_text())["rank_growth"] is None  # a rank was given: no note
    assert "note:" not in capsys.readouterr().out


def test_a_merge_within_twice_a_tasks_rank_has_no_note(runs):
    result = merge_runs(
        [runs("routed")], method="task-arithmetic", tasks=["planted-0", "planted-1"], params={"lambda": 1}
    )
    assert result.record["rank"] == 4 and result.record["rank_growth"] is None  # two rank-2 tasks: rank 4 = 2 x 2


def test_rank_for_share_and_singular_values_are_exact():
    assert rank_for_share([torch.tensor([3.0, 2.0, 1.0]), torch.tensor([2.0])], 0.9) == (2, pytest.approx(17 / 18))
    assert rank_for_share([torch.tensor([3.0, 2.0, 1.0]), torch.tensor([2.0])], 0.7) == (1, pytest.approx(13 / 18))
    assert rank_for_share([torch.zeros(3)], 0.9) == (1, 1.0)
    gen = torch.Generator().manual_seed(0)
    update = LowRank(torch.randn(5, 7, generator=gen), torch.randn(6, 5, generator=gen))
    assert_close(singular_values(update), torch.linalg.svdvals(update.dense().double())[:5])  # the 6th is 0
    wide = LowRank(torch.randn(9, 4, generator=gen), torch.randn(3, 9, generator=gen))  # rank 9 > both dims
    assert_close(singular_values(wide), torch.linalg.svdvals(wide.dense().double()))
    growth = rank_growth({"m": update}, {"m": 2})  # rank 5 > 2 x 2
    assert growth is not None and (growth.rank, growth.task_rank, growth.bytes) == (5, 2, 4 * 5 * 13)
    assert rank_growth({"m": update}, {"m": 3}) is None  # 5 <= 2 x 3
