"""Every harness script under ``benchmarks/`` still starts: ``python -m benchmarks.X --help`` prints its usage and
exits 0. A script nothing else imports can break silently when the code it reads moves (``docs/screenshots.py`` did,
after the house move); this finds every module that runs as a script and asks it for its help."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "benchmarks").rglob("*.py")
    if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")
)


def test_the_harness_scripts_are_found():
    assert {"benchmarks.render", "benchmarks.screenshots", "benchmarks.transcripts"} <= set(SCRIPTS)


@pytest.mark.parametrize("module", SCRIPTS)
def test_a_harness_script_answers_help(module: str, capsys):
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(module).main(["--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
