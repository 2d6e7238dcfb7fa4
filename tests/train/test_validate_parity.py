"""``taskgraph validate`` raises every error ``taskgraph train`` can raise before its first step — the same
message, because it runs the same checks (:mod:`taskgraph.train.preflight`) — and all of them at once."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from taskgraph.cli import main
from tests.train.conftest import spec_dict


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        *head, last = path.split(".")
        node = doc
        for key in head:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _bad_label_file(doc: dict, folder: Path) -> None:
    (folder / "bad.jsonl").write_text("\n".join(json.dumps({"text": "good film", "label": i % 7}) for i in range(40)))
    doc["tasks"][0]["data"]["path"] = "bad.jsonl"


CASES: dict[str, Callable[..., None]] = {
    "a config value of the wrong type": _set("model.config.hidden_size", "wide"),
    "attention heads that do not divide the hidden size": _set("model.config.num_attention_heads", 5),
    "max_length above the model's positions": _set("model.max_length", 64),
    "an invalid target-module regex": _set("model.target_modules", ["re:(query"]),
    "target modules that match nothing": _set("model.target_modules", ["nope"]),
    "adapter heads that do not divide a module": _set("adapters.splits", 3),
    "an unknown model type": _set("model.config.model_type", "bertish"),
    "a package path that is no package": lambda d: d["model"].update(path="package:os/x", config=None),
    "skills so many the memory does not fit": lambda d: d["adapters"].update(skills=200_000, rank=512),
    "a batch so large the memory does not fit": _set("training.batch_size", 5_000_000),
    "a missing data file": _set("tasks.1.data.path", "missing.jsonl"),
    "a label outside the task's labels": _bad_label_file,
    "text data without a tokenizer": lambda d: d["model"].pop("tokenizer"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_raises_what_train_raises_before_step_one(tmp_path, capsys, case):  # noqa: ANN001
    doc = spec_dict(tmp_path)
    change = CASES[case]
    change(doc, tmp_path) if change is _bad_label_file else change(doc)
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 2
    train_err = capsys.readouterr().err
    assert train_err.startswith("error: ") and "Traceback" not in train_err
    assert not (tmp_path / "run").exists()
    assert main(["validate", str(spec)]) == 2
    validate_err = capsys.readouterr().err
    free = re.compile(r"has [\d,.]+ GiB free")  # the machine's free memory moves between the two calls
    train_err, validate_err = free.sub("has N GiB free", train_err), free.sub("has N GiB free", validate_err)
    message = train_err[len("error: ") :].strip()
    if message.startswith("invalid spec"):  # a spec-level problem: both list the same lines
        assert validate_err.strip() == train_err.strip()
    else:
        assert message in validate_err, f"train said:\n{message}\nvalidate said:\n{validate_err}"


def test_every_broken_task_is_named_at_once(tmp_path, capsys):  # noqa: ANN001
    doc = spec_dict(tmp_path)
    doc["tasks"][0]["data"]["path"] = "gone.jsonl"
    doc["tasks"][2]["data"]["path"] = "also-gone.jsonl"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "(2 problems)" in err and "gone.jsonl" in err and "also-gone.jsonl" in err


def test_validate_is_fast_and_writes_nothing(tmp_path, capsys):  # noqa: ANN001
    import time

    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(tmp_path)))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    tick = time.perf_counter()
    assert main(["validate", str(spec)]) == 0
    assert time.perf_counter() - tick < 30
    assert "ok (3 tasks" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
