"""The README runs as written: "Train on your own text" followed to the letter on files this test writes in the
layout the section describes (its spec and its commands, verbatim), and the Python API block executed as is."""

from __future__ import annotations

import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import needs_minilm

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

POSITIVE = ["warm", "funny", "moving", "brilliant", "charming", "fine", "lovely", "sharp"]
NEGATIVE = ["dull", "tiresome", "flat", "clumsy", "boring", "weak", "messy", "stale"]
TOPICS = {"business": ["rates", "shares", "profits", "markets"], "sport": ["match", "goal", "league", "coach"],
          "science": ["cells", "planets", "atoms", "genes"]}


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


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
        lines.append(f"\"the {' and '.join(rng.sample(TOPICS[topic], 2))} again\",{topic}")
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
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1", "TASKGRAPH_PROGRESS": "lines"}
    assert shutil.which("taskgraph", path=env["PATH"]), "the console script is installed with the package"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
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
