"""The documentation site (mkdocs.yml) builds with ``mkdocs build --strict`` — no broken link or anchor, no missing
reference, no docstring the API reference cannot read — and its API reference documents every public name.

The toolchain is the ``docs`` extra (pinned in pyproject.toml, installed by .ci/run); without it these tests skip.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import taskgraph

for _module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx"):
    pytest.importorskip(_module, reason="the docs toolchain is not installed: pip install -e '.[docs]'")

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = re.compile(r'\bid="(taskgraph[\w.]*)"')


def public_packages() -> dict[str, object]:
    """taskgraph's stage packages that declare a public API (an ``__all__``), by name."""
    found = {}
    for info in pkgutil.iter_modules(taskgraph.__path__):
        if info.ispkg:
            module = importlib.import_module(f"taskgraph.{info.name}")
            if hasattr(module, "__all__"):
                found[info.name] = module
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    print(f"mkdocs build --strict: {time.perf_counter() - started:.1f} s")
    problems = [line for line in done.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert done.returncode == 0, "\n".join(problems) or done.stderr[-3000:]
    return out


def anchors(site: Path, page: str) -> set[str]:
    path = site / page / "index.html"
    assert path.is_file(), f"the site has no page {page}/"
    return set(ANCHOR.findall(path.read_text(encoding="utf-8")))


def documented_as(module_name: str, name: str, obj: object) -> set[str]:
    """The anchors under which ``obj`` may be documented: the package that exports it, or the module that defines
    it or a package above that module (which re-exports it)."""
    found = {f"{module_name}.{name}"}
    if inspect.isclass(obj) or inspect.isfunction(obj):
        parts = obj.__module__.split(".")
        found |= {f"{'.'.join(parts[:n])}.{name}" for n in range(2, len(parts) + 1)}
    return found


def test_every_public_package_has_a_reference_page_listing_its_whole_api(site: Path) -> None:
    packages = public_packages()
    assert {"spec", "graph", "routing", "model", "train", "merge"} <= set(packages)
    missing = []
    for name, module in packages.items():
        assert (ROOT / "docs" / "api" / f"{name}.md").is_file(), f"docs/api/{name}.md: no page for taskgraph.{name}"
        shown = anchors(site, f"api/{name}")
        for export in module.__all__:
            if not documented_as(f"taskgraph.{name}", export, getattr(module, export)) & shown:
                missing.append(f"taskgraph.{name}.{export}")
    assert not missing, f"public names with no entry in the API reference (docs/api/): {missing}"


def test_every_top_level_name_is_documented_somewhere(site: Path) -> None:
    packages = public_packages()
    shown = set().union(*(anchors(site, f"api/{name}") for name in packages), anchors(site, "api/errors"))
    missing = []
    for name in sorted(set(taskgraph.__all__) - {"__version__"}):
        obj = getattr(taskgraph, name)
        homes = [taskgraph.API.get(name, "taskgraph")] + [
            f"taskgraph.{p}" for p, m in packages.items() if name in m.__all__
        ]
        if not any(documented_as(home, name, obj) & shown for home in homes):
            missing.append(name)
    assert not missing, f"taskgraph.__all__ names with no entry in the API reference: {missing}"
    index = (ROOT / "docs" / "api" / "index.md").read_text(encoding="utf-8")
    assert not [n for n in taskgraph.__all__ if f"`{n}`" not in index], "docs/api/index.md's table lists every name"


def test_math_is_marked_for_mathjax_and_the_readme_page_links_into_the_site(site: Path) -> None:
    routers = (site / "guide" / "routers" / "index.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in routers and r"\sum_k w_{t,k} A_k" in routers
    readme = (site / "readme" / "index.html").read_text(encoding="utf-8")
    assert 'src="../view-planted-graph.png"' in readme  # the README's docs/view-planted-graph.png
    assert 'href="docs/' not in readme and 'src="docs/' not in readme


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_links_are_made_relative_to_the_site_and_code_blocks_kept() -> None:
    hooks = load_hooks()
    text = (
        "See [the log](docs/graph-prior.md) and [below](#a-spec), ![a view](docs/view.png), "
        "[the spec](configs/quickstart.yaml), [PEFT](https://github.com/huggingface/peft).\n"
        "```python\nx = [docs](docs/not-a-link)\n```\n"
    )
    assert hooks.site_links(text) == (
        "See [the log](graph-prior.md) and [below](#a-spec), ![a view](view.png), "
        "the spec (`configs/quickstart.yaml`), [PEFT](https://github.com/huggingface/peft).\n"
        "```python\nx = [docs](docs/not-a-link)\n```\n"
    )


def test_griffe_warnings_pass_only_for_the_known_docstring_forms() -> None:
    import logging

    hooks = load_hooks()
    seen = hooks.KnownDocstringForms()

    def level(message: str) -> int:
        record = logging.LogRecord("mkdocs.plugins.griffe", logging.WARNING, __file__, 1, message, None, None)
        seen.filter(record)
        return record.levelno

    grouped = "griffe: taskgraph/model/fold.py:75: Parameter 'rank, alpha' does not appear in the function signature"
    assert level(grouped) == logging.INFO
    assert level(grouped.replace("'rank, alpha'", "'rnak'")) == logging.WARNING  # a misspelt parameter still fails
    assert level("griffe: taskgraph/x.py:3: Failed to get 'exception: description' pair from 'oops'") == logging.WARNING
