"""Every figure block in the docs is what its committed record renders (:mod:`benchmarks.render`)."""

from __future__ import annotations

import pytest

from benchmarks.render import BLOCK, FILES, RENDERERS, abridge, render_text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_rendered_block_matches_its_record(path):
    text = path.read_text(encoding="utf-8")
    names = [m.group("name") for m in BLOCK.finditer(text)]
    assert names, f"{path.name} holds no rendered block"
    _, stale = render_text(text)
    assert not stale, f"{path.name}: blocks {stale} differ from their records; run python -m benchmarks.render"


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
