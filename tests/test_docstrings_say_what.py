"""Docstrings and comments say what the code does and how, not what a measurement found.

Results live in committed records rendered into the docs (``benchmarks/results``, ``docs/``); a figure in a
docstring goes stale with the next re-measurement and nobody regenerates it. So the library's docstrings and
comments hold no paired interval (``[+0.012, +0.034]``), no measured mean ± std (``0.94 ± 0.03``) and no
reference to an issue number (``issue 12``) — a default chosen by measurement points at its results page instead.
The research harness (``benchmarks/``, its tests in ``tests/benchmarks``) is not checked here: it reports
measurements by design.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = (ROOT / "tests" / "benchmarks",)

PATTERNS = {
    "a paired interval": re.compile(r"\[[−+-]\d+\.\d+, [−+-]\d+\.\d+\]"),
    "a measured mean ± std": re.compile(r"\d\.\d+ ± \d\.\d+"),
    "an issue number": re.compile(r"\bissue \d+", re.IGNORECASE),
}


def _sources() -> list[Path]:
    files = sorted((ROOT / "taskgraph").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))
    return [f for f in files if not any(f.is_relative_to(h) for h in HARNESS) and f != Path(__file__).resolve()]


def prose(source: str) -> list[tuple[int, str]]:
    """Every docstring and comment of a module, with its first line number."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    found.append((body[0].lineno, body[0].value.value))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found.append((tok.start[0], tok.string))
    return found


def offences(source: str) -> list[str]:
    out = []
    for line, text in prose(source):
        for what, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                out.append(f"line {line}: {what} ({match.group(0)!r})")
    return out


def test_the_check_finds_each_kind_it_names():
    source = '''"""Wins +0.012 [+0.004, +0.020] over poly."""
def f():
    """Accuracy 0.94 ± 0.03 over 6 seeds."""
    return 1  # see issue 12
'''
    found = offences(source)
    assert len(found) == 3, found
    assert offences('"""Routing weights ``[T, L, H, K]``; mean ± std over seeds."""\nx = [[-0.5, 0.0]]\n') == []


def test_library_prose_holds_no_measurements():
    found = [f"{path.relative_to(ROOT)} {o}" for path in _sources() for o in offences(path.read_text(encoding="utf-8"))]
    assert not found, "figures in docstrings or comments (move each to a results page):\n" + "\n".join(found)
