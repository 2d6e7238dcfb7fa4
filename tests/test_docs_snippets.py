"""Every code block of the docs (``docs/**/*.md``) runs as written, or says why not — as the README's do
(tests/test_readme.py).

A page's blocks run in order in one work folder that holds copies of ``configs/`` and ``data/``:

- ``python``: run in a fresh interpreter;
- ``yaml``: a whole spec loads with :func:`taskgraph.spec.load_spec`; a fragment (some of a spec's sections) loads
  merged into a one-task spec;
- ``bash``: run by ``bash -euo pipefail``;
- ``console``: the ``$`` commands run in one shell, each printing the lines shown under it (a line ``...`` stands
  for any number of lines);
- ``json`` parses; ``text`` is output or prose and never runs.

A block may carry a mark instead (tests/snippets.py): ``<!-- file: NAME -->`` writes it to NAME for the blocks after
it; ``<!-- not-run: why -->`` skips it, though every ``taskgraph`` command in it must still parse against today's
CLI; ``<!-- tested: tests/FILE.py::TEST -->`` names the test that runs it, which must exist and name the page. A block
inside a ``<!-- rendered: NAME -->`` region is a results record's rendering, compared with its record by
tests/test_rendered_docs.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY_BERT
from tests.snippets import Block, console_steps, fenced_blocks, shell_commands, taskgraph_argv

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
RUNNERS = ("python", "yaml", "bash", "console", "json")
NEVER_RUN = ("text",)
COPIED = ("configs", "data")  # what a page's blocks may read, copied so that nothing they write lands in the repo
FRAGMENT_BASE = {
    "name": "docs",
    "model": {"config": TINY_BERT, "max_length": 16},
    "tasks": [{"name": "a", "num_labels": 2}],
}
TIMEOUT = 300
# What libraries log when they are imported, not the command's output: torch's glog-style warnings, the kernels an
# optional torchao cannot load on this machine
NOISE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ |^Failed to load .*: Could not load this library")


def where(page: Path, block: Block) -> str:
    return f"{page.relative_to(ROOT)}:{block.line}"


def page_blocks() -> list[tuple[Path, Block]]:
    return [(page, block) for page in PAGES for block in fenced_blocks(page.read_text(encoding="utf-8"))]


def page_runs(block: Block) -> bool:
    """Whether the page's run executes the block (or, marked ``file``, writes it)."""
    if block.rendered is not None:
        return False
    return block.language in RUNNERS if block.mark is None else block.mark[0] == "file"


def test_the_docs_have_blocks_and_every_block_is_run_or_marked() -> None:
    found = page_blocks()
    assert len(found) >= 10 and {b.language for _, b in found} >= {"python", "yaml", "console", "bash"}
    problems = []
    for page, block in found:
        at = where(page, block)
        kind, value = block.mark or ("", "")
        if kind == "not-run" and not value:
            problems.append(f"{at}: a not-run mark gives its reason: <!-- not-run: why -->")
        elif kind == "file" and (not value or Path(value).is_absolute() or ".." in Path(value).parts):
            problems.append(f"{at}: a file mark names a path inside the page's work folder, not {value!r}")
        elif kind == "tested":
            problems += problems_of_tested_mark(at, page, value)
        elif not kind and block.rendered is None and block.language not in RUNNERS + NEVER_RUN:
            problems.append(
                f"{at}: a ```{block.language or '(no language)'} block that no test runs: label it "
                f"({', '.join(RUNNERS + NEVER_RUN)}) or mark it <!-- not-run: why -->"
            )
    assert not problems, "\n".join(problems)


def problems_of_tested_mark(at: str, page: Path, value: str) -> list[str]:
    path, _, name = value.partition("::")
    test_file = ROOT / path
    if not path.startswith("tests/") or not test_file.is_file() or not name:
        return [f"{at}: <!-- tested: {value} --> names no test file (tests/FILE.py::TEST)"]
    source = test_file.read_text(encoding="utf-8")
    problems = [] if re.search(rf"^\s*def {re.escape(name)}\(", source, re.M) else [f"{at}: {path} has no {name}"]
    if str(page.relative_to(ROOT)) not in source:
        problems.append(f"{at}: {path} does not name {page.relative_to(ROOT)}, so it cannot be reading this block")
    return problems


def test_commands_of_blocks_not_run_still_parse_against_the_cli() -> None:
    from taskgraph.cli import build_parser

    parser = build_parser()
    problems, checked = [], 0
    for page, block in page_blocks():
        if block.mark is None or block.mark[0] != "not-run" or block.language not in ("bash", "console", "text", ""):
            continue
        commands = [c for c, _ in console_steps(block.body)] if block.language == "console" else []
        for command in commands or shell_commands(block.body):
            argv = taskgraph_argv(command)
            if argv is None:
                continue
            checked += 1
            with contextlib.redirect_stderr(io.StringIO()) as said:
                try:
                    parser.parse_args(argv)
                except Exception as exc:  # the CLI's usage error: "taskgraph train: unrecognized arguments: ..."
                    problems.append(f"{where(page, block)}: {command}\n    {exc}")
                except SystemExit:  # argparse's own exit (--help)
                    problems.append(f"{where(page, block)}: {command}\n    {said.getvalue().strip()}")
    assert checked, "no not-run block holds a taskgraph command (the check would test nothing)"
    assert not problems, "commands the CLI no longer takes:\n" + "\n".join(problems)


# ----------------------------------------------------------------------------- running a page
def shown_matches(shown: list[str], printed: str) -> bool:
    """Whether ``printed`` is what a console block shows: line for line, trailing spaces, blank lines and
    :data:`NOISE` aside, a line ``...`` standing for any number of lines."""
    while shown and not shown[-1].strip():
        shown = shown[:-1]
    pattern = "".join(r"(?:.*\n)*?" if line.strip() == "..." else re.escape(line.rstrip()) + r"\n" for line in shown)
    lines = [line.rstrip() for line in printed.rstrip("\n").splitlines() if not NOISE.match(line)]
    text = "".join(line + "\n" for line in lines) if printed.strip() else ""
    return re.fullmatch(pattern, text) is not None


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "TASKGRAPH_PROGRESS": "off",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }


def run_process(argv: list[str], work: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, cwd=work, env=environment(), capture_output=True, text=True, timeout=TIMEOUT
    )


def failure(done: subprocess.CompletedProcess[str]) -> str | None:
    return None if done.returncode == 0 else f"exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"


def run_python(block: Block, work: Path) -> str | None:
    return failure(run_process([sys.executable, "-"], work, stdin=block.body))


def run_bash(block: Block, work: Path) -> str | None:
    return failure(run_process(["bash", "-euo", "pipefail", "-c", block.body], work))


def run_console(block: Block, work: Path) -> str | None:
    steps = console_steps(block.body)
    if not steps:
        return "a console block with no $ command"
    sentinel = "@@docs-step@@"
    # each command's $? is the previous command's, as typed into one shell
    script = "exec 2>&1\n" + "".join(f"s=$?; echo {sentinel}; (exit $s); {command}\n" for command, _ in steps)
    printed = run_process(["bash", "-c", script], work).stdout.split(sentinel + "\n")[1:]
    for (command, shown), output in zip(steps, printed + [""] * (len(steps) - len(printed))):
        if not shown_matches(shown, output):
            return f"$ {command}\nshown:\n" + "\n".join(shown).rstrip() + "\nprinted:\n" + output.rstrip()
    return None


def run_yaml(block: Block, work: Path) -> str | None:
    from taskgraph.errors import TaskgraphError
    from taskgraph.spec import Spec, load_spec, spec_from_dict

    data = yaml.safe_load(block.body)
    try:
        if isinstance(data, dict) and {"name", "model", "tasks"} <= set(data):
            path = work.parent / f"spec-line-{block.line}.yaml"
            path.write_text(block.body, encoding="utf-8")
            load_spec(path)
        elif isinstance(data, dict) and data and set(data) <= set(Spec.model_fields):
            spec_from_dict(merged(FRAGMENT_BASE, data), source="the block merged into a one-task spec")
        else:
            return "a yaml block that is neither a spec nor some of a spec's sections: mark it <!-- not-run: why -->"
    except TaskgraphError as exc:
        return str(exc)
    return None


def merged(base: dict, fragment: dict) -> dict:
    out = dict(base)
    for key, value in fragment.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def run_json(block: Block, work: Path) -> str | None:
    try:
        json.loads(block.body)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return None


RUN_BY_LANGUAGE = {"python": run_python, "bash": run_bash, "console": run_console, "yaml": run_yaml, "json": run_json}
assert set(RUN_BY_LANGUAGE) == set(RUNNERS)
PAGES_THAT_RUN = [page for page in PAGES if any(page_runs(b) for b in fenced_blocks(page.read_text(encoding="utf-8")))]


@pytest.mark.parametrize("page", PAGES_THAT_RUN, ids=lambda p: str(p.relative_to(ROOT / "docs")))
def test_the_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name)
    for block in fenced_blocks(page.read_text(encoding="utf-8")):
        if not page_runs(block):
            continue
        if block.mark is not None:  # a file for the blocks after it
            (work / block.mark[1]).parent.mkdir(parents=True, exist_ok=True)
            (work / block.mark[1]).write_text(block.body, encoding="utf-8")
            continue
        problem = RUN_BY_LANGUAGE[block.language](block, work)
        assert problem is None, (
            f"{where(page, block)}: the ```{block.language} block does not run as written:\n{problem}"
        )


# ----------------------------------------------------------------------------- the machinery itself
def test_blocks_marks_and_regions_are_read_from_the_page() -> None:
    text = (
        "intro\n<!-- not-run: needs a GPU -->\n```bash\ntaskgraph train s.yaml --out r --device cuda\n```\n"
        "<!-- file: s.yaml -->\n\n```yaml\nname: x\n```\n"
        "<!-- rendered: demo -->\n```console\n$ taskgraph eval r\n```\n<!-- /rendered -->\n"
        "```\nplain\n```\n"
    )
    found = fenced_blocks(text)
    assert [(b.language, b.line, b.mark, b.rendered) for b in found] == [
        ("bash", 3, ("not-run", "needs a GPU"), None),
        ("yaml", 8, ("file", "s.yaml"), None),
        ("console", 12, None, "demo"),
        ("", 16, None, None),
    ]
    assert [page_runs(b) for b in found] == [False, True, False, False]
    assert taskgraph_argv("torchrun --nproc_per_node 2 -m taskgraph train s.yaml --out r  # two") == [
        "train",
        "s.yaml",
        "--out",
        "r",
    ]


def test_console_output_is_compared_line_for_line_with_ellipses() -> None:
    assert shown_matches(["a: ok", "...", "done", ""], "a: ok  \nx\ny\ndone\n")
    assert shown_matches(["a: ok", "..."], "a: ok\n")
    assert not shown_matches(["a: ok"], "a: failed\n")
    assert not shown_matches(["a: ok"], "a: ok\nmore\n")
    assert shown_matches([], "")
    noise = "W1207 11:19:46.643000 2609 torch/utils/_pytree.py:630] <enum 'K'> is an Enum subclass\n"
    assert shown_matches(["a: ok"], noise + "a: ok\n")
