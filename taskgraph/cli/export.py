"""``taskgraph export SPEC --format F --out PATH``: the task graph as GraphML, GEXF, DOT, JSON, ...

(Trained runs add learned relations and routing to the same exports; see ``taskgraph train``.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taskgraph.export import FORMATS, export_graph
from taskgraph.graph import TaskGraph
from taskgraph.spec import load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("export", help="write the task graph in a visualization / interchange format")
    p.add_argument("source", metavar="SPEC", help="a YAML spec file")
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--layers", type=int, default=None,
                   help="also draw L adapted layers with the spec's K skills each (default: tasks only)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.source)
    graph = TaskGraph.from_spec(spec)
    skills = spec.adapters.skills if args.layers else None
    nx_graph = graph.to_networkx(num_layers=args.layers, skills=skills)
    out = export_graph(nx_graph, args.format, Path(args.out))
    print(f"wrote {out} ({args.format}, {nx_graph.number_of_nodes()} nodes, {nx_graph.number_of_edges()} edges)")
    return 0
