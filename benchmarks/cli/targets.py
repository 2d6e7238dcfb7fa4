"""``python -m benchmarks targets RECORD.json [...]``: the research targets judged on ``taskgraph bench`` records.

A record is the JSON of ``taskgraph bench speed|lm|scale --json OUT`` (or ``speed --ops``); the verdicts come from
its figures (:mod:`benchmarks.targets`). Exit 0 whatever the verdicts; 2 for a record that cannot be read.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.cli.argtypes import output_path
from benchmarks.cli.output import json_checked, report
from benchmarks.record_io import RecordError, read_record


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "targets",
        help="the research targets judged on taskgraph bench speed|lm|scale records (--json files)",
        description="Judge the research targets on the records `taskgraph bench speed|lm|scale --json OUT` wrote "
        "(see benchmarks.targets).",
    )
    p.add_argument("records", nargs="+", metavar="RECORD", help="a JSON file written by taskgraph bench ... --json")
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every verdict to this JSON file"
    )
    p.set_defaults(run=json_checked(run))


def run(args: argparse.Namespace) -> int:
    from benchmarks.targets import TargetsError, evaluate, render_targets

    verdicts: dict[str, list[dict[str, Any]]] = {}
    parts = []
    for path in args.records:
        record = read_record(path, "bench record")
        try:
            verdicts[path] = evaluate(record)
        except TargetsError as exc:
            raise RecordError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(
                f"{path}: not a complete taskgraph bench {record.get('bench')} record ({exc!r})"
            ) from None
        parts.append(f"{path}\n\n{render_targets(record['bench'], verdicts[path])}")
    return report({"targets": verdicts}, "\n".join(parts), args.json)
