"""Reading and writing spec files: safe YAML with line numbers, bounded size, every problem at once.

The YAML is composed into nodes with PyYAML's *safe* machinery (no tag can construct a Python
object), checked for size, depth and tags, then validated by :class:`Spec`. Every problem is reported
as ``file:line: dotted.path: message``.

Limits. A spec file holds at most :data:`MAX_BYTES` and :data:`MAX_NODES` written values (a 10,000-task
spec is about 130,000), nested at most :data:`MAX_DEPTH` deep. Aliases count as often as they are expanded
and may add at most :data:`MAX_ALIAS_VALUES` values to what is written, so an alias bomb ("billion laughs")
is refused before anything is built. A scalar that cannot be built (an integer of more than 4,300 digits,
which Python refuses to convert; a date such as ``2024-13-45``) is reported with its line. A byte-order
mark is allowed; the path must be a regular file (a FIFO would block the read; a folder, a symlink loop or
a broken symlink is named as what it is).
"""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from taskgraph.errors import SpecError, TaskgraphWarning
from taskgraph.files import describe
from taskgraph.spec.models import RENAMED_ADAPTER_KEY, Spec

MAX_BYTES = 32 * 1024 * 1024  # a spec is a few KB, a 10,000-task one a few MB
MAX_NODES = 2_000_000  # written values (mappings, lists, keys and scalars)
MAX_ALIAS_VALUES = 100_000  # values that aliases may add to the written ones
MAX_DEPTH = 64
MAX_INT_DIGITS = 4300  # Python's int-string conversion limit (sys.get_int_max_str_digits)
_SAFE_TAGS = {
    "tag:yaml.org,2002:" + t
    for t in (
        "str",
        "int",
        "float",
        "bool",
        "null",
        "map",
        "seq",
        "timestamp",
        "binary",
        "omap",
        "pairs",
        "set",
        "merge",
    )
}

Loc = tuple[Any, ...]
# libyaml's parser when PyYAML has it (a 10,000-task spec composes in seconds, not half a minute); both
# build nodes with line marks and only the safe constructor
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate a spec file.

    Raises:
        SpecError: listing every problem as ``file:line: dotted.path: message``.
    """
    source = str(path)
    text = _read_text(Path(path))
    data, lines = parse_yaml(text, source)
    spec = spec_from_dict(data, source=source, lines=lines)
    adapters = data.get("adapters") if isinstance(data, dict) else None
    if isinstance(adapters, dict) and RENAMED_ADAPTER_KEY in adapters:
        line = lines.get(("adapters", RENAMED_ADAPTER_KEY), lines.get(("adapters",), 1))
        warnings.warn(
            TaskgraphWarning(
                f"{source}:{line}: adapters.heads is now adapters.splits (the splits of MHR; "
                "'heads' means the classification heads); the old key still works"
            ),
            stacklevel=2,
        )
    return spec


def spec_from_dict(data: Any, *, source: str = "<spec>", lines: dict[Loc, int] | None = None) -> Spec:
    """Validate a plain dict as a :class:`Spec`, raising :class:`SpecError` with every problem."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise SpecError([f"{source}:1: the spec is {kind}; expected a mapping with 'model' and 'tasks'"])
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_problems(exc, data, source, lines or {})) from None


def dump_spec(spec: Spec) -> str:
    """The spec as YAML text (loading it back gives an equal spec)."""
    data = spec.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100)


def _read_text(path: Path) -> str:
    where = str(path)
    problem = describe(path)
    if problem == "does not exist":
        raise SpecError([f"{where}: no such file"])
    if problem == "is a directory, not a file":
        raise SpecError([f"{where}: is a directory; give the path of a .yaml spec file"])
    if problem is not None:
        raise SpecError([f"{where}: {problem}; give the path of a .yaml spec file"])
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError([f"{where}: file is {size:,} bytes; a spec may be at most {MAX_BYTES:,}"])
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError([f"{where}: cannot read: {exc.strerror or exc}"]) from None
    if b"\x00" in raw:
        raise SpecError([f"{where}: not a text file (it contains NUL bytes); a spec is UTF-8 YAML"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([f"{where}: not UTF-8 text (bad byte at offset {exc.start}); a spec is UTF-8 YAML"]) from None


def parse_yaml(text: str, source: str = "<spec>") -> tuple[Any, dict[Loc, int]]:
    """Safe-load one YAML document; return the data and a map from key path to 1-based line."""
    _check_unicode(text, f"{source}: the text")
    loader = None
    try:
        loader = _SafeLoader(text)  # the reader rejects control characters here
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_nodes(loader, root, source)
        lines: dict[Loc, int] = {}
        _record_lines(root, (), lines)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if "maximum nesting depth" in what:  # libyaml's own limit, below ours
            raise SpecError([f"{source}:{line}: nesting is too deep (at most {MAX_DEPTH} levels)"]) from None
        raise SpecError([f"{source}:{line}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) and the like
        raise SpecError([f"{source}: not readable as YAML: {exc}"]) from None
    except RecursionError:
        raise SpecError([f"{source}: nesting is too deep (at most {MAX_DEPTH} levels)"]) from None
    except _BUILD_ERRORS as exc:  # a value PyYAML cannot build
        raise SpecError([f"{source}: a value cannot be read ({type(exc).__name__}: {str(exc)[:200]})"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines


def _check_nodes(loader: yaml.SafeLoader, root: yaml.Node, source: str) -> None:
    """Reject unsafe tags, deep nesting, more than ``MAX_NODES`` written values, aliases that add more than
    ``MAX_ALIAS_VALUES`` values, and scalars that cannot be built (:func:`_check_scalar`)."""
    sizes: dict[int, int] = {}

    def visit(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise SpecError([f"{source}:{node.start_mark.line + 1}: nesting is too deep (at most {MAX_DEPTH} levels)"])
        if node.tag not in _SAFE_TAGS:
            raise SpecError(
                [
                    f"{source}:{node.start_mark.line + 1}: tag {node.tag!r} is not allowed; "
                    "a spec holds plain mappings, lists, strings and numbers"
                ]
            )
        if id(node) in sizes:  # an alias: counted again, computed once
            return sizes[id(node)]
        size = 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                size += visit(key, depth + 1) + visit(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                size += visit(item, depth + 1)
        else:
            _check_scalar(loader, node, source)
        sizes[id(node)] = size
        if len(sizes) > MAX_NODES:
            raise SpecError(
                [
                    f"{source}:{node.start_mark.line + 1}: the spec holds more than {MAX_NODES:,} values; "
                    "split it, or generate the task list in Python (taskgraph.spec.spec_from_dict)"
                ]
            )
        # the written values seen so far bound those below this node, so this underestimates what aliases
        # added below it: never a false alarm, and the root's check is exact
        if size - len(sizes) > MAX_ALIAS_VALUES:
            raise SpecError(
                [
                    f"{source}:{node.start_mark.line + 1}: through aliases the document expands to more "
                    f"than {MAX_ALIAS_VALUES:,} values beyond those written (an alias bomb?); write the "
                    "values out, or use fewer aliases of large sections"
                ]
            )
        return size

    visit(root, 0)


def _check_scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode, source: str) -> None:
    """SpecError with the line for a scalar that cannot be built (an integer past Python's digit limit, an
    impossible date, an explicit tag the text does not fit: ``!!int abc``), where ``construct_document`` would
    raise a bare ``ValueError`` or ``KeyError``, and for text that is not valid Unicode."""
    value, tag = node.value, node.tag
    if not value.isascii():
        _check_unicode(value, f"{source}:{node.start_mark.line + 1}: the value")
    kind = tag[tag.rfind(":") + 1 :]
    if kind not in _BUILT:
        return
    line = node.start_mark.line + 1
    if kind == "int" and len(value) > MAX_INT_DIGITS and sum(c.isdigit() for c in value) > MAX_INT_DIGITS:
        raise SpecError(
            [
                f"{source}:{line}: an integer of {sum(c.isdigit() for c in value):,} digits; taskgraph "
                f"reads integers of at most {MAX_INT_DIGITS:,} digits (and every field bounds its own range)"
            ]
        )
    # a date can be impossible (2024-13-45); an explicit tag can name what the text is not (!!int abc)
    if kind == "timestamp" or loader.resolve(yaml.ScalarNode, value, (True, False)) != tag:
        try:
            loader.construct_object(node)
        except _BUILD_ERRORS:
            raise SpecError([f"{source}:{line}: {value[:40]!r} cannot be read as {_BUILT[kind]}"]) from None


# what PyYAML's scalar constructors raise for text they cannot build (!!int '' is an IndexError)
_BUILD_ERRORS = (ValueError, OverflowError, KeyError, AttributeError, TypeError, IndexError)
_BUILT = {"int": "an integer", "float": "a number", "bool": "true or false", "timestamp": "a date"}  # parsed scalars


def _check_unicode(text: str, what: str) -> None:
    """SpecError when ``text`` holds a lone surrogate (a ``"\\ud800"`` escape, or bytes that were not UTF-8 in a
    command-line argument): no file name, task name or tokenizer can use it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            [
                f"{what} holds {text[exc.start]!r} (U+{ord(text[exc.start]):04X}) at character "
                f"{exc.start + 1}, a lone surrogate that is not valid Unicode text"
            ]
        ) from None


def _record_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int]) -> None:
    """A key's path maps to the key's line; a list item's path to the item's line."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines.setdefault(path + (key.value,), key.start_mark.line + 1)
                _record_lines(value, path + (key.value,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, path + (i,), lines)


def format_problems(exc: ValidationError, data: Any, source: str, lines: dict[Loc, int]) -> list[str]:
    """One ``file:line: dotted.path: message`` string per error, in document order."""
    rows: list[tuple[int, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden" and loc:
            message = _unknown_key_message(loc, data)
        elif err["type"] == "missing":
            message = "required field is missing"
        elif _shows_value(err):
            message = f"{message} (got {err['input']!r})"
        line = _line_of(loc, lines)
        where = f"{source}:{line}" if line else source
        rows.append((line or 0, f"{where}: {dotted(loc) or '(top level)'}: {message}"))
    rows.sort(key=lambda r: r[0])
    return [text for _, text in rows]


def _shows_value(err: Any) -> bool:
    """Whether the offending value is short and helpful to show beside pydantic's message."""
    value = err.get("input")
    return (
        isinstance(value, (int, float, str, bool))
        and len(repr(value)) <= 40
        and (err["type"].startswith(("greater", "less", "literal", "string_pattern", "int_", "float_", "bool_")))
    )


def dotted(loc: Loc) -> str:
    """``("tasks", 1, "num_labels")`` → ``tasks[1].num_labels``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _unknown_key_message(loc: Loc, data: Any) -> str:
    key = str(loc[-1])
    allowed = _allowed_keys(loc[:-1], data)
    if not allowed:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r}; {hint}allowed keys are {sorted(allowed)}"


def _allowed_keys(loc: Loc, data: Any) -> list[str]:
    """The field names of the section at ``loc``, following the Spec's own model classes."""
    from taskgraph.registry import ROUTERS, SOURCES

    model: Any = Spec
    node: Any = data
    for part in loc:
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        if isinstance(part, int):
            continue  # a list item: the model is the item type, already selected
        field = model.model_fields.get(part) if _is_model(model) else None
        if field is None:
            model = None
            break
        model = _model_of(field.annotation)
    if not _is_model(model):
        return []
    names = list(model.model_fields)
    if model.model_config.get("extra") == "allow":  # router / data: the kind's own params too
        registry, key = (ROUTERS, "kind") if "kind" in names else (SOURCES, "source")
        kind = node.get(key) if isinstance(node, dict) else None
        if isinstance(kind, str) and kind in registry and registry.params_of(kind) is not None:
            names += list(registry.params_of(kind).model_fields)
    return names


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``X | None`` or ``list[X]``, else None."""
    if _is_model(annotation):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None
