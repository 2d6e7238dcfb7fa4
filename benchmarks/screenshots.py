"""The README's screenshots of the HTML view, made by headless Chromium from a run (or a synthetic graph).

    python docs/screenshots.py runs/planted-graph docs/view-planted-graph.png --task planted-05
    python docs/screenshots.py runs/real-text docs/view-real-text.png --task rt-polarity --compare vader-movies
    python docs/screenshots.py synthetic:1000 docs/view-synthetic-1000.png

Each exports the run's learned graph with ``taskgraph export RUN --format html`` (into a temporary folder),
opens it at 1400 x 900 with the panel of ``--task`` open (and ``--compare`` beside it), and saves the PNG.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from taskgraph.bench.browser import screenshot
from taskgraph.bench.view import synthetic_run_graph
from taskgraph.export import export_graph

SYNTHETIC = "synthetic:"
WINDOW = (1400, 900)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a run folder, or synthetic:T for a synthetic learned graph of T tasks")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--task", default=None, help="open this task's panel")
    parser.add_argument("--compare", default=None, help="and put this task beside it")
    args = parser.parse_args(argv)
    if args.source.startswith(SYNTHETIC):
        graph = synthetic_run_graph(int(args.source[len(SYNTHETIC) :]))
    else:
        from taskgraph.report import run_graph

        graph = run_graph(args.source)
    fragment = urlencode([(key, value) for key, value in (("task", args.task), ("compare", args.compare)) if value])
    with tempfile.TemporaryDirectory() as tmp:
        page = export_graph(graph, "html", Path(tmp) / "view.html")
        screenshot(page, args.png, fragment=fragment, window=WINDOW)
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
