"""MkDocs hook (mkdocs.yml ``hooks:``): the repository's README as the site's page ``readme.md``.

The README lives at the repository root, outside ``docs/``, and links into ``docs/`` the way a repository page does
(``docs/graph-prior.md``, ``docs/view-planted-graph.png``). The page is generated from it with those links made
relative to the site (``graph-prior.md``); a link to any other file of the repository, which the site does not hold,
keeps its text and shows the path as code. The README's own ``#anchors`` resolve because mkdocs.yml gives headings
GitHub's slugs. Guide pages link to its sections as ``../readme.md#section``, so ``mkdocs build --strict`` fails
when a section they point to is renamed or moved.

Docstring warnings from griffe (the API reference's parser) fail the strict build too, except two kinds that
:class:`KnownDocstringForms` lets through as INFO: an ``Args:`` entry naming several parameters at once
(``a, b: ...``, the docstrings' own convention), and the entries of :data:`KNOWN`, each a docstring to mend.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

README = Path(__file__).resolve().parents[1] / "README.md"
PAGE = "readme.md"
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")
KEPT = ("http://", "https://", "mailto:", "#")
GRIFFE = logging.getLogger("mkdocs.plugins.griffe")  # mkdocstrings hands griffe's messages to this logger
GROUPED = re.compile(r"parameter '[^']*, [^']*'|Parameter '[^']*, [^']*' does not appear")
# (file, words of griffe's message): a docstring griffe cannot read as written; mend it, then drop its entry.
KNOWN = (
    # a Raises: entry whose second line is not indented under its first
    ("taskgraph/train/loop.py", "from 'failed resume nothing"),
)


def site_links(markdown: str) -> str:
    """``markdown`` (the README) with its links made to work from the site's root page; code blocks as they are."""

    def rewrite(match: re.Match[str]) -> str:
        bang, text, target = match.group("bang"), match.group("text"), match.group("target")
        if target.startswith(KEPT):
            return match.group(0)
        if target.startswith("docs/"):
            return f"{bang}[{text}]({target.removeprefix('docs/')})"
        return f"{text} (`{target}`)"

    parts = re.split(r"(^```.*?^```[^\n]*$)", markdown, flags=re.M | re.S)  # code blocks at odd indices
    return "".join(part if i % 2 else LINK.sub(rewrite, part) for i, part in enumerate(parts))


class KnownDocstringForms(logging.Filter):
    """Lowers griffe's warnings about the docstring forms named in this module's docstring to INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        known = GROUPED.search(message) or any(path in message and words in message for path, words in KNOWN)
        if record.levelno == logging.WARNING and known:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def on_startup(command: str, dirty: bool) -> None:
    if not any(isinstance(f, KnownDocstringForms) for f in GRIFFE.filters):
        GRIFFE.addFilter(KnownDocstringForms())


def on_files(files: Files, config: Any) -> Files:
    files.append(File.generated(config, PAGE, content=site_links(README.read_text(encoding="utf-8"))))
    return files
