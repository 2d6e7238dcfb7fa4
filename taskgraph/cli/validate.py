"""``taskgraph validate SPEC [SPEC ...]``: exit 0, or exit 2 with every problem listed.

Each spec is checked as ``taskgraph train`` checks it before its first step
(:func:`taskgraph.train.preflight.preflight`): the spec's fields, the model (built), its memory estimate, every
task's data (read and encoded), the sampler and optimizer. Nothing is trained, written or downloaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taskgraph.errors import SpecError
from taskgraph.spec import load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("validate", help="check spec files as train would before its first step; list every problem")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="YAML spec file(s)")
    p.add_argument(
        "--spec-only", action="store_true", help="check the spec's fields only (no model is built, no data read)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        summary = (
            f"{len(spec.tasks)} tasks, router {spec.router.kind}, {len(spec.relations.declared)} declared relations"
        )
        if not args.spec_only:
            from taskgraph import preflight  # torch and transformers: only for the full check

            found = preflight(spec, Path(path).parent)
            problems.extend(f"{path}: {p}" for p in found.problems)
            for note in found.notes:
                print(f"{path}: note: {note}")
            if not found.ok:
                continue
            if found.footprint is not None:
                fp = found.footprint
                summary += (
                    f"; model {fp.base_class}, {len(fp.adapted)} adapted modules, "
                    f"{fp.trainable_params:,} trainable parameters"
                )
        print(f"{path}: ok ({summary})")
    if problems:
        raise SpecError(problems)
    return 0
