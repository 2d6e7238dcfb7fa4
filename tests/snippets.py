"""The code blocks of a Markdown page, as the tests that run them read them (the README's in tests/test_readme.py,
the docs' in tests/test_docs_snippets.py).

A block may carry a mark, an HTML comment on the line right before its fence, that says how it is covered:

    <!-- not-run: the reason (a GPU, hours of compute, ...) -->
    <!-- file: broken.yaml -->                   the block is a file the page's later blocks use
    <!-- tested: tests/test_readme.py::test_... -->   a test of its own runs it
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass

from benchmarks.render import BLOCK as RENDERED

FENCE = re.compile(r"^(?P<indent> *)```(?P<language>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(?P<kind>not-run|file|tested):\s*(?P<value>[^\n]*?)\s*-->\s*\Z")
MARKS = ("not-run", "file", "tested")
SHELL_PUNCTUATION = "();<>|&"


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language (``""`` when the fence names none), its text, the line of its fence,
    its mark (``kind``, ``value``) and, inside a ``<!-- rendered: NAME -->`` region, that region's name."""

    language: str
    body: str
    line: int
    mark: tuple[str, str] | None = None
    rendered: str | None = None


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, in order."""
    regions = [(m.start(), m.end(), m.group("name")) for m in RENDERED.finditer(text)]
    found = []
    for m in FENCE.finditer(text):
        mark = MARK.search(text, 0, m.start())
        indent = len(m.group("indent"))
        body = "".join(line[indent:] for line in m.group("body").splitlines(keepends=True))
        found.append(
            Block(
                language=m.group("language"),
                body=body,
                line=text.count("\n", 0, m.start()) + 1,
                mark=(mark.group("kind"), mark.group("value")) if mark else None,
                rendered=next((name for start, end, name in regions if start <= m.start() < end), None),
            )
        )
    return found


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def console_steps(body: str) -> list[tuple[str, list[str]]]:
    """A console block as ``(command, the lines shown after it)`` pairs: a command is a ``$ `` line, continuation
    lines (``\\`` at the end) joined."""
    steps: list[tuple[str, list[str]]] = []
    for line in re.sub(r"\\\n\s*", " ", body).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:].strip(), []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def console_commands(text: str) -> list[str]:
    """The ``$ taskgraph ...`` commands of a section's console blocks, continuation lines joined."""
    return [
        command
        for block in blocks(text, "console")
        for command, _ in console_steps(block)
        if command.startswith("taskgraph ")
    ]


def shell_commands(body: str) -> list[str]:
    """The commands of a bash block: comment lines dropped, continuation lines joined, one per line."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def taskgraph_argv(command: str) -> list[str] | None:
    """The words after ``taskgraph`` of a command that runs the CLI (``taskgraph ...``, ``python -m taskgraph ...``,
    ``torchrun ... -m taskgraph ...``), up to a comment, ``&&``, ``;``, ``|`` or a redirection; None for any other
    command."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(itertools.takewhile(lambda word: not set(word) <= set(SHELL_PUNCTUATION), lexer))
    except ValueError:  # an unclosed quote
        return None
    if words[:1] == ["taskgraph"]:
        return words[1:]
    if words[:1] in (["python"], ["python3"], ["torchrun"]):
        for i in range(1, len(words) - 1):
            if words[i : i + 2] == ["-m", "taskgraph"]:
                return words[i + 2 :]
    return None
