"""A generative task's ``template``: the input text built from a row's fields, ``"Question: {question}\\nAnswer:"``.

A slot is a field name in braces; ``{{`` and ``}}`` are literal braces. Only plain names are slots: no
positional ``{}``, no attribute or index access (``{a.b}``, ``{a[0]}``) and no conversion or format spec
(``{a!r}``, ``{a:>8}``), so a template reads values and never reaches into them.

    fields = template_fields("Review: {text} Sentiment:")        # ['text']
    render("Review: {text} Sentiment:", {"text": "great"})        # 'Review: great Sentiment:'
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

_FORMATTER = string.Formatter()


def template_fields(template: str) -> list[str]:
    """The slot names of ``template`` in order (each once); ValueError naming a slot that is not a plain name."""
    names: list[str] = []
    try:
        parts = list(_FORMATTER.parse(template))
    except ValueError as exc:  # a lone "{" or "}"
        raise ValueError(f"template {template[:60]!r}: {exc}; write a literal brace as '{{{{' or '}}}}'") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"template slot {shown!r}: a slot is a field name in braces, e.g. '{{text}}' "
                "(no positions, attributes, indexes, conversions or format specs)"
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(
            f"template {template[:60]!r} has no '{{field}}' slot; name the field(s) the input is built from"
        )
    return names


def render(template: str, record: Mapping[str, Any]) -> str:
    """``template`` with every slot replaced by ``str(record[slot])``; KeyError for a slot the record lacks."""
    out: list[str] = []
    for literal, name, _, _ in _FORMATTER.parse(template):
        out.append(literal)
        if name is not None:
            out.append(str(record[name]))
    return "".join(out)
