"""The command line shows taskgraph's lines, not its dependencies' noise (:mod:`taskgraph.dependency_log`).

One subprocess, its output piped as a log would be, runs validate / train / eval / predict on a tiny BERT2BERT
warm-started from a local BERT (the README's ``model.warm_start: encoder-decoder``) whose tokenizer's maximum is shorter
than a review: transformers' load report, "checkpoint seem corrupted", the tokenizer's "indexing errors" and the
"Loading weights" bar stay off the terminal and land in the run's ``dependencies.log``; a checkpoint missing weights
the model reads still shows; ``--verbose`` brings everything back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from transformers.utils import logging as hf_logging

from taskgraph.dependency_log import (
    LOG_NAME,
    TOO_LONG,
    DependencyLog,
    is_benign,
    keep_in_run,
    quiet_dependencies,
)
from tests.benchmarks.quality.test_real_gen import tiny_config

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("LOAD REPORT", "seem corrupted", "indexing errors", "Loading weights", "[transformers]", "it/s]")
NOISE += ("Failed to load", "is an Enum subclass")  # torchao's import, where it is installed
DRIVER = """
import json, sys
from taskgraph.cli import main
for argv in json.loads(sys.argv[1]):
    print("=== " + " ".join(argv), flush=True)
    code = main(argv)
    sys.stderr.flush()
    print(f"=== exit {code}", flush=True)
"""


@pytest.fixture(scope="module")
def piped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The folder, and each command's piped output (stdout and stderr together) by its first words."""
    folder = tmp_path_factory.mktemp("warm")
    spec = tiny_config(folder)  # folder/base: a tiny BERT and its WordPiece tokenizer; rt.jsonl, op.jsonl
    config = folder / "base" / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "model_max_length": 6}))  # a review is longer
    broken = folder / "broken"
    broken.mkdir()
    for item in (folder / "base").iterdir():
        if item.name != "model.safetensors":
            (broken / item.name).write_bytes(item.read_bytes())
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "base" / "model.safetensors")
    save_file(
        {k: v for k, v in weights.items() if "layer.0.attention.self.query" not in k}, broken / "model.safetensors"
    )
    (folder / "broken.yaml").write_text(spec.read_text().replace(str(folder / "base"), str(broken)))
    (folder / "new.jsonl").write_text('{"text": "the movie was good"}\n')
    commands = [
        ["validate", str(spec)],
        ["train", str(spec), "--out", str(folder / "run"), "--max-steps", "2", "--threads", "1"],
        ["eval", str(folder / "run"), "--no-timing", "--no-alignment", "--threads", "1"],
        ["predict", str(folder / "run"), "--task", "rt", "--input", str(folder / "new.jsonl"), "--threads", "1"],
        ["validate", str(folder / "broken.yaml")],
        ["validate", str(spec), "--verbose"],
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("TASKGRAPH_VERBOSE", "TASKGRAPH_PROGRESS", "CI")}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        cwd=folder,
        env={**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout
    sections = done.stdout.split("=== ")[1:]
    out = {}
    for head, body in zip(sections[0::2], sections[1::2]):
        words = head.split()
        key = words[0] + (" verbose" if "--verbose" in words else "") + (" broken" if "broken" in head else "")
        out[key] = head + body
        assert body.strip().endswith("exit 0"), head + body
    return folder, out


def test_piped_commands_print_taskgraph_lines_and_no_dependency_noise(piped) -> None:
    _, out = piped
    assert "real-gen.yaml: ok (2 tasks, router poly" in out["validate"]
    assert "tiny-gen: step 2/2 (100%)" in out["train"] and "stopped at step 2" in out["train"]
    assert "split test, router poly" in out["eval"] and "mean" in out["eval"]
    assert '"label_name"' in out["predict"] and "wrote 1 predictions for task 'rt'" in out["predict"]
    for command in ("validate", "train", "eval", "predict"):
        assert not [n for n in NOISE if n in out[command]], out[command]


def test_the_noise_lands_in_the_runs_dependencies_log(piped) -> None:
    folder, _ = piped
    log = (folder / "run" / LOG_NAME).read_text()
    assert "WARNING transformers.modeling_utils: BertLMHeadModel LOAD REPORT from: " in log
    assert "crossattention" in log and "| MISSING" in log and "\x1b[" not in log  # the table, without colour codes
    assert "This checkpoint seem corrupted" in log
    assert "WARNING transformers.tokenization_utils_base: " + TOO_LONG in log
    assert "Loading weights" not in log  # a progress bar is not a record: it is off
    assert log.count("BertLMHeadModel LOAD REPORT") == 1  # train's one load: eval and predict write into no run


def test_a_load_report_of_missing_weights_stays_on_the_terminal(piped) -> None:
    _, out = piped
    broken = out["validate broken"]
    assert "[transformers] \x1b[1mBertModel LOAD REPORT" in broken  # the encoder lacks weights it reads: shown
    assert "encoder.layer.0.attention.self.query.weight | MISSING" in broken
    assert "BertLMHeadModel LOAD REPORT" not in broken and "seem corrupted" not in broken  # the warm start's own
    assert "broken.yaml: ok" in broken


def test_verbose_brings_the_dependencies_output_back(piped) -> None:
    _, out = piped
    verbose = out["validate verbose"]
    assert "Loading weights" in verbose and "BertLMHeadModel LOAD REPORT" in verbose
    assert "seem corrupted" in verbose and "indexing errors" in verbose and "real-gen.yaml: ok" in verbose


REPORT = "\x1b[1mBertModel LOAD REPORT\x1b[0m from: /m\nKey | Status | \n----+----+-\n{rows}\n\nNotes:\n- MISSING:\tx"


@pytest.mark.parametrize(
    "rows, new_weights, benign",
    [
        ("cls.seq_relationship.weight | UNEXPECTED | ", False, True),  # a head the checkpoint has over
        ("pooler.dense.weight | MISSING | ", False, True),  # taskgraph pools the hidden states itself
        ("encoder.layer.{0, 1}.attention.self.query.weight | MISSING | ", False, False),
        ("encoder.layer.0.crossattention.self.query.weight | MISSING | ", True, True),  # the warm start's decoder
        ("embeddings.word_embeddings.weight | MISMATCH | Reinit due to size mismatch", True, False),
        ("x.weight | CONVERSION | \n\nboom\n\n", True, False),
    ],
)
def test_which_load_reports_are_benign(rows: str, new_weights: bool, benign: bool) -> None:
    assert is_benign(REPORT.format(rows=rows), new_weights=new_weights) is benign
    assert not is_benign(REPORT.format(rows=""), new_weights=True)  # no row read: not known, so shown


def test_which_other_messages_are_benign() -> None:
    corrupted = "This checkpoint seem corrupted. The tied weights mapping for this model specifies to tie a to b"
    assert is_benign(corrupted, new_weights=True) and not is_benign(corrupted)  # only in a warm start's decoder
    assert is_benign(TOO_LONG + " for this model (727 > 512). Running this sequence ... indexing errors")
    assert not is_benign("Some weights of the model checkpoint were not used")
    assert is_benign("Failed to load /v/torchao/_C_mxfp8.so: Could not load this library: /v/torchao/_C_mxfp8.so")
    assert is_benign("<enum 'KernelPreference'> is an Enum subclass and is now natively supported by torch.compile")
    assert not is_benign("CUDA out of memory", new_weights=True)
    assert is_benign(  # generate dropped taskgraph's all-ones mask; the prompts hold the pad id
        "We strongly recommend passing in an `attention_mask` since your input_ids may be padded. See https://hf.co/x"
    )


class Recorder(logging.Handler):
    """A terminal handler of transformers' logger, as its own is."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def test_the_scope_hides_benign_records_keeps_them_and_restores_everything() -> None:
    terminal = Recorder()
    seen = terminal.seen
    root = logging.getLogger("transformers")
    hf_logging.enable_progress_bar()
    root.addHandler(terminal)
    try:
        with quiet_dependencies(verbose=False) as log:
            assert isinstance(log, DependencyLog) and not hf_logging.is_progress_bar_enabled()
            logging.getLogger("transformers.tokenization_utils_base").warning(TOO_LONG + " (9 > 8).")
            logging.getLogger("transformers.modeling_utils").warning("a real problem")
        assert seen == ["a real problem"]  # the benign record left the terminal, the other did not
        assert [line.split(": ", 1)[1] for line in log.lines] == [TOO_LONG + " (9 > 8).", "a real problem"]
        assert hf_logging.is_progress_bar_enabled() and log not in root.handlers and not terminal.filters
        logging.getLogger("transformers.tokenization_utils_base").warning(TOO_LONG + " (9 > 8).")
        assert seen[-1].startswith(TOO_LONG)  # outside the scope nothing is filtered
    finally:
        root.removeHandler(terminal)


def test_a_record_no_other_handler_would_show_still_prints(monkeypatch, capsys) -> None:
    """A logger with no handler of its own (torchao's) prints through Python's last resort; inside the scope the log
    is a handler, so it prints a real record itself — and still not a benign one."""
    monkeypatch.setattr(logging.getLogger("torchao"), "propagate", False)  # as where nothing configures the root
    with quiet_dependencies(verbose=False) as log:
        logging.getLogger("torchao.kernel").warning("a real torchao problem")
        logging.getLogger("torchao").warning("Failed to load /x.so: Could not load this library: /x.so")
    assert capsys.readouterr().err == "a real torchao problem\n"
    assert log is not None and len(log.lines) == 2


def test_verbose_leaves_the_dependencies_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    hf_logging.enable_progress_bar()
    monkeypatch.setenv("TASKGRAPH_VERBOSE", "1")
    with quiet_dependencies() as log:
        assert log is None and hf_logging.is_progress_bar_enabled()
    monkeypatch.setenv("TASKGRAPH_VERBOSE", "0")
    with quiet_dependencies() as log, quiet_dependencies() as inner:
        assert log is not None and inner is None  # the outer scope holds
    assert hf_logging.is_progress_bar_enabled()


def test_keep_in_run_writes_only_into_a_run_written_since(tmp_path: Path) -> None:
    from taskgraph.run_folder import write_marker

    log = DependencyLog()
    log.emit(logging.LogRecord("transformers.x", logging.WARNING, __file__, 1, "noted", None, None))
    start = time.time()
    assert keep_in_run(log, tmp_path, start) is None  # not a run
    (tmp_path / "sweep").mkdir()
    write_marker(tmp_path / "sweep", "sweep")
    assert keep_in_run(log, tmp_path / "sweep", start) is None  # a container, not a run
    (tmp_path / "run").mkdir()
    write_marker(tmp_path / "run", "train", "r")
    assert keep_in_run(log, tmp_path / "run", start + 3600) is None  # written before this command began
    assert keep_in_run(log, tmp_path / "run", start) == tmp_path / "run" / LOG_NAME
    log.emit(logging.LogRecord("transformers.x", logging.WARNING, __file__, 1, "later", None, None))
    log.close()
    lines = (tmp_path / "run" / LOG_NAME).read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["noted", "later"]  # held, then written as it came
    assert repr(log) == f"DependencyLog({tmp_path / 'run' / LOG_NAME})"


@pytest.mark.parametrize("planted", ["symlink", "fifo"])
def test_keep_in_run_never_writes_through_a_planted_log(tmp_path: Path, planted: str) -> None:
    from taskgraph.run_folder import write_marker

    (tmp_path / "run").mkdir()
    write_marker(tmp_path / "run", "train", "r")
    outside = tmp_path / "outside.txt"
    outside.write_text("mine\n")
    if planted == "symlink":
        (tmp_path / "run" / LOG_NAME).symlink_to(outside)
    else:
        os.mkfifo(tmp_path / "run" / LOG_NAME)  # no reader: an open for writing would block
    log = DependencyLog()
    log.emit(logging.LogRecord("transformers.x", logging.WARNING, __file__, 1, "noted", None, None))
    assert keep_in_run(log, tmp_path / "run", time.time() - 60) is None
    assert outside.read_text() == "mine\n" and log.lines  # nothing written, the records still held
