"""``taskgraph export RUN --format peft --out DIR`` replaces only what its marker says is an earlier export of
taskgraph: a look-alike ``taskgraph.json``, an unmarked folder, a run, or an export holding files the export did not
write are refused with exit 2 and one paragraph, and nothing in them changes; a kill at any moment of a replacement
leaves the old export whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from taskgraph.run_folder import MARKER, read_marker, write_marker
from tests.hostile import cli
from tests.merge.conftest import planted, save_run
from tests.test_kill_export_adapt import killed, leftovers

# what an export with --task writes beside a config-built base, as taskgraph wrote it before exports were marked
OLD_EXPORT_META = {
    "format": "taskgraph-peft-export",
    "version": 1,
    "task": "planted-0",
    "num_labels": 2,
    "pooling": "mean",
    "max_length": 8,
    "head": "head.safetensors",
    "logits": "head.weight @ pool(base(input_ids, attention_mask).last_hidden_state) + head.bias",
    "base": {"fingerprint": None, "class": "BertModel", "folder": "base", "path": "base"},
    "source_run": "run",
}


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under ``folder``: a file's bytes, None for a folder."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_run(planted("poly"), tmp_path_factory.mktemp("identity") / "run", 1)


def peft(run: Path, out: Path, *task: str) -> list[str]:
    return [
        "export",
        str(run),
        "--format",
        "peft",
        *(["--task", *task] if task else ["--all-tasks"]),
        "--out",
        str(out),
    ]


@pytest.mark.parametrize(
    "meta",
    [
        "[]",  # any file named taskgraph.json
        json.dumps({"format": "taskgraph-peft-export"}),
        json.dumps(OLD_EXPORT_META),  # the very index an unmarked (older) export holds
    ],
)
def test_a_folder_holding_a_taskgraph_json_is_not_an_export(run, tmp_path, meta):  # noqa: ANN001
    out = tmp_path / "mine"
    (out / "photos").mkdir(parents=True)
    (out / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (out / "thesis.tex").write_text("\\section{Results}")
    (out / "taskgraph.json").write_text(meta)
    before = tree(out)
    outcome = cli(peft(run, out, "planted-0"))
    assert outcome.code == 2 and not outcome.traceback, outcome.err
    assert outcome.err.startswith("error: ") and outcome.err.count("\n") == 1  # one paragraph
    assert "is not a PEFT export of taskgraph" in outcome.err and MARKER in outcome.err
    assert "delete this one yourself" in outcome.err and "nothing was changed" in outcome.err
    assert tree(out) == before  # no lock file, no marker, nothing removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left beside it


def test_an_export_written_before_exports_were_marked_is_refused_with_what_to_do(run, tmp_path):  # noqa: ANN001
    out = tmp_path / "old-export"
    assert cli(peft(run, out, "planted-0")).code == 0
    (out / MARKER).unlink()  # as taskgraph wrote it before exports carried a marker
    before = tree(out)
    outcome = cli(peft(run, out, "planted-1"))
    assert outcome.code == 2 and "delete this one yourself if it is an old export" in outcome.err
    assert tree(out) == before


def test_an_export_marks_its_folder_and_the_next_export_replaces_it(run, tmp_path):  # noqa: ANN001
    out = tmp_path / "peft"
    assert cli(peft(run, out, "planted-0")).code == 0
    first = read_marker(out)
    assert first is not None and first["kind"] == "peft-export" and first["tasks"] == ["planted-0"]
    assert first["entries"] == sorted(p.name for p in out.iterdir() if p.name != MARKER)
    assert cli(peft(run, out)).code == 0  # --all-tasks over the single-task export
    second = read_marker(out)
    assert second is not None and second["id"] != first["id"] and len(second["tasks"]) == 4
    assert json.loads((out / "taskgraph.json").read_text())["tasks"] == second["tasks"]
    assert not (out / "adapter_config.json").exists()  # the old export's files went with it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["peft"]


def test_an_export_holding_files_it_did_not_write_is_not_replaced(run, tmp_path):  # noqa: ANN001
    out = tmp_path / "peft"
    assert cli(peft(run, out, "planted-0")).code == 0
    (out / "README.md").write_text("my notes on this adapter")
    before = tree(out)
    outcome = cli(peft(run, out, "planted-1"))
    assert outcome.code == 2 and not outcome.traceback
    assert "is a PEFT export of taskgraph, but it also holds README.md" in outcome.err
    assert tree(out) == before


def test_an_export_never_replaces_a_run_and_no_command_writes_over_its_files(run, tmp_path):  # noqa: ANN001
    trained = tmp_path / "trained"
    (trained / "model").mkdir(parents=True)
    write_marker(trained, "train", "x")
    before = tree(trained)
    outcome = cli(peft(run, trained, "planted-0"))
    assert outcome.code == 2 and "holds a taskgraph train run" in outcome.err and tree(trained) == before
    out = tmp_path / "peft"
    assert cli(peft(run, out, "planted-0")).code == 0
    before = tree(out)
    for target in (out / "taskgraph.json", out / "adapter_config.json", out / "base" / "config.json"):
        outcome = cli(["export", str(run), "--format", "json", "--out", str(target)])
        assert outcome.code == 2 and "belongs to the taskgraph PEFT export" in outcome.err, outcome.err
    assert tree(out) == before
    assert cli(["export", str(run), "--format", "json", "--out", str(out / "graph.json")]).code == 0  # a new file


@pytest.mark.parametrize(
    "at",
    [
        "peft:1:after",  # the old export set aside, the new one not yet in its place
        "peft:2:after",  # the new export in place, the old one not yet removed
    ],
)
def test_kill_9_while_an_export_replaces_another_leaves_one_whole_export(run, tmp_path, at):  # noqa: ANN001
    out = tmp_path / "peft"
    assert cli(peft(run, out, "planted-0")).code == 0
    old = tree(out)
    killed(peft(run, out, "planted-1"), at)
    assert leftovers(tmp_path), "the kill left nothing behind: it did not hit the replacement"
    outcome = cli(peft(run, out, "planted-2"))  # the next export puts back or removes what the kill left
    assert outcome.code == 0, outcome.err
    assert leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["peft"]
    assert json.loads((out / "taskgraph.json").read_text())["task"] == "planted-2"
    assert set(tree(out)) == set(old)


def test_the_export_line_names_paths_as_the_user_gave_them(run, tmp_path, monkeypatch, capsys):  # noqa: ANN001
    from taskgraph.cli import main

    monkeypatch.chdir(tmp_path)  # a relative --out: the line names the base under it, not the machine's path
    assert main(peft(run, Path("rel-peft"), "planted-0")) == 0
    out = capsys.readouterr().out
    assert "base rel-peft/base)" in out and str(tmp_path) not in out
