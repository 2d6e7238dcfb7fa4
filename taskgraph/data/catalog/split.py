"""Pure functions turning parsed ``(text, label)`` rows into clean, fixed train / val / test splits.

Clean. White space is collapsed (``" ".join(text.split())``), empty texts are dropped, and each text is
kept once: a text seen again with the same label is a duplicate (dropped), a text seen with two labels
is ambiguous (every copy dropped). So no text is in two splits.

Split. Every row gets the key ``sha256(f"{salt}:{seed}:{text}")``: a pseudo-random order that depends
on the text and the seed only, not on the order the rows were read in, numpy's generator or the machine.
The split is stratified: for each label, its rows in key order give their first ``q_test`` rows to test,
the next ``q_val`` to val, the rest to train, where the per-label quotas share the split's total by
largest remainders (``total · n_label / n``). The totals are ``split_counts`` of the fractions (as every
other source), with test capped at ``test_cap`` rows (the rest goes to train). Each split lists its rows
in key order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from taskgraph.data.examples import split_counts


@dataclass
class CleanStats:
    """What :func:`clean_rows` dropped, for ``meta.json`` and ``taskgraph data fetch``."""

    read: int = 0  # pairs the parser gave
    unlabelled: int = 0  # label None or not one of the task's labels
    empty: int = 0  # no text left after collapsing white space
    duplicates: int = 0  # the same text again with the same label
    ambiguous: int = 0  # rows of texts seen with two or more labels (all dropped)
    capped: int = 0  # dropped by max_per_label
    kept: int = 0
    per_label: list[int] = field(default_factory=list)


def normalise(text: str) -> str:
    """``text`` with every run of white space made one space, ends trimmed."""
    return " ".join(text.split())


def row_key(text: str, seed: int, salt: str = "split") -> bytes:
    """The order key of a row: a hash of the salt, the seed and the text."""
    return hashlib.sha256(f"{salt}:{seed}:{text}".encode()).digest()


def clean_rows(
    pairs: Iterable[tuple[str, str | None]], labels: Sequence[str], max_per_label: int | None = None
) -> tuple[list[tuple[str, int]], CleanStats]:
    """``(normalised text, label index)`` rows of ``pairs`` (see the module docstring), in key order of seed 0.

    With ``max_per_label`` each label keeps its first ``max_per_label`` rows in ``row_key(.., salt="cap")``
    order (a seeded, order-free subsample).
    """
    index = {name: i for i, name in enumerate(labels)}
    stats = CleanStats()
    seen: dict[str, int] = {}  # text -> its first label
    copies: dict[str, int] = {}  # text -> how many rows hold it
    ambiguous: set[str] = set()
    for text, label in pairs:
        stats.read += 1
        if label is None or label not in index:
            stats.unlabelled += 1
            continue
        text = normalise(text)
        if not text:
            stats.empty += 1
            continue
        copies[text] = copies.get(text, 0) + 1
        if seen.setdefault(text, index[label]) != index[label]:
            ambiguous.add(text)
    stats.ambiguous = sum(copies[t] for t in ambiguous)
    stats.duplicates = sum(n - 1 for t, n in copies.items() if t not in ambiguous)
    rows = [(text, label) for text, label in seen.items() if text not in ambiguous]
    if max_per_label is not None:
        rows.sort(key=lambda row: row_key(row[0], 0, "cap"))
        taken = [0] * len(labels)
        kept = []
        for text, label in rows:
            if taken[label] < max_per_label:
                taken[label] += 1
                kept.append((text, label))
        stats.capped = len(rows) - len(kept)
        rows = kept
    rows.sort(key=lambda row: row_key(row[0], 0))
    stats.kept = len(rows)
    stats.per_label = [sum(1 for _, y in rows if y == i) for i in range(len(labels))]
    return rows, stats


def largest_remainder(total: int, sizes: Sequence[int]) -> list[int]:
    """``total`` shared among groups in proportion to ``sizes`` (integers summing to ``total``; ties: first group)."""
    n = sum(sizes)
    if n == 0:
        return [0] * len(sizes)
    base = [total * s // n for s in sizes]
    order = sorted(range(len(sizes)), key=lambda i: (-(total * sizes[i] % n), i))
    for i in order[: total - sum(base)]:
        base[i] += 1
    return base


def split_totals(n: int, fractions: tuple[float, float, float], test_cap: int | None) -> list[int]:
    """Rows of train / val / test: ``split_counts`` of the fractions, test capped (the rest to train)."""
    train, val, test = split_counts(n, fractions)
    if test_cap is not None and test > test_cap:
        train, test = train + test - test_cap, test_cap
    return [train, val, test]


def stratified_split(
    texts: Sequence[str], labels: Sequence[int], fractions: tuple[float, float, float], seed: int, test_cap: int | None
) -> list[list[int]]:
    """Row indices of train, val and test (see the module docstring): disjoint, covering every row."""
    keys = [row_key(t, seed) for t in texts]
    num_labels = max(labels, default=-1) + 1
    groups: list[list[int]] = [[] for _ in range(num_labels)]
    for i in sorted(range(len(texts)), key=keys.__getitem__):
        groups[labels[i]].append(i)
    _, val_total, test_total = split_totals(len(texts), fractions, test_cap)
    sizes = [len(g) for g in groups]
    test_q = largest_remainder(test_total, sizes)
    val_q = largest_remainder(val_total, sizes)
    parts: list[list[int]] = [[], [], []]
    for group, q_test, q_val in zip(groups, test_q, val_q):
        q_val = min(q_val, len(group) - q_test)  # only where train's fraction is ~0
        parts[2] += group[:q_test]
        parts[1] += group[q_test : q_test + q_val]
        parts[0] += group[q_test + q_val :]
    return [sorted(part, key=keys.__getitem__) for part in parts]
