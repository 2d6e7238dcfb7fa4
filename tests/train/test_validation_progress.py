"""Progress during a validation and an evaluation (:class:`~taskgraph.train.progress.BatchProgress`): at a zero interval
one line per forward pass, as many as the work takes and counted before it starts; none in a quick one."""

from __future__ import annotations

import io
import math

import pytest
import torch

from taskgraph.data import TaskData, tokenizer_pad_id
from taskgraph.eval.run_eval import score_split, split_batches
from taskgraph.model import TaskGraphModel
from taskgraph.model.rank_choices import choice_passes, choice_scores
from taskgraph.spec import spec_from_dict
from taskgraph.train.batches import load_task_data
from taskgraph.train.evaluate import evaluate
from taskgraph.train.evaluate_generative import generative_batches
from taskgraph.train.progress import BatchProgress
from tests.model.test_generative import PROMPTS, lm_spec, trained
from tests.train.test_generative_train import mixed_spec, write_data

BATCH = 4


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[TaskGraphModel, list[TaskData], int]:
    """A tiny GPT-2 with a free-text, a ``choices`` and a classification task, and their validation data."""
    folder = tmp_path_factory.mktemp("mixed")
    write_data(folder)
    spec = spec_from_dict(mixed_spec(folder))
    torch.manual_seed(0)
    model = TaskGraphModel(spec).eval()
    pad = tokenizer_pad_id(model.tokenizer)
    data = load_task_data(spec, folder, tokenizer=model.tokenizer, pad_id=pad, lm=model.lm_info())
    return model, data["val"], pad


def batches_of(model: TaskGraphModel, val: list[TaskData]) -> list[int]:
    return [generative_batches(model, t, BATCH) if t.targets is not None else math.ceil(len(t) / BATCH) for t in val]


def test_a_validation_reports_every_batch_it_counted(mixed: tuple[TaskGraphModel, list[TaskData], int]) -> None:
    model, val, pad = mixed
    per_task = batches_of(model, val)
    total = sum(per_task)
    stream = io.StringIO()
    progress = BatchProgress("validation", total, tasks=len(val), seconds=0.0, stream=stream)
    result = evaluate(model, val, pad_id=pad, batch_size=BATCH, progress=progress)
    lines = stream.getvalue().splitlines()
    assert [t.name for t in val] == ["sum", "rt-gen", "rt"] and per_task[1] > math.ceil(len(val[1]) / BATCH)
    assert len(lines) == total  # every forward pass, the rank-classification ones included, and no other
    for done, line in enumerate(lines, start=1):
        assert line.startswith(f"validation: batch {done}/{total} ({100 * done / total:.0f}%)  task ")
        assert "  elapsed 0:00:" in line and "  ETA 0:00:" in line
    assert "task sum (1/3)" in lines[0] and "task rt-gen (2/3)" in lines[per_task[0]]
    assert "task rt (3/3)" in lines[-1] and "(100%)" in lines[-1]
    quiet = io.StringIO()
    again = evaluate(
        model, val, pad_id=pad, batch_size=BATCH, progress=BatchProgress("validation", total, stream=quiet)
    )
    assert quiet.getvalue() == ""  # the default 10 s: a quick validation prints nothing
    assert again == result  # reporting changes no number


def test_off_silences_validation_progress(mixed, monkeypatch: pytest.MonkeyPatch) -> None:
    model, val, pad = mixed
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    stream = io.StringIO()
    evaluate(model, val, pad_id=pad, batch_size=BATCH, progress=BatchProgress("v", 9, seconds=0.0, stream=stream))
    assert stream.getvalue() == ""


def test_eval_scoring_reports_its_generation_and_choice_batches(mixed) -> None:
    model, val, pad = mixed
    for task in val:  # free text: generation batches; choices: rank-classification passes; classification: batches
        stream = io.StringIO()
        expected = split_batches(model, task, BATCH)
        progress = BatchProgress("eval test", expected, tasks=1, seconds=0.0, stream=stream)
        progress.task(task.name)
        score_split(model, task, pad_id=pad, batch_size=BATCH, progress=progress)
        assert progress.done == expected and stream.getvalue().splitlines()[-1].startswith(
            f"eval test: batch {expected}/{expected} (100%)  task {task.name} (1/1)"
        )


@pytest.mark.parametrize("family", ["gpt2", "t5"])
def test_choice_passes_counts_the_passes_choice_scores_takes(family: str) -> None:
    model = trained(lm_spec(family))
    choices = [[30, 1], [31, 32, 1], [33, 1]]
    for per_pass in (1, 4, 7, 256):
        progress = BatchProgress("scores", 1, stream=io.StringIO())
        choice_scores(model, 2, PROMPTS, choices, pairs_per_pass=per_pass, advance=progress.advance)
        assert progress.done == choice_passes(model, len(PROMPTS), len(choices), per_pass)


def test_a_line_waits_for_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("taskgraph.train.progress.time.perf_counter", lambda: now[0])
    stream = io.StringIO()
    progress = BatchProgress("validation", 10, tasks=2, seconds=10.0, stream=stream)
    progress.task("news")
    for _ in range(10):
        now[0] += 4.0  # a batch every 4 s: lines at 12 s, 24 s, 36 s
        progress.advance()
    assert stream.getvalue().splitlines() == [
        "validation: batch 3/10 (30%)  task news (1/2)  elapsed 0:00:12  ETA 0:00:28",
        "validation: batch 6/10 (60%)  task news (1/2)  elapsed 0:00:24  ETA 0:00:16",
        "validation: batch 9/10 (90%)  task news (1/2)  elapsed 0:00:36  ETA 0:00:04",
    ]


def test_repr() -> None:
    assert repr(BatchProgress("validation", 7, stream=io.StringIO())) == "BatchProgress('validation', 0/7, seconds=10)"
