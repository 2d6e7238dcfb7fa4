"""``python -m benchmarks view [--tasks 20 200 1000] [--repeats 3] [--json OUT]``: how fast the HTML view is ready.

A synthetic learned graph per T is exported as HTML and loaded in headless Chromium; the figure is the page's
time to interactive (see :mod:`benchmarks.view`). Needs Chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse

from benchmarks.cli.argtypes import bounded, output_path
from benchmarks.cli.output import json_checked, progress, report

DEFAULT_TASKS = (20, 200, 1_000)
MAX_VIEW_TASKS = 10_000  # the largest supported T; its export alone takes ~15 s on one core, its page load more
view_tasks = bounded(1, MAX_VIEW_TASKS, "tasks the view bench draws; larger pages take minutes per load")
view_repeats = bounded(1, 100, "page loads per T")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "view",
        help="time to interactive of the HTML graph view in headless Chromium, T = 20 ... 1,000",
        description="A synthetic learned graph per T, exported as HTML and loaded in headless Chromium in real "
        "time (see benchmarks.view).",
    )
    p.add_argument(
        "--tasks",
        type=view_tasks,
        nargs="+",
        default=list(DEFAULT_TASKS),
        help=f"task counts T, at most {MAX_VIEW_TASKS:,} (default: 20 200 1000)",
    )
    p.add_argument("--repeats", type=view_repeats, default=3, help="page loads per T; the median counts (default: 3)")
    p.add_argument(
        "--json", metavar="OUT", type=output_path, default=None, help="also write every figure to this JSON file"
    )
    p.set_defaults(run=json_checked(run))


def run(args: argparse.Namespace) -> int:
    from benchmarks.view import render_view_markdown, time_view

    result = time_view(list(args.tasks), repeats=args.repeats, progress=progress)
    return report(result, render_view_markdown(result), args.json)
