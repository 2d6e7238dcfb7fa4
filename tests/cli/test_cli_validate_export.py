"""The CLI in-process through main(argv): exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest
import yaml

from taskgraph.cli import main
from tests.conftest import minimal_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spec_path(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(minimal_spec()))
    return path


def test_validate_ok(spec_path, capsys):
    assert main(["validate", "--spec-only", str(spec_path)]) == 0
    assert "ok (3 tasks, router poly, 2 declared relations)" in capsys.readouterr().out
    assert main(["validate", str(spec_path)]) == 2  # the full check builds the model and reads every task's data
    err = capsys.readouterr().err
    assert "(3 problems)" in err and "task 'a' has no data section" in err


def test_validate_reports_every_problem_exit_2(tmp_path, capsys):
    data = minimal_spec()
    data["adapters"]["rank"] = 0
    data["router"]["kind"] = "nope"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{bad}:" in err and "adapters.rank" in err and "router.kind: unknown router 'nope'" in err


@pytest.mark.parametrize("content", [None, b"", b"\x00\x01\x02", b"a: [1, 2\n", b"x: !!python/name:os.system\n"])
def test_validate_bad_files_exit_2(tmp_path, capsys, content):
    path = tmp_path / "x.yaml"
    if content is not None:
        path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid spec") and "Traceback" not in err


def test_validate_directory_exit_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert main(["no-such-command"]) == 2
    assert main(["export", "x.yaml", "--format", "bogus", "--out", "y"]) == 2
    assert main([]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_export_json_round_trip(spec_path, tmp_path, capsys):
    out = tmp_path / "g.json"
    assert main(["export", str(spec_path), "--format", "json", "--out", str(out)]) == 0
    g = nx.node_link_graph(json.loads(out.read_text()), edges="edges")
    assert sorted(g.nodes) == ["task:a", "task:b", "task:c"]
    assert g.edges["task:a", "task:b"]["weight"] == pytest.approx(0.8)


def test_export_with_inventory(spec_path, tmp_path):
    out = tmp_path / "g.graphml"
    assert main(["export", str(spec_path), "--format", "graphml", "--out", str(out), "--layers", "2"]) == 0
    g = nx.read_graphml(out)
    assert sum(1 for _, d in g.nodes(data=True) if d["type"] == "adapter") == 2 * 4


def test_export_unwritable_out_exit_2(spec_path, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["export", str(spec_path), "--format", "json", "--out", str(blocker / "sub" / "g.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


def test_python_dash_m_and_console_script(spec_path):
    done = subprocess.run(
        [sys.executable, "-m", "taskgraph", "validate", "--spec-only", str(spec_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "taskgraph", "validate", str(spec_path) + ".missing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "no such file" in done.stderr and "Traceback" not in done.stderr
