"""Argument types of the harness's options (argparse turns their errors into a usage error, exit 2).

Every count has an upper bound, so a typo (``--seeds 1000000``) is refused with the limit named instead of
running until it is killed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

import yaml

MAX_SEEDS = 100  # seeds per router: 100 already trains 100 runs per grid point
MAX_COUNT = 10**9  # steps, shots, batch sizes
MAX_THREADS = 1024  # more than any machine torch runs on has cores


def bounded(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """An argument type for whole numbers in ``[low, high]``; the message names the limit (and ``what`` it bounds)."""

    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 40 else None
        except ValueError:
            value = None
        if value is None:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low:,} to {high:,}, got {text[:40]!r}")
        if not low <= value <= high:
            bound = f"at least {low:,}" if value < low else f"at most {high:,}{f' ({what})' if what else ''}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:,}")
        return value

    parse.__name__ = f"bounded_{low}_{high}"
    return parse


positive_int = bounded(1, MAX_COUNT)
seeds = bounded(1, MAX_SEEDS, "seeds per router; run more in separate --out folders")
threads = bounded(1, MAX_THREADS, "torch threads")


def output_path(text: str) -> str:
    """A path to write (``--json OUT``); an empty or blank one is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    return text


def floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of positive numbers, e.g. ``1e-3,3e-3``."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1e-3,3e-3, got {text!r}") from None
    if not values or any(not 0 < v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"expected positive finite numbers, got {text[:80]!r}")
    return values


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive whole numbers, e.g. ``16,64``."""
    return tuple(positive_int(x.strip()) for x in text.split(",") if x.strip()) or (positive_int(text),)


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as YAML (``tasks=48``, ``skills_per_task=[2,3]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE such as tasks=48, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not valid YAML") from None


def names(text: str) -> tuple[str, ...]:
    """A comma-separated list of distinct names, e.g. ``poly,graph``; an empty list or a repeated name is refused."""
    found = tuple(n.strip() for n in text.split(",") if n.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text[:40]!r}")
    repeated = sorted({n for n in found if found.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{', '.join(map(repr, repeated))} given twice in {text[:80]!r}")
    return found


def choices(allowed: tuple[str, ...], what: str, empty: bool = False) -> Callable[[str], tuple[str, ...]]:
    """A comma-separated list of distinct names out of ``allowed`` (``empty``: none may be given)."""

    def parse(text: str) -> tuple[str, ...]:
        found = tuple(x.strip() for x in text.split(",") if x.strip())
        bad = [n for n in found if n not in allowed]
        if bad or (not found and not empty):
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {list(allowed)}")
        repeated = sorted({n for n in found if found.count(n) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{what} {', '.join(map(repr, repeated))} given twice in {text[:80]!r}")
        return found

    return parse
