"""``taskgraph validate SPEC [SPEC ...]``: exit 0, or exit 2 with every problem listed."""

from __future__ import annotations

import argparse

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check spec files; list every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="YAML spec file(s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        print(f"{path}: ok ({len(spec.tasks)} tasks, router {spec.router.kind}, "
              f"{len(spec.relations.declared)} declared relations)")
    if problems:
        raise SpecError(problems)
    return 0
