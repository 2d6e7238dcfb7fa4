"""The real suites find the repository's configs/real-text.yaml from any working folder (the harness runs from a
checkout, not always from its root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.quality.real_suites import REAL_CONFIG, find_real_config
from benchmarks.quality.suites import QualityError

ROOT = Path(__file__).resolve().parents[3]


def test_the_default_config_is_found_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_real_config() == ROOT / REAL_CONFIG
    with pytest.raises(QualityError, match="no such file"):
        find_real_config("nope.yaml")
