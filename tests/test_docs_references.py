"""Every method doc the code cites lives in the repository and has the section the code names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "methods.md"


def test_code_citations_resolve_to_sections_of_docs_methods():
    text = DOC.read_text(encoding="utf-8")
    numbers = set(re.findall(r"^## (\d+)\. ", text, flags=re.M))
    headings = {h.strip() for h in re.findall(r"^#{2,3} (?:\d+\. )?(.+)$", text, flags=re.M)}
    cited_numbers, cited_names, outside = set(), set(), []
    for path in (ROOT / "taskgraph").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        outside += [str(path)] if "PAPERS.md" in source else []
        for numbers_cited in re.findall(r"docs/methods\.md §([\d–\-]+)", source):
            cited_numbers |= set(re.findall(r"\d+", numbers_cited))
        cited_names |= set(re.findall(r'docs/methods\.md, "([^"]+)"', source))
    assert not outside, f"code cites PAPERS.md, which is not in the repository: {outside}"
    assert cited_numbers and cited_numbers <= numbers, cited_numbers - numbers
    assert cited_names and cited_names <= headings, cited_names - headings
    for method in (
        "Task arithmetic",
        "Average",
        "TIES",
        "DARE",
        "DARE-TIES",
        "Shared-subspace merge",
        "Merge-then-SVD",
    ):
        assert method in headings  # a section for every merge method
