"""``python -m benchmarks.transcripts``: a guide's console transcript run as written, recorded, and rendered back."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from benchmarks import transcripts
from benchmarks.transcripts import FILES, TRANSCRIPTS, Step, main, transcript_block

ROOT = Path(__file__).resolve().parents[2]


def test_a_transcript_is_recorded_as_run_and_rendered_as_a_console_block(tmp_path: Path, monkeypatch, capsys):
    steps = (
        Step("taskgraph validate configs/routers/poly.yaml"),
        Step("taskgraph validate configs/no-such-spec.yaml", expect=2),
    )
    monkeypatch.setitem(TRANSCRIPTS, "tiny", steps)
    assert main(["tiny", "--results", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "transcript-tiny.json").read_text())
    assert [s["command"] for s in record["steps"]] == [s.command for s in steps]
    assert "configs/routers/poly.yaml" in record["steps"][0]["output"]
    assert "no-such-spec.yaml" in record["steps"][1]["output"] and record["steps"][1]["exit"] == 2
    block = transcript_block(record, "transcript-tiny")
    assert block.startswith("```console\n$ taskgraph validate configs/routers/poly.yaml\n")
    assert "$ taskgraph validate configs/no-such-spec.yaml\n" in block
    assert "Recorded by `python -m benchmarks.transcripts tiny`" in block
    assert "`benchmarks/results/transcript-tiny.json`" in block and str(tmp_path) not in block


def test_a_transcripts_input_files_are_there_before_its_first_command(monkeypatch):
    monkeypatch.setitem(TRANSCRIPTS, "tiny", (Step("cat new.jsonl"),))
    monkeypatch.setitem(FILES, "tiny", {"new.jsonl": '{"text": "a dull film"}\n'})
    [step] = transcripts.record("tiny")["steps"]
    assert step["output"] == '{"text": "a dull film"}\n'


def test_a_step_that_exits_otherwise_than_expected_stops_the_recording(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(TRANSCRIPTS, "tiny", (Step("taskgraph validate configs/no-such-spec.yaml"),))
    with pytest.raises(RuntimeError, match="exited 2, not 0"):
        transcripts.record("tiny")


def test_an_unknown_transcript_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["no-such"])
    assert exit_.value.code == 2 and "unknown: ['no-such']" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(TRANSCRIPTS))
def test_every_transcript_reads_configs_the_repository_has(name: str):
    for step in TRANSCRIPTS[name]:
        words = shlex.split(step.command)
        assert words[0] == "taskgraph" or (words[0] == "cat" and set(words[1:]) <= set(FILES.get(name, {})))
        for word in words:
            if word.startswith("configs/"):
                assert (ROOT / word).is_file(), f"{name}: {step.command!r} reads {word}, which is not in configs/"
