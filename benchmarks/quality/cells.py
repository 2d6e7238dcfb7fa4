"""The cells of ``python -m benchmarks quality``: one resumable folder per (router, lr, seed) and per adaptation.

Layout under ``OUT/<suite>/``::

    train/<router>/lr<lr>/seed<k>/            a taskgraph run dir (taskgraph.train.train) + eval.json
    adapt/<router>/lr<lr>/<mode>/shots<n>/seed<k>/<task>/   an adaptation run dir (taskgraph.adapt.adapt_run)
                                                            + cell.json

A training cell is **done** when its ``eval.json`` exists (the final model's validation, which
the training loop computes at the last step and ``train.json`` records, and ``evaluate_run`` on the
test split with gradient alignment; or the error that stopped it — a deterministic failure such as a diverging learning rate is
recorded, not retried; delete the folder to retry). Otherwise its run folder says what is left, as a sweep
cell's does (:mod:`taskgraph.sweep.resumable`, one implementation): it **resumes** from its newest
checkpoint, or **starts** afresh when it holds none, or is only **evaluated** when training
finished. A folder trained with another spec (another budget) is an error: nothing is overwritten.
An adaptation cell is done when its ``cell.json`` exists. Its folder names the learning rate of
the run it adapts (a wider lr grid may choose another rate, hence another run); a ``cell.json``
written with other adaptation steps is an error, like a training cell of another spec.
"""

from __future__ import annotations

import inspect
import json
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.quality.suites import HeldOutTask, QualityError
from benchmarks.quality.summary import mean_accuracy
from taskgraph.atomic import write_text
from taskgraph.errors import TaskgraphError
from taskgraph.sweep import FINISHED, RESUME, TRAIN_SUMMARY, continue_run, read_record, run_state

EVAL, ADAPT_RECORD, LOG, SPEC = "eval.json", "cell.json", "log.jsonl", "spec.yaml"
DONE = "done"  # the cell's own eval.json is there; below it, the run's states (run_state)


def lr_tag(lr: float) -> str:
    """A learning rate as a folder name: ``lr0.001``, ``lr0.003``, ``lr0.01``."""
    return f"lr{lr:g}"


def train_cell_dir(out: Path, suite: str, router: str, lr: float, seed: int) -> Path:
    return Path(out) / suite / "train" / router / lr_tag(lr) / f"seed{seed}"


def adapt_cell_dir(out: Path, suite: str, router: str, lr: float, mode: str, shots: int, seed: int, task: str) -> Path:
    return Path(out) / suite / "adapt" / router / lr_tag(lr) / mode / f"shots{shots}" / f"seed{seed}" / task


def train_cell_state(path: Path) -> str:
    """``done`` (eval.json), else where the cell's run stands: ``finished`` (only evaluate it), ``resume`` (a
    checkpoint) or ``fresh`` (:func:`taskgraph.sweep.resumable.run_state`)."""
    if read_record(path / EVAL) is not None:
        return DONE
    return run_state(path)


def step_ms(log_rows: Sequence[Mapping[str, Any]], batch_size: int) -> float | None:
    """Median milliseconds per training step from ``log.jsonl`` rows (``batch_size / examples_per_s``).

    A step logged twice (re-done after a resume) counts once, its last row.
    """
    last: dict[int, float] = {}
    for row in log_rows:
        rate, step = row.get("examples_per_s"), row.get("step")
        if row.get("split") == "train" and isinstance(step, int) and isinstance(rate, (int, float)) and rate > 0:
            last[step] = 1000.0 * batch_size / float(rate)
    return statistics.median(last.values()) if last else None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``log.jsonl`` (:func:`taskgraph.report.read_log`); none when it is absent or unreadable
    (the cell's step time is then unknown, nothing else)."""
    from taskgraph.report import read_log as read_run_log

    try:
        return read_run_log(path) if path.is_file() else []
    except TaskgraphError:
        return []


def _supported(fn: Callable[..., Any], **options: Any) -> dict[str, Any]:
    """The keyword arguments of ``options`` that ``fn`` accepts (the eval / adapt APIs grew options)."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in options.items() if k in params}


def evaluate_cell(run_dir: Path, split: str, device: str, alignment: bool) -> dict[str, Any]:
    """``evaluate_run`` of the final model on ``split`` (no timing; gradient alignment on request)."""
    from taskgraph.eval import evaluate_run

    return evaluate_run(
        run_dir,
        split=split,
        which="model",
        device=device,
        **_supported(evaluate_run, timing=False, alignment=alignment),
    )


def final_validation(summary: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The final model's validation from ``train.json`` (the loop validates it at the last step), shaped like
    ``evaluate_run``'s ``mean`` / ``tasks`` accuracy; None when the summary lacks it.

    The same model on the same split as ``evaluate_run(split="val")``: reading it back saves a second pass.
    """
    final = (summary or {}).get("final_val")
    if not isinstance(final, Mapping) or not isinstance(final.get("mean_acc"), (int, float)):
        return None
    tasks = final.get("acc") if isinstance(final.get("acc"), Mapping) else {}
    return {
        "split": "val",
        "source": "train.json final_val",
        "mean": {"accuracy": float(final["mean_acc"])},
        "tasks": {name: {"accuracy": acc} for name, acc in tasks.items()},
    }


def count_trainable(model: Any) -> dict[str, int]:
    """Trainable parameters per optimizer group and in all (``adapters``, ``router``, ``heads``, ``total``)."""
    groups = {name: sum(p.numel() for p in params) for name, params in model.parameter_groups().items()}
    return {**groups, "total": sum(groups.values())}


@dataclass(frozen=True)
class TrainCell:
    """One (router, lr, seed) training cell of a suite."""

    suite: str
    router: str
    lr: float
    seed: int
    path: Path

    @property
    def label(self) -> str:
        return f"[{self.suite}] train {self.router} lr={self.lr:g} seed {self.seed}"


def run_train_cell(
    cell: TrainCell, spec_dict: dict[str, Any], base_dir: Path, device: str, say: Callable[[str], None]
) -> tuple[dict[str, Any], bool]:
    """Train (or resume, or only evaluate) ``cell`` and write its ``eval.json``; ``(record, ran)``.

    ``ran`` is False when the cell was already done (its record is read back). A failure of the
    user-facing kind (TaskgraphError: a non-finite loss, unreadable data) is recorded as ``error``.
    """
    from taskgraph.spec import Spec, load_spec
    from taskgraph.train import spec_hash

    spec = Spec.model_validate(spec_dict)
    digest = spec_hash(spec)
    state = train_cell_state(cell.path)
    _check_same_spec(cell, digest, load_spec)
    if state == DONE:
        return read_record(cell.path / EVAL) or {}, False
    record: dict[str, Any] = {
        "router": cell.router,
        "lr": cell.lr,
        "seed": cell.seed,
        "spec_hash": digest,
        "val": None,
        "test": None,
        "error": None,
    }
    start = time.perf_counter()
    model = None
    try:
        if state != FINISHED:
            say(f"{cell.label}: " + ("resuming" if state == RESUME else f"training {spec.training.steps} steps"))
            model = continue_run(spec, cell.path, state, base_dir=base_dir, device=device).model
        record["train_run_seconds"] = time.perf_counter() - start
        say(f"{cell.label}: evaluating")
        tick = time.perf_counter()
        record["val"] = final_validation(read_record(cell.path / TRAIN_SUMMARY)) or evaluate_cell(
            cell.path, "val", device, alignment=False
        )
        record["test"] = evaluate_cell(cell.path, "test", device, alignment=True)
        record["eval_seconds"] = time.perf_counter() - tick
        if model is None:
            from taskgraph.model import TaskGraphModel

            model = TaskGraphModel.from_pretrained(cell.path / "model")
        record["trainable"] = count_trainable(model)
    except TaskgraphError as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        say(f"{cell.label}: failed: {record['error']}")
    summary = read_record(cell.path / TRAIN_SUMMARY) or {}
    record["train_seconds"] = summary.get("wall_time_s")
    record["step_ms"] = step_ms(read_log(cell.path / LOG), spec.training.batch_size)
    cell.path.mkdir(parents=True, exist_ok=True)
    write_text(cell.path / EVAL, json.dumps(record, indent=2) + "\n")
    if record["error"] is None:
        say(
            f"{cell.label}: val {mean_accuracy(record, 'val'):.3f}, test {mean_accuracy(record, 'test'):.3f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    return record, True


def _check_same_spec(cell: TrainCell, digest: str, load_spec: Callable[[Path], Any]) -> None:
    from taskgraph.train import spec_hash

    held = read_record(cell.path / EVAL)
    if held is not None and held.get("spec_hash") not in (None, digest):
        raise _other_spec(cell)
    if held is None and (cell.path / SPEC).is_file():
        try:
            same = spec_hash(load_spec(cell.path / SPEC)) == digest
        except TaskgraphError:
            same = False
        if not same:
            raise _other_spec(cell)


def _other_spec(cell: TrainCell) -> QualityError:
    return QualityError(
        f"{cell.label}: {str(cell.path)!r} holds a cell trained with another spec (another budget, "
        "config or code version); give a new --out, or delete that folder to train it again "
        "(nothing was changed)"
    )


@dataclass(frozen=True)
class AdaptCell:
    """One adaptation: a trained run, a held-out task, a mode, a shot count and a seed."""

    suite: str
    router: str
    lr: float
    mode: str
    shots: int
    seed: int
    task: HeldOutTask
    run_dir: Path
    path: Path

    @property
    def label(self) -> str:
        return f"[{self.suite}] adapt {self.router} {self.mode} shots {self.shots} seed {self.seed} {self.task.name}"


def run_adapt_cell(
    cell: AdaptCell, steps: int, base_dir: Path, device: str, say: Callable[[str], None]
) -> tuple[dict[str, Any], bool]:
    """Adapt ``cell.run_dir`` to the held-out task and write ``cell.json``; ``(record, ran)``."""
    held = read_record(cell.path / ADAPT_RECORD)
    if held is not None:
        if held.get("steps") not in (None, steps):
            raise QualityError(
                f"{cell.label}: {str(cell.path)!r} holds an adaptation of {held.get('steps')} steps, "
                f"not {steps}; give a new --out, or delete that folder to adapt again "
                "(nothing was changed)"
            )
        return held, False
    from taskgraph.adapt import adapt_run

    record: dict[str, Any] = {
        "router": cell.router,
        "lr": cell.lr,
        "mode": cell.mode,
        "shots": cell.shots,
        "seed": cell.seed,
        "task": cell.task.name,
        "family": cell.task.family,
        "steps": steps,
        "run": str(cell.run_dir),
        "relate": cell.task.relate if cell.mode == "zero-shot" else None,
        "test": None,
        "error": None,
    }
    say(cell.label)
    start = time.perf_counter()
    try:
        options = _supported(
            adapt_run,
            num_labels=cell.task.num_labels,
            relate=record["relate"],
            steps=steps,
            seed=cell.seed,
            device=device,
            base_dir=base_dir,
            family=cell.task.family,
            overwrite=True,
        )
        result = adapt_run(
            cell.run_dir,
            task=cell.task.name,
            data=dict(cell.task.data),
            shots=cell.shots,
            mode=cell.mode,
            out_dir=cell.path,
            **options,
        )
        record["test"] = dict(result.test)
        record["trainable"] = getattr(result, "trainable", None)
        record["adapt_seconds"] = getattr(result, "seconds", None)
    except TaskgraphError as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        say(f"{cell.label}: failed: {record['error']}")
    record["seconds"] = time.perf_counter() - start
    cell.path.mkdir(parents=True, exist_ok=True)
    write_text(cell.path / ADAPT_RECORD, json.dumps(record, indent=2) + "\n")
    return record, True
