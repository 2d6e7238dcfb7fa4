"""``taskgraph export SPEC|RUN --format F [--task NAME] --out PATH [--threads N]``: the task graph as GraphML, GEXF, DOT, ...

- ``SPEC`` (a YAML file): the declared graph — tasks and declared relations, and with ``--layers L``
  the adapter inventory (L layers × the spec's K skills, uniform ``uses`` weights).
- ``RUN`` (a folder: a training run with ``RUN/model/``, or a model folder such as ``RUN/best``): the
  learned graph of :func:`taskgraph.report.run_graph` — each task's routing on its ``uses`` edges,
  its gates ``gate_l<l>`` and summaries on its node, the relation weights on ``relates`` edges.

``--task NAME`` keeps that task's neighbourhood only (:func:`taskgraph.report.task_view`).

``--format peft`` is a model export, not a graph: ``RUN`` only, ``--task NAME`` (``--out`` is the adapter
folder) or ``--all-tasks`` (``--out/<task>/``), written by :func:`taskgraph.export.peft.export_peft`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taskgraph.cli.argtypes import layers
from taskgraph.cli.threads import add_threads_option, apply_threads
from taskgraph.errors import ExportError
from taskgraph.export import FORMATS, check_relations_target, export_graph
from taskgraph.run_folder import check_output_file
from taskgraph.spec import load_spec


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "export", help="write the task graph (declared, or learned by a run) in a visualization / interchange format"
    )
    p.add_argument(
        "source",
        metavar="SPEC|RUN",
        help="a YAML spec file, a run folder (taskgraph train --out RUN) or a model folder (RUN/best)",
    )
    p.add_argument(
        "--format",
        required=True,
        choices=(*FORMATS, "peft"),
        help="output format (peft: the task's LoRA as a PEFT adapter folder, RUN only)",
    )
    p.add_argument("--out", required=True, help="output file (peft: output folder)")
    p.add_argument(
        "--task",
        default=None,
        metavar="NAME",
        help="show only this task's neighbourhood: its relations and its routing",
    )
    p.add_argument(
        "--layers",
        type=layers,
        default=None,
        help="SPEC only: also draw L adapted layers with the spec's K skills each (default: tasks "
        "only); a run has its own layers",
    )
    p.add_argument("--all-tasks", action="store_true", help="peft: one adapter folder per task, --out/<task>/")
    add_threads_option(p)  # a run's model is read with torch; a spec's graph needs none
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if args.format == "peft":
        return run_peft(args, source)
    if args.all_tasks:
        raise ExportError(f"--all-tasks is for --format peft (one adapter folder per task), not {args.format}")
    check_output_file(args.out, sources=[source])
    if args.format == "png":  # the heatmap beside --out: checked like --out, and never over a file not taskgraph's
        check_output_file(check_relations_target(args.out), what="the relation heatmap beside --out", sources=[source])
    if source.is_dir():
        from taskgraph.report import run_graph  # imports torch and transformers: only when a run is read

        apply_threads(args)
        if args.layers is not None:
            raise ExportError(
                f"--layers is for spec files; {str(source)!r} is a folder (a trained run or "
                f"model), whose graph has the adapted layers it was trained with"
            )
        nx_graph = run_graph(source)
        what = "learned graph"
    else:
        from taskgraph.graph import TaskGraph  # networkx: imported when a graph is built

        spec = load_spec(source)
        skills = spec.adapters.skills if args.layers else None
        nx_graph = TaskGraph.from_spec(spec).to_networkx(num_layers=args.layers, skills=skills)
        what = "declared graph"
    if args.task is not None:
        from taskgraph.report import task_view

        nx_graph = task_view(nx_graph, args.task)
        what += f" around task {args.task!r}"
    out = export_graph(nx_graph, args.format, Path(args.out))
    print(
        f"wrote {out} ({args.format}, {what}: {nx_graph.number_of_nodes()} nodes, {nx_graph.number_of_edges()} edges)"
    )
    return 0


def run_peft(args: argparse.Namespace, source: Path) -> int:
    """``--format peft``: the run's task(s) as PEFT LoRA folders."""
    if not source.is_dir():
        raise ExportError(f"--format peft exports a trained model: give a run folder, not {str(source)!r}")
    if (args.task is None) == (not args.all_tasks):
        raise ExportError("--format peft: give --task NAME (one adapter folder) or --all-tasks (one folder per task)")
    if args.layers is not None:
        raise ExportError("--layers is for graph formats of spec files, not --format peft")
    from taskgraph.export import export_peft  # imports torch: only when a model is exported

    apply_threads(args)

    done = export_peft(source, args.out, tasks=None if args.all_tasks else [args.task])
    ranks = ", ".join(f"{t} r={r}" for t, r in done.ranks.items())
    print(
        f"wrote {args.out} (peft: {len(done.tasks)} adapter folder{'s' if len(done.tasks) > 1 else ''}: {ranks}; "
        f"base {as_given(done.base, done.out, args.out)})"
    )
    return 0


def as_given(path: str, out: Path, given: str) -> str:
    """``path`` as the user would write it: below the export folder, under the ``--out`` they gave (never the
    machine's absolute path to it); elsewhere, as it is."""
    try:
        inside = Path(path).resolve().relative_to(Path(out).resolve())
    except ValueError:
        return path
    return str(Path(given) / inside)
