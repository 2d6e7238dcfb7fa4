"""The README runs as written: the five-minute tour and its merge / PEFT commands on the quickstart spec, "Train on
your own text" followed to the letter on files this test writes in the layout the section describes (its spec and
its commands, verbatim), the Python API block executed as is, and the text-to-text guide's planted commands."""

from __future__ import annotations

import ast
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_minilm
from tests.snippets import blocks, console_commands

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TEXT_TO_TEXT = ROOT / "docs" / "guide" / "text-to-text.md"

POSITIVE = ["warm", "funny", "moving", "brilliant", "charming", "fine", "lovely", "sharp"]
NEGATIVE = ["dull", "tiresome", "flat", "clumsy", "boring", "weak", "messy", "stale"]
TOPICS = {
    "business": ["rates", "shares", "profits", "markets"],
    "sport": ["match", "goal", "league", "coach"],
    "science": ["cells", "planets", "atoms", "genes"],
}


def section(title: str, page: Path | None = None) -> str:
    """The ``## title`` section of the README (or of ``page``), up to the next ``## `` heading."""
    text = README if page is None else page.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def subset(shown: object, full: object) -> bool:
    """Whether every key and value ``shown`` (an abridged YAML) gives is in ``full`` (the file it abridges)."""
    if isinstance(shown, dict):
        return isinstance(full, dict) and all(k in full and subset(v, full[k]) for k, v in shown.items())
    if isinstance(shown, list):
        return isinstance(full, list) and len(shown) <= len(full) and all(map(subset, shown, full))
    return shown == full


def test_the_tours_spec_is_the_quickstart_file_abridged() -> None:
    import yaml

    (shown,) = blocks(section("A five-minute tour"), "yaml")
    full = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text(encoding="utf-8"))
    assert subset(yaml.safe_load(shown), full)
    assert not subset({"router": {"kind": "graph"}}, full)  # the check can fail


@pytest.mark.slow
def test_the_tour_and_the_merge_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tour's commands, then the merge section's, verbatim, in a folder holding a copy of configs/."""
    import shlex

    from taskgraph.cli import main

    tour = [c for c in blocks(section("A five-minute tour"), "bash")[0].splitlines() if c.strip()]
    merge = [c for c in blocks(section("Merge and PEFT export"), "bash")[0].splitlines() if c.strip()]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    for line in tour + merge:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "taskgraph" and main(argv[1:]) == 0, line
    assert (tmp_path / "runs" / "tour" / "graph.html").is_file()
    assert len(json.loads((tmp_path / "runs" / "tour-peft" / "taskgraph.json").read_text())["tasks"]) == 6
    assert json.loads((tmp_path / "runs" / "tour-merged" / "merge.json").read_text())["method"] == "ties"
    assert (tmp_path / "runs" / "tour-planted-0" / "adapter_config.json").is_file()


def write_my_data(folder: Path, rows: int = 120) -> None:
    """``reviews.jsonl`` (string labels) and ``topics.csv`` (text,topic) as the section describes them."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "reviews.jsonl").open("w", encoding="utf-8") as out:
        for i in range(rows):
            label = "positive" if i % 2 else "negative"
            words = rng.sample(POSITIVE if i % 2 else NEGATIVE, 2)
            out.write(json.dumps({"text": f"a {words[0]}, {words[1]} film", "label": label}) + "\n")
    lines = ["text,topic"]
    for i in range(rows):
        topic = list(TOPICS)[i % 3]
        lines.append(f'"the {" and ".join(rng.sample(TOPICS[topic], 2))} again",{topic}')
    (folder / "topics.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_section_names_the_layout_this_test_writes() -> None:
    text = section("Train on your own text")
    assert '{"text": "a warm, funny film", "label": "positive"}' in text
    assert "`text,topic`" in text and "80 / 10 / 10" in text and "labels: [negative, positive]" in text


@needs_minilm
@pytest.mark.slow
def test_train_on_your_own_text_runs_as_written(tmp_path: Path) -> None:
    text = section("Train on your own text")
    (spec_text,) = blocks(text, "yaml")
    (commands,) = blocks(text, "bash")
    write_my_data(tmp_path / "mydata")
    (tmp_path / "mydata" / "spec.yaml").write_text(spec_text, encoding="utf-8")
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "TASKGRAPH_PROGRESS": "lines",
    }
    assert shutil.which("taskgraph", path=env["PATH"]), "the console script is installed with the package"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "mydata/spec.yaml: ok (2 tasks" in done.stdout
    assert "mydata: step 30/60" in done.stderr  # progress lines, not a silent run
    prediction = json.loads(done.stdout.strip().splitlines()[-1])
    assert prediction["text"] == "a dull, tiresome film" and prediction["label_name"] in ("negative", "positive")
    assert prediction["label_name"] == "negative"  # the model learned the reviews
    summary = json.loads((tmp_path / "runs" / "mydata" / "train.json").read_text())
    assert summary["completed"] and summary["final_val"]["mean_acc"] > 0.8


@needs_minilm
@pytest.mark.slow
def test_the_python_api_section_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    (code,) = blocks(section("Python API"), "python")
    write_my_data(tmp_path / "mydata")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    exec(compile(code, "README.md#python-api", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    printed = capsys.readouterr().out.splitlines()
    first = ast.literal_eval(printed[0])  # the block's own print of a list of dicts
    assert first[0]["label_name"] in ("negative", "positive") and len(first[0]["probs"]) == 2
    assert "('full', 'routing', 'mhr-mu')" in printed[1]
    assert 0.0 <= float(printed[2]) <= 1.0
    assert (tmp_path / "runs" / "api" / "model" / "manifest.json").is_file()
    assert (tmp_path / "runs" / "api-model" / "manifest.json").is_file()
    assert (tmp_path / "runs" / "api-more" / "adapt.json").is_file()


@pytest.mark.slow
def test_text_to_text_walk_through_runs_as_written_on_a_smaller_universe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/guide/text-to-text.md's planted commands, verbatim, on configs/planted-gen.yaml cut to 20 steps of 40 examples a task
    (the same tasks, the same universe otherwise): about 15 s (30 s on a busy 2-core machine), not the section's minutes."""
    import shlex

    import yaml

    from taskgraph.cli import main

    planted = [c for c in console_commands(section("Text-to-text tasks", TEXT_TO_TEXT)) if "planted-gen" in c]
    assert [c.split()[1] for c in planted] == ["train", "eval", "adapt", "export"], planted
    spec = yaml.safe_load((ROOT / "configs" / "planted-gen.yaml").read_text(encoding="utf-8"))
    spec["training"].update(steps=20, eval_every=20, checkpoint_every=20)
    for task in spec["tasks"]:
        task["data"]["examples_per_task"] = 40
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "planted-gen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKGRAPH_PROGRESS", "off")
    for command in planted:
        assert main(shlex.split(command)[1:]) == 0, command  # the words after "taskgraph"
    adapted = json.loads((tmp_path / "runs" / "planted-gen-7" / "adapt.json").read_text())
    assert adapted["objective"] == "generate" and adapted["head"] is None and "exact_match" in adapted["test"]
    assert (
        json.loads((tmp_path / "runs" / "planted-gen-peft" / "adapter_config.json").read_text())["task_type"]
        == "CAUSAL_LM"
    )
