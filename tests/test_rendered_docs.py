"""Every figure block in the docs is what its committed record renders (:mod:`benchmarks.render`)."""

from __future__ import annotations

import re

import pytest

from benchmarks.render import BLOCK, FILES, RENDERERS, abridge, render_text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_rendered_block_matches_its_record(path):
    text = path.read_text(encoding="utf-8")
    names = [m.group("name") for m in BLOCK.finditer(text)]
    assert names, f"{path.name} holds no rendered block"
    _, stale = render_text(text)
    assert not stale, f"{path.name}: blocks {stale} differ from their records; run python -m benchmarks.render"


def test_every_renderer_has_its_block_and_every_block_its_page_in_files():
    from benchmarks.render import ROOT

    placed = {m.group("name") for path in FILES for m in BLOCK.finditer(path.read_text(encoding="utf-8"))}
    assert set(RENDERERS) - placed == set(), "renderers no page shows (add the block, or drop the renderer)"
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    outside = [
        str(p.relative_to(ROOT)) for p in pages if p not in FILES and BLOCK.search(p.read_text(encoding="utf-8"))
    ]
    assert outside == [], "pages with rendered blocks that benchmarks.render never rewrites (add them to FILES)"


def test_a_changed_figure_is_caught_and_rewritten():
    text = "intro\n<!-- rendered: demo -->\nold figure 0.99\n<!-- /rendered -->\nafter\n"
    new, stale = render_text(text, {"demo": lambda: "new figure 0.88\n"})
    assert stale == ["demo"]
    assert new == "intro\n<!-- rendered: demo -->\nnew figure 0.88\n<!-- /rendered -->\nafter\n"
    assert render_text(new, {"demo": lambda: "new figure 0.88\n"})[1] == []
    with pytest.raises(KeyError, match="no renderer 'demo'"):
        render_text(text, {})
    assert set(RENDERERS) >= {"walkthrough", "quality-planted"}


def test_abridge_cuts_per_task_rows_and_keeps_the_rest():
    rows = [f"planted-{i:02d}   100    0.9{i % 10}00" for i in range(20)]
    output = "\n".join(["task  n  accuracy", *rows, "-----", "mean  2000  0.9"]) + "\n"
    assert abridge(output) == ["task  n  accuracy", rows[0], rows[1], "...  (18 more rows)", "-----", "mean  2000  0.9"]
    assert abridge("a\nb\nc\n", keep_tail=1) == ["...", "c"]


# ----------------------------------------------------------------------------- figures typed by hand: a ratchet
# Lines holding a figure (a decimal with two digits or more) outside every rendered block, per page, as of the last
# count. Console output shown in the guides counts too. The pins may only go down: a measured figure goes into a
# record and a rendered block, never into a page by hand (the research log, graph-prior.md, keeps its dated
# measurements of options since retired, which no longer run). Lower a pin when you move figures into records.
HAND_TYPED_FIGURE_LINES = {  # every other page: 0
    "docs/benchmarks.md": 21,
    "docs/graph-prior.md": 184,
    "docs/guide/adaptation.md": 1,
    "docs/guide/distributed.md": 1,
    "docs/guide/graph-view.md": 1,
    "docs/guide/merging-and-peft.md": 2,
    "docs/guide/routers.md": 1,
    "docs/methods.md": 3,
    "docs/new-tasks.md": 1,
}
FIGURE = re.compile(r"(?<![\w.])[+−-]?\d+\.\d{2,}(?![\w.])")


def figure_lines(text: str) -> int:
    """Lines of ``text`` outside rendered blocks that hold a figure."""
    return sum(1 for line in BLOCK.sub("", text).split("\n") if FIGURE.search(line))


def test_figure_lines_counts_outside_rendered_blocks_only():
    text = "a 0.95 here\n<!-- rendered: x -->\n0.97 ± 0.01\n<!-- /rendered -->\ntorch 2.13.0, 3 seeds, 1.2 ×\n"
    assert figure_lines(text) == 1


def test_no_page_gains_a_hand_typed_figure():
    from benchmarks.render import ROOT

    pages = {str(p.relative_to(ROOT)): p for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]}
    counts = {name: figure_lines(path.read_text(encoding="utf-8")) for name, path in pages.items()}
    grew = {
        n: (c, HAND_TYPED_FIGURE_LINES.get(n, 0)) for n, c in counts.items() if c > HAND_TYPED_FIGURE_LINES.get(n, 0)
    }
    assert not grew, (
        f"pages with more lines of hand-typed figures than pinned ((now, pinned)): {grew}; a measured figure goes into "
        "a record under benchmarks/results and a rendered block (benchmarks/render.py)"
    )
    fell = {n: (counts.get(n, 0), pin) for n, pin in HAND_TYPED_FIGURE_LINES.items() if counts.get(n, 0) < pin}
    assert not fell, f"fewer hand-typed figure lines than pinned ((now, pinned)): {fell}; lower the pins"


def test_no_record_or_page_names_this_machines_checkout():
    from benchmarks.render import RESULTS, ROOT

    files = [*sorted(RESULTS.glob("*.json")), ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    naming = [str(p.relative_to(ROOT)) for p in files if str(ROOT) in p.read_text(encoding="utf-8")]
    assert not naming, f"{naming} name the checkout's absolute path {str(ROOT)!r}; name paths as the user gave them"
