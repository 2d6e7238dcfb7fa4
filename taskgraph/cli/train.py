"""``taskgraph train SPEC --out RUN [--set key=value ...] [--resume] [--max-steps N] [--device cpu|cuda]``.

``--set`` changes spec fields before the run: ``--set training.steps=50 router.temperature=0.5``.
Keys are dotted paths (``tasks[0].num_labels`` or ``tasks.0.num_labels`` for list items); values
are read as YAML (``0.5``, ``true``, ``[query, value]``). The changed spec is validated whole
again. Relative data paths resolve against the spec file's folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path
from typing import Any

from taskgraph.cli.argtypes import positive_int
from taskgraph.errors import SpecError
from taskgraph.spec import Spec, load_spec, spec_from_dict
from taskgraph.spec.loader import parse_yaml

_PART = re.compile(r"^([^\[\]]+)((?:\[\d+\])*)$")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("train", help="train a spec into a run folder (checkpoints, log, best and final model)")
    p.add_argument("spec", metavar="SPEC", help="a YAML spec file")
    p.add_argument("--out", required=True, metavar="RUN", help="the run folder (new, or an interrupted run with --resume)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="change a spec field, e.g. training.steps=50 router.temperature=0.5")
    p.add_argument("--resume", action="store_true", help="continue RUN from its newest checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a previous run in RUN (only a folder that holds a taskgraph run)")
    p.add_argument("--max-steps", type=positive_int, default=None, metavar="N",
                   help="stop after step N (the schedule still spans training.steps); --resume goes on later")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where to train (default: cpu)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from taskgraph.report import write_run_plots  # torch and transformers load only when a run starts
    from taskgraph.train import train

    spec = spec_with_overrides(args.spec, args.overrides)
    if args.overwrite:
        clear_run(Path(args.out), resume=args.resume)
    result = train(spec, args.out, base_dir=Path(args.spec).parent, resume=args.resume,
                   max_steps=args.max_steps, device=args.device)
    plots = write_run_plots(result.run_dir, model=result.model)
    width = max(len(name) for name in result.final.acc)
    print(f"{'task':<{width}}  val accuracy")
    for name, acc in result.final.acc.items():
        print(f"{name:<{width}}  {acc:.4f}")
    print(f"{'mean':<{width}}  {result.final.mean_acc:.4f}")
    print(f"plots: {', '.join(str(p) for p in plots)}")
    best = "" if result.best_step is None else f" (best {result.best_mean_acc:.4f} at step {result.best_step})"
    status = "done" if result.completed else f"stopped at step {result.step} of {spec.training.steps}"
    print(f"{args.out}: {status}; {result.wall_time_s:.1f} s, {result.examples_per_s:.0f} examples/s; "
          f"val mean accuracy {result.final.mean_acc:.4f}{best}; model in {Path(args.out) / 'model'}")
    return 0


RUN_MARKERS = ("spec.yaml", "log.jsonl", "train.json", "checkpoints", "model")


def clear_run(run: Path, *, resume: bool) -> None:
    """Remove a previous taskgraph run at ``run`` (``--overwrite``); refuse anything that is not one."""
    if resume:
        raise SpecError(["--overwrite and --resume contradict each other: --resume continues RUN, "
                         "--overwrite starts it afresh; give one"])
    if not run.exists():
        return
    if not run.is_dir() or not any((run / name).exists() for name in RUN_MARKERS):
        raise SpecError([f"--overwrite: {str(run)!r} is not a taskgraph run folder (none of {list(RUN_MARKERS)} "
                         "is there); nothing was removed — give a run folder or a new --out"])
    shutil.rmtree(run)


def spec_with_overrides(path: str | Path, overrides: list[str]) -> Spec:
    """The spec file at ``path`` with every ``key=value`` of ``overrides`` applied, validated whole.

    Raises:
        SpecError: the file's own problems (``file:line: ...``), a malformed ``--set``, or the
            problems of the changed spec (``file with --set: dotted.path: ...``, no line numbers).
    """
    spec = load_spec(path)
    if not overrides:
        return spec
    data, _ = parse_yaml(Path(path).read_text(encoding="utf-8-sig"), str(path))
    for item in overrides:
        apply_override(data, item)
    return spec_from_dict(data, source=f"{path} with --set")


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``data[a][b]...`` from ``"a.b...=value"`` (value parsed as YAML); SpecError if it cannot."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError([f"--set {item!r}: write it as key=value, e.g. training.steps=100"])
    value, _ = parse_yaml(raw, f"--set {key}")
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string; a user means the number
    parts = _path(key, item)
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        here = _dotted(parts[:depth + 1])
        if isinstance(node, dict):
            part = str(part)
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            node = node[_index(node, part, _dotted(parts[:depth]), item)]
        if not isinstance(node, (dict, list)):
            raise SpecError([f"--set {item!r}: {here} is a {type(node).__name__} ({node!r}), not a section or list"])
    last = parts[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    else:
        node[_index(node, last, _dotted(parts[:-1]), item)] = value


def _path(key: str, item: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _PART.match(piece)
        if match is None:
            raise SpecError([f"--set {item!r}: cannot read the key {key!r}; write it like training.steps "
                             "or tasks[0].num_labels"])
        name, indices = match.groups()
        parts.append(int(name) if name.isdigit() else name)
        parts += [int(i) for i in re.findall(r"\d+", indices)]
    return parts


def _index(node: list[Any], part: str | int, where: str, item: str) -> int:
    if not isinstance(part, int):
        raise SpecError([f"--set {item!r}: {where} is a list; index it by number, e.g. {where}[0]"])
    if not 0 <= part < len(node):
        raise SpecError([f"--set {item!r}: {where} has {len(node)} items (indices 0..{len(node) - 1})"])
    return part


def _dotted(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + part)
    return out
