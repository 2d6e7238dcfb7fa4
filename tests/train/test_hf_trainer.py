"""TaskGraphTrainer: a ``transformers.Trainer`` taking ``taskgraph train``'s steps on the tiny three-task BERT of
conftest.py (CPU, dropout on): the same per-step losses and weights for the poly and the graph router, a run folder
``taskgraph eval`` reads, taskgraph-format checkpoints a resumed Trainer continues from exactly, the sampler's order,
and the guide's block run as written."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from transformers import TrainingArguments

from taskgraph.cli import main
from taskgraph.data import TaskData, collate
from taskgraph.model import TaskGraphModel
from taskgraph.run_folder import read_marker
from taskgraph.run_records import read_log
from taskgraph.spec import Spec, load_spec
from taskgraph.spec.models import TrainingSpec
from taskgraph.train import TaskGraphTrainer, TrainerInputs, train, trainer_inputs
from taskgraph.train.batches import MultiTaskSampler
from taskgraph.train.hf_trainer import TaskCollator, TaskExamples, TaskGraphSampler
from tests.train.conftest import spec_dict, weights

ROOT = Path(__file__).resolve().parents[2]
STEPS = 20
TOLERANCE = 1e-4  # the target: the Trainer's loss curve within 1e-4 of taskgraph train's (on the CPU it is exact)
ROUTERS: dict[str, dict[str, Any]] = {
    "poly": {"kind": "poly"},
    "graph": {"kind": "graph"},
}


@dataclass(frozen=True)
class Pair:
    """One spec trained twice: by ``taskgraph train`` into ``reference``, by the Trainer into ``run`` (save_run)."""

    router: str
    folder: Path
    spec: Spec
    reference: Path
    trainer: TaskGraphTrainer
    run: Path


def write_spec(folder: Path, router: str, name: str = "spec.yaml") -> Path:
    spec = spec_dict(folder, steps=STEPS, eval_every=STEPS, checkpoint_every=STEPS)
    spec["router"] = ROUTERS[router]
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def arguments(out: Path, inputs: TrainerInputs, **extra: Any) -> TrainingArguments:
    """The test's Trainer: a log line every step, no logger, the CPU, the spec's steps."""
    fields: dict[str, Any] = {**inputs.training_arguments(), "save_strategy": "no", **extra}
    return TrainingArguments(
        str(out), logging_steps=1, report_to=[], disable_tqdm=True, use_cpu=True, log_level="warning", **fields
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=list(ROUTERS))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp(request.param)
    spec = load_spec(write_spec(folder, request.param))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(spec, folder / "run", base_dir=folder, threads=1)
        inputs = trainer_inputs(spec, base_dir=folder)
        trainer = TaskGraphTrainer(inputs, arguments(folder / "hf", inputs))
        trainer.train()
        run = trainer.save_run(folder / "hf-run")
        yield Pair(request.param, folder, spec, folder / "run", trainer, run)
    finally:
        torch.set_num_threads(before)


def train_rows(run: Path) -> list[dict[str, Any]]:
    return [row for row in read_log(run / "log.jsonl") if row["split"] == "train"]


def test_every_step_loss_is_taskgraph_trains(pair: Pair) -> None:
    reference, history = train_rows(pair.reference), pair.trainer.history
    assert [r["step"] for r in history] == [r["step"] for r in reference] == list(range(1, STEPS + 1))
    for ours, theirs in zip(history, reference):
        for key in ("loss", "task_loss", "reg_loss"):
            assert abs(ours[key] - theirs[key]) <= TOLERANCE, (ours["step"], key, ours[key], theirs[key])
        assert ours["lr_adapters"] == pytest.approx(theirs["lr_adapters"], rel=1e-12)  # warm-up + cosine
    logged = [entry["loss"] for entry in pair.trainer.state.log_history if "loss" in entry]  # the Trainer's own log
    assert len(logged) == STEPS
    assert max(abs(a - r["loss"]) for a, r in zip(logged, reference)) <= TOLERANCE
    if pair.router == "graph":  # the regularizer is in the loss the Trainer minimises
        assert min(r["reg_loss"] for r in history) > 0
    assert train_rows(pair.run) == history  # save_run's log is the history


def test_the_trained_weights_are_taskgraph_trains(pair: Pair) -> None:
    ours, theirs = weights(pair.run / "model"), weights(pair.reference / "model")
    assert sorted(ours) == sorted(theirs)
    worst = max(float((ours[k].double() - theirs[k].double()).abs().max()) for k in ours)  # masks are bool
    assert worst <= 1e-5, worst


def test_taskgraph_eval_reads_the_trainers_run(pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval.json"
    argv = ["eval", str(pair.run), "--split", "val", "--json", str(out), "--no-timing", "--no-alignment"]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    reference = json.loads((pair.reference / "train.json").read_text())["final_val"]
    assert {task: scores["accuracy"] for task, scores in result["tasks"].items()} == reference["acc"]
    summary = json.loads((pair.run / "train.json").read_text())
    assert summary["final_val"] == reference and summary["completed"] and summary["steps"] == STEPS
    assert summary["base_dir"] == str(pair.folder.resolve()) and summary["trainer"] == "transformers.Trainer"
    assert summary["best_val"] is None and read_marker(pair.run)["kind"] == "train"
    assert TaskGraphModel.from_pretrained(pair.run / "model").spec == pair.spec


def test_the_trainers_evaluate_gives_taskgraphs_validation_loss(pair: Pair) -> None:
    """``Trainer.evaluate`` on the val split (mixed-task batches of 8) is the task loss taskgraph's validation
    computes (one task a batch): the mean cross-entropy over the examples, no regularizer."""
    metrics = pair.trainer.evaluate()
    reference = json.loads((pair.reference / "train.json").read_text())["final_val"]
    assert metrics["eval_loss"] == pytest.approx(reference["loss"], abs=1e-5)


@pytest.mark.parametrize("pair", ["poly"], indirect=True)
def test_a_resumed_trainer_takes_the_same_steps(pair: Pair, one_thread: None) -> None:
    """``max_steps`` 10 (named in a warning: the schedule still spans the spec's 20, as ``--max-steps`` does), a
    taskgraph-format ``checkpoint-10``, then a new Trainer resumed from it: steps 11–20 are the reference's."""
    first = trainer_inputs(pair.spec, base_dir=pair.folder)
    with pytest.warns(UserWarning, match=r"max_steps = 10 \(taskgraph train: 20\)"):
        stopped = TaskGraphTrainer(
            first, arguments(pair.folder / "stop", first, save_strategy="steps", save_steps=10, max_steps=10)
        )
    stopped.train()
    checkpoint = pair.folder / "stop" / "checkpoint-10"
    assert (checkpoint / "manifest.json").is_file()  # taskgraph's checkpoint format, not a state-dict dump
    TaskGraphModel.from_pretrained(checkpoint)
    again = trainer_inputs(pair.spec, base_dir=pair.folder)
    resumed = TaskGraphTrainer(again, arguments(pair.folder / "stop", again))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    reference = train_rows(pair.reference)
    assert [r["step"] for r in resumed.history] == list(range(11, STEPS + 1))
    assert max(abs(r["loss"] - reference[r["step"] - 1]["loss"]) for r in resumed.history) <= TOLERANCE
    assert [r["step"] for r in stopped.history] == list(range(1, 11))
    assert max(abs(r["loss"] - reference[r["step"] - 1]["loss"]) for r in stopped.history) <= TOLERANCE


def task_data(task_id: int, rows: int, width: int = 6) -> TaskData:
    lengths = torch.arange(rows) % (width - 1) + 1  # [N] 1 .. width-1
    ids = torch.arange(rows * width).reshape(rows, width) % 50 + 1  # [N, S]
    ids = ids.masked_fill(torch.arange(width)[None, :] >= lengths[:, None], 0)
    return TaskData(f"t{task_id}", task_id, ids, lengths, torch.arange(rows) % 2)


def test_the_sampler_yields_taskgraphs_draws_and_the_collator_its_batches() -> None:
    data = [task_data(0, 5), task_data(1, 3), task_data(2, 7)]
    examples = TaskExamples(data)
    training = TrainingSpec(steps=6, batch_size=4, sampling="proportional", seed=3)
    sampler = TaskGraphSampler(examples, training)
    drawn = [examples[i] for i in sampler]
    own = MultiTaskSampler([5, 3, 7], "proportional", 2.0, seed=3)
    expected = [pair for _ in range(2 * training.steps) for pair in own.sample(training.batch_size)]
    assert [(d.task_id, row) for d, row in drawn] == expected[: len(sampler)]
    sampler.set_epoch(1)  # the next epoch goes on where this one stopped
    assert [examples[i][0].task_id * 100 + examples[i][1] for i in sampler] == [t * 100 + r for t, r in expected[24:]]
    items = drawn[:4]
    inputs = TaskCollator(pad_id=0)(items)
    batch = collate([(d.task_id, row) for d, row in items], data, 0)
    assert inputs.keys() == {"input_ids", "attention_mask", "task_ids", "labels", "distinct"}
    for key in ("input_ids", "attention_mask", "task_ids", "labels"):
        assert torch.equal(inputs[key], getattr(batch, key)), key
    assert all(torch.equal(a, b) for a, b in zip(inputs["distinct"], (batch.tasks, batch.inverse)))


def test_a_trainer_argument_off_the_spec_is_named(pair: Pair) -> None:
    inputs = pair.trainer.inputs
    fields = {**inputs.training_arguments(), "per_device_train_batch_size": 8, "max_grad_norm": 0.5}
    args = TrainingArguments(str(pair.folder / "off"), report_to=[], use_cpu=True, **fields)
    with pytest.warns(UserWarning) as caught:
        TaskGraphTrainer(inputs, args)
    (message,) = [str(w.message) for w in caught if "differ from the spec" in str(w.message)]
    assert "per_device_train_batch_size = 8 (taskgraph train: 16)" in message
    assert "max_grad_norm = 0.5 (taskgraph train: 1.0)" in message
    with pytest.raises(ValueError, match=r"schedule 'cosine': choose from \['spec', 'args'\]"):
        TaskGraphTrainer(inputs, arguments(pair.folder / "off", inputs), schedule="cosine")  # type: ignore[arg-type]


def test_the_guide_block_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread: None) -> None:
    guide = (ROOT / "docs" / "guide" / "llm.md").read_text(encoding="utf-8")  # docs/guide/llm.md
    start = guide.index("## With the HF Trainer\n")
    section = guide[start:]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    write_spec(tmp_path, "poly", name="my-llm.yaml")  # the README's spec file, at toy size
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/guide/llm.md#with-the-hf-trainer", "exec"), {"__name__": "guide"})  # noqa: S102 - our docs
    run = tmp_path / "runs" / "my-llm"
    assert (run / "model" / "manifest.json").is_file() and read_marker(run)["kind"] == "train"
    assert len(train_rows(run)) == STEPS
    assert list((tmp_path / "runs" / "my-llm-hf").rglob("events.out.tfevents.*"))  # report_to: the user's logger
