"""The spec loader's limits: what Python cannot build is a SpecError with its line (never a ValueError), special
files are named, large task lists load, alias bombs are still refused."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec
from taskgraph.spec.loader import MAX_ALIAS_VALUES, parse_yaml, spec_from_dict
from taskgraph.spec.models import MAX_SEED
from tests.conftest import minimal_spec


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "s.yaml")
    return info.value.problems


@pytest.mark.parametrize(
    "text, line, message",
    [
        (
            "a: 1\nseed: " + "9" * 5000 + "\n",
            2,
            "an integer of 5,000 digits; taskgraph reads integers of at most 4,300",
        ),
        ("a: 1\nwhen: 2024-13-45\n", 2, "'2024-13-45' cannot be read as a date"),
        ("a: !!int abc\n", 1, "'abc' cannot be read as an integer"),
        ("a: !!float abc\n", 1, "'abc' cannot be read as a number"),
        ("a: !!bool maybe\n", 1, "'maybe' cannot be read as true or false"),
        ("a: !!timestamp soon\n", 1, "'soon' cannot be read as a date"),
        ("a: 1\nb: !!int ''\n", 2, "'' cannot be read as an integer"),
    ],
)
def test_a_value_python_cannot_build_is_named_with_its_line(text: str, line: int, message: str) -> None:
    """Before: ValueError (int-string limit, month 13), KeyError (!!bool maybe), AttributeError, IndexError: exit 1."""
    (problem,) = problems(text)
    assert problem.startswith(f"s.yaml:{line}: ") and message in problem


def test_text_that_is_not_unicode_is_refused() -> None:
    """A command-line argument of bytes that are not UTF-8 arrives with lone surrogates (--data is YAML)."""
    (problem,) = problems("{source: jsonl, path: \udcff.jsonl}")
    assert "lone surrogate" in problem and "U+DCFF" in problem


def test_seeds_are_bounded_where_numpy_and_torch_take_them(write: Callable[[str], Path]) -> None:
    """Before: a seed of 2**70 validated, then overflowed in torch.manual_seed (exit 1)."""
    spec = minimal_spec()
    for seed in (MAX_SEED + 1, 2**70, -1):
        spec["training"] = {"seed": seed}
        path = write(yaml.safe_dump(spec))
        with pytest.raises(SpecError, match=r"training\.seed: Input should be (greater|less) than or equal to"):
            load_spec(path)
    spec["training"] = {"seed": MAX_SEED}
    assert load_spec(write(yaml.safe_dump(spec))).training.seed == MAX_SEED


def test_ten_thousand_tasks_load(tmp_path: Path) -> None:
    """T = 10,000 is a supported scale. Before: refused as "more than 100,000 values"."""
    spec = minimal_spec()
    spec["tasks"] = [
        {"name": f"t{i}", "num_labels": 2, "data": {"source": "jsonl", "path": f"data/t{i}.jsonl"}}
        for i in range(10_000)
    ]
    spec["relations"] = {"declared": [[f"t{i}", f"t{i + 1}", 0.5] for i in range(0, 10_000, 2)]}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path)
    assert len(loaded.tasks) == 10_000 and loaded.tasks[-1].data.params.path == "data/t9999.jsonl"
    assert len(loaded.relations.declared) == 5_000


def test_aliases_are_bounded_by_what_they_add() -> None:
    """A few aliases of a small section are fine; a document that aliases blow up is refused fast."""
    fine = "base: &b {rank: 4}\n" + "".join(f"k{i}: *b\n" for i in range(1000))
    assert parse_yaml(fine)[0]["k999"] == {"rank": 4}
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)
    ]
    start = time.perf_counter()
    (problem,) = problems("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 2.0
    assert f"more than {MAX_ALIAS_VALUES:,} values beyond those written" in problem


def _within(fn: Callable[[], Any], seconds: float = 20.0) -> Any:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001  (handed back to the test)
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "loading the spec blocked"
    return out


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda p: os.mkfifo(p), "is a FIFO (named pipe), not a regular file"),
        (lambda p: (os.symlink(p.with_name("b.yaml"), p), os.symlink(p, p.with_name("b.yaml"))), "is a symlink loop"),
        (lambda p: os.symlink(p.with_name("gone.yaml"), p), "is a broken symlink to"),
    ],
    ids=["fifo", "loop", "broken-link"],
)
def test_a_special_file_as_spec_is_named(tmp_path: Path, make: Callable[[Path], Any], what: str) -> None:
    """Before: a FIFO blocked forever, a loop or a broken link was "no such file"."""
    path = tmp_path / "spec.yaml"
    make(path)
    error = _within(lambda: load_spec(path)).get("error")
    assert isinstance(error, SpecError) and what in str(error), error


def test_a_byte_order_mark_is_allowed(write: Callable[[str], Path]) -> None:
    text = yaml.safe_dump(minimal_spec())
    plain = load_spec(write(text))
    path = write("x")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_spec(path) == plain


TOKENS = st.sampled_from(
    [
        "a",
        ":",
        " ",
        "\n",
        "- ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "&x ",
        "*x",
        "!!int ",
        "!!float ",
        "!!bool ",
        "!!timestamp ",
        "!!binary ",
        "!!set ",
        "!!python/name:os.system ",
        "<<: ",
        "'",
        '"',
        "\\ud800",
        "2024-13-45",
        "9" * 5000,
        "1e999",
        ".nan",
        "? ",
        "|",
        "#",
        "---\n",
        "\t",
        "\ufeff",
        "~",
        "tasks",
        "model",
        "name",
        "seed",
        "0",
    ]
)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=st.lists(TOKENS, max_size=30).map("".join))
def test_any_yaml_text_is_a_spec_or_a_spec_error(text: str) -> None:
    """Property: whatever a spec file holds, reading it gives a Spec or a SpecError, nothing else."""
    try:
        data, lines = parse_yaml(text, "s.yaml")
        spec_from_dict(data, source="s.yaml", lines=lines)
    except SpecError:
        pass
