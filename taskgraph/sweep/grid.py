"""The grid of a sweep: ``--param KEY=v1,v2,...`` read, typed, expanded, and every cell validated up front.

    grid = build_grid("configs/planted.yaml", {"router.temperature": ["0.5", "1", "2"]}, seeds=3)
    for cell in grid.cells: ...          # 3 values × 3 seeds = 9 cells, each with its validated Spec

Keys are the dotted paths of ``taskgraph train --set`` (``training.steps``, ``tasks[0].num_labels`` or
``tasks.0.num_labels``); ``*`` at a list position means every item: ``tasks.*.data.seq_len`` sets the
field in every task. Values are YAML scalars, typed exactly as ``--set`` types them (``0.5``, ``1e-3``,
``null``, ``true``; a bracketed ``[query, value]`` is one value: commas split values only outside
brackets and quotes). Each value is applied alone to the spec file and validated, so a bad key or
value is reported naming its ``--param``, with the spec's own message (the allowed keys, the valid
range); then every cell (a combination of values, with ``training.seed`` set by the seed and
``training.steps`` capped by ``max_steps``) is validated, all problems reported at once.

Cells are the cartesian product of the values, in the order the params are given, times the seeds
``training.seed + i`` for ``i < seeds``. A cell's folder name (:attr:`Cell.slug`) reads as its
settings, e.g. ``router.temperature=0.5_seed=0``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskgraph.errors import SpecError
from taskgraph.spec import Spec, load_spec, spec_from_dict
from taskgraph.spec.loader import parse_yaml
from taskgraph.spec.overrides import apply_override

SEED_KEY, STEPS_KEY = "training.seed", "training.steps"
MAX_CELLS = 10_000  # trainings in one sweep: more is a typo (or a job for several --out folders)
MAX_SLUG = 120  # characters of a cell folder's readable name before it is cut and hashed
_WILDCARD = re.compile(r"^(.*?)(?:\.\*|\[\*\])(.*)$")  # the first ``.*`` or ``[*]`` of a key
_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")
_SET_PREFIX = re.compile(r"""^--set (?:'[^']*'|"[^"]*"|[^\s:]+)(?::\d+)?: """)


@dataclass(frozen=True)
class Param:
    """One swept field.

    Args:
        key: the key as given (``tasks.*.data.seq_len``).
        raw: the values as written.
        values: the values typed by YAML, as the spec receives them.
        keys: the concrete keys the wildcard expands to (``tasks[0].data.seq_len``, ...); ``(key,)`` without one.
    """

    key: str
    raw: tuple[str, ...]
    values: tuple[Any, ...]
    keys: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Param({self.key!r}, values={list(self.values)!r})"


@dataclass(frozen=True)
class Cell:
    """One training run of the sweep: a grid point (one value per param) and a seed.

    Args:
        point: ``((key, value), ...)`` in param order: the grid point, shared by its seeds.
        raw: the values as written, in param order.
        seed: ``training.seed`` of this cell.
        slug: the cell's folder name under ``OUT/cells/``.
        spec: the validated spec of the run.
    """

    point: tuple[tuple[str, Any], ...]
    raw: tuple[str, ...]
    seed: int
    slug: str
    spec: Spec

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.point)

    def label(self) -> str:
        """``router.temperature=0.5 seed=0``: how the cell is named in messages."""
        return " ".join([f"{k}={r}" for (k, _), r in zip(self.point, self.raw)] + [f"seed={self.seed}"])

    def __repr__(self) -> str:
        return f"Cell({self.slug!r})"


@dataclass(frozen=True)
class Grid:
    """Every cell of a sweep, validated.

    Args:
        spec_path: the spec file.
        base: the spec file's own spec (no param applied).
        params: the swept fields, in the order given.
        seeds: the seeds of every grid point.
        max_steps: the cap on ``training.steps`` (None: none).
        cells: grid points × seeds, grid points in product order, seeds innermost.
    """

    spec_path: Path
    base: Spec
    params: tuple[Param, ...]
    seeds: tuple[int, ...]
    max_steps: int | None
    cells: tuple[Cell, ...]

    def points(self) -> list[tuple[tuple[str, Any], ...]]:
        """The distinct grid points, in order (values may be lists: compared by their repr)."""
        return list({repr(cell.point): cell.point for cell in self.cells}.values())

    def __repr__(self) -> str:
        return f"Grid(params={list(self.params)!r}, seeds={list(self.seeds)}, cells={len(self.cells)})"


# ----------------------------------------------------------------------------- reading --param
def split_values(text: str) -> list[str]:
    """``"0.5,1,[a, b]"`` → ``["0.5", "1", "[a, b]"]``: commas split outside brackets, braces and quotes."""
    out, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        current += char
    out.append(current.strip())
    return out


def parse_param(text: str) -> tuple[str, list[str]]:
    """``"router.temperature=0.5,1,2"`` → ``("router.temperature", ["0.5", "1", "2"])``; SpecError if malformed."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise SpecError([f"--param {text!r}: write it as KEY=v1,v2,..., e.g. router.temperature=0.5,1,2"])
    return key, split_values(values)


def typed_value(raw: str) -> Any:
    """A value as ``--set`` types it (YAML; ``1e-3`` is the number)."""
    scratch: dict[str, Any] = {}
    apply_override(scratch, f"value={raw}")
    return scratch["value"]


def expand_key(data: Mapping[str, Any], key: str) -> list[str]:
    """The concrete keys of ``key``: each ``*`` (``.*`` or ``[*]``) replaced by every index of that list.

    Raises:
        SpecError: the part before a ``*`` is not a list in ``data``.
    """
    match = _WILDCARD.match(key)
    if match is None:
        return [key]
    prefix, rest = match.groups()
    node: Any = data
    for index, name in _TOKEN.findall(prefix):
        node = _child(node, int(index) if index else (int(name) if name.isdigit() else name))
    if not prefix or not isinstance(node, list) or not node:
        where = prefix or "(top level)"
        message = (
            f"--param {key}: '*' stands for every item of a list, but {where!r} is not a non-empty "
            "list in the spec; e.g. tasks.*.data.seq_len sets it in every task"
        )
        raise SpecError([message])
    return [k for i in range(len(node)) for k in expand_key(data, f"{prefix}[{i}]{rest}")]


def _child(node: Any, step: str | int) -> Any:
    """``node[step]`` for a dict key or a list index that is there; None otherwise."""
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return None


# ----------------------------------------------------------------------------- the grid
def build_grid(
    spec_path: str | os.PathLike[str],
    params: Mapping[str, Sequence[str]],
    *,
    seeds: int = 1,
    max_steps: int | None = None,
) -> Grid:
    """Read ``spec_path``, type and expand ``params``, and validate every cell's spec.

    Args:
        spec_path: the YAML spec file.
        params: ``{key: [raw value, ...]}`` in sweep order (the ``--param`` options).
        seeds: seeds per grid point: ``training.seed + i`` for ``i < seeds``.
        max_steps: cap ``training.steps`` of every cell at this (None: no cap).

    Raises:
        SpecError: the spec file's own problems; every bad param, value or cell at once, each
            naming its ``--param`` (or the cell) and saying what is allowed.
    """
    path = Path(spec_path)
    base = load_spec(path)
    data, _ = parse_yaml(path.read_text(encoding="utf-8-sig"), str(path))
    problems: list[str] = []
    if seeds < 1:
        problems.append(f"--seeds must be at least 1, got {seeds}")
    if max_steps is not None and max_steps < 1:
        problems.append(f"--max-steps must be at least 1, got {max_steps}")
    if not params:
        problems.append("give at least one --param KEY=v1,v2,... (e.g. router.temperature=0.5,1,2)")
    swept: list[Param] = []
    for key, raws in params.items():
        param = _read_param(path, data, key, list(raws), problems)
        if param is not None:
            swept.append(param)
    total = math.prod(len(p.values) for p in swept) * seeds
    if total > MAX_CELLS:
        problems.append(
            f"the grid has {total:,} cells (values of every --param multiplied, times --seeds {seeds}); "
            f"a sweep runs at most {MAX_CELLS:,}: sweep fewer values at once"
        )
    if problems:
        raise SpecError(problems)

    seed_list = tuple(base.training.seed + i for i in range(seeds))
    cells: list[Cell] = []
    for combo in itertools.product(*(range(len(p.values)) for p in swept)):
        point = tuple((p.key, p.values[i]) for p, i in zip(swept, combo))
        raw = tuple(p.raw[i] for p, i in zip(swept, combo))
        for seed in seed_list:
            cell_data = copy.deepcopy(data)
            for p, i in zip(swept, combo):
                for key in p.keys:
                    apply_override(cell_data, f"{key}={p.raw[i]}")
            apply_override(cell_data, f"{SEED_KEY}={seed}")
            label = " ".join([f"--param {k}={r}" for (k, _), r in zip(point, raw)] + [f"seed {seed}"])
            try:
                spec = spec_from_dict(cell_data, source=f"{path} with {label}")
                if max_steps is not None and spec.training.steps > max_steps:
                    apply_override(cell_data, f"{STEPS_KEY}={max_steps}")
                    spec = spec_from_dict(cell_data, source=f"{path} with {label}, --max-steps {max_steps}")
            except SpecError as exc:
                problems += exc.problems
                continue
            cells.append(Cell(point, raw, seed, cell_slug(point, raw, seed), spec))
    if problems:
        raise SpecError(sorted(set(problems), key=problems.index))
    _check_unique_slugs(cells)
    return Grid(path, base, tuple(swept), seed_list, max_steps, tuple(cells))


def _read_param(path: Path, data: dict[str, Any], key: str, raws: list[str], problems: list[str]) -> Param | None:
    """Type, expand and validate one ``--param``, alone on the spec; its problems go to ``problems``."""
    before = len(problems)
    if key in (SEED_KEY, "training[seed]"):
        problems.append(
            f"--param {key}: the seeds are set by --seeds N (training.seed + 0 .. N-1); set the first one in the spec"
        )
    empty = [i for i, raw in enumerate(raws) if not raw.strip()]
    if not raws or empty:
        problems.append(
            f"--param {key}: value {empty[0] + 1 if empty else 1} is empty; give values as "
            "KEY=v1,v2,... (write null for none)"
        )
    if len(problems) > before:
        return None
    try:
        keys = expand_key(data, key)
    except SpecError as exc:
        problems += exc.problems
        return None
    values = []
    for raw in raws:
        try:
            values.append(typed_value(raw))
        except SpecError as exc:
            problems += [f"--param {key}: value {raw!r}: {_unset(p)}" for p in exc.problems]
    if len(problems) > before:
        return None
    for i, value in enumerate(values):
        twin = next(
            (j for j in range(i) if values[j] == value and isinstance(values[j], bool) == isinstance(value, bool)), None
        )
        if twin is not None:
            problems.append(f"--param {key}: value {raws[i]!r} repeats {raws[twin]!r}; give each value once")
    for raw in raws:
        trial = copy.deepcopy(data)
        try:
            for concrete in keys:
                apply_override(trial, f"{concrete}={raw}")
            spec_from_dict(trial, source=f"{path} with --param {key}={raw}")
        except SpecError as exc:
            found = [p if p.startswith(f"{path} with") else f"--param {key}: {_unset(p)}" for p in exc.problems]
            problems += [p for p in found if p not in problems]
    if len(problems) > before:
        return None
    return Param(key, tuple(raws), tuple(values), tuple(keys))


def _unset(problem: str) -> str:
    """A ``--set`` message without its ``--set 'key=value':`` opening (the caller names the --param)."""
    return _SET_PREFIX.sub("", problem)


# ----------------------------------------------------------------------------- cell folder names
def safe_name(text: str) -> str:
    """``text`` for a file name: ``*`` → ``all``, anything but letters, digits and ``._+=-`` → ``-``."""
    return _UNSAFE.sub("-", text.replace("*", "all"))


def cell_slug(point: Sequence[tuple[str, Any]], raw: Sequence[str], seed: int) -> str:
    """``router.temperature=0.5_training.label_noise=0.1_seed=0``.

    When a value had to be changed to fit a file name, or the name is longer than :data:`MAX_SLUG`,
    the readable part is cut and the sha256 of the exact settings appended, so names never collide.
    """
    exact = "_".join([f"{key}={value}" for (key, _), value in zip(point, raw)] + [f"seed={seed}"])
    readable = "_".join(
        [f"{safe_name(key)}={safe_name(value)}" for (key, _), value in zip(point, raw)] + [f"seed={seed}"]
    )
    changed = any(safe_name(value) != value for value in raw)
    if not changed and len(readable) <= MAX_SLUG:
        return readable
    digest = hashlib.sha256(exact.encode()).hexdigest()[:10]
    return f"{readable[:MAX_SLUG]}_{digest}"


def _check_unique_slugs(cells: Sequence[Cell]) -> None:
    seen: dict[str, Cell] = {}
    for cell in cells:
        if cell.slug in seen:  # cannot happen for distinct settings; guards the invariant
            message = (
                f"cells {seen[cell.slug].label()!r} and {cell.label()!r} share the folder name "
                f"{cell.slug!r}; give the values in a different spelling"
            )
            raise SpecError([message])
        seen[cell.slug] = cell
