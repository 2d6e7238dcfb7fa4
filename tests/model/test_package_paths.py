"""``model.path: package:<module>/<dir>`` finds the package's folder without importing it: a spec or a
checkpoint's manifest naming a package never runs that package's code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from taskgraph.errors import ModelError
from taskgraph.model.base import resolve_path


@pytest.fixture
def trap_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """An importable package ``tg_trap_pkg`` (with a ``model/`` folder and a subpackage) whose import writes a file."""
    proof = tmp_path / "IMPORTED"
    pkg = tmp_path / "site" / "tg_trap_pkg"
    (pkg / "model").mkdir(parents=True)
    (pkg / "sub" / "weights").mkdir(parents=True)
    trap = f"import pathlib\npathlib.Path({str(proof)!r}).write_text(__name__)\n"
    (pkg / "__init__.py").write_text(trap)
    (pkg / "sub" / "__init__.py").write_text(trap)
    (pkg / "plain.py").write_text(trap)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield "tg_trap_pkg", proof
    for name in [m for m in sys.modules if m.startswith("tg_trap_pkg")]:
        del sys.modules[name]


def test_a_package_folder_is_found_without_importing_the_package(trap_package):  # noqa: ANN001
    name, proof = trap_package
    assert resolve_path(f"package:{name}/model").name == "model"
    assert resolve_path(f"package:{name}.sub/weights").name == "weights"
    assert not proof.exists() and name not in sys.modules


@pytest.mark.parametrize(
    "ref, message",
    [
        ("tg_trap_pkg.plain/x", "'tg_trap_pkg.plain' is a module, not a package"),
        ("tg_trap_pkg/../..", "leads out of package 'tg_trap_pkg'"),
        ("tg_trap_pkg/absent", "has no directory 'absent'"),
        ("tg_trap_pkg.nope/x", "'tg_trap_pkg.nope' is not installed (looked it up without importing it)"),
        ("not-a-name/x", "'not-a-name' is not a Python package name"),
        ("this/x", "'this' is a module, not a package"),  # the stdlib module that prints when imported
    ],
)
def test_bad_package_paths_are_model_errors_and_import_nothing(trap_package, capsys, ref, message):  # noqa: ANN001
    _, proof = trap_package
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        resolve_path(f"package:{ref}")
    assert not proof.exists() and "this" not in sys.modules
    assert "Beautiful is better than ugly" not in capsys.readouterr().out


def test_a_hostile_manifest_naming_a_package_runs_none_of_it(trap_package, tmp_path, capsys):  # noqa: ANN001
    from taskgraph.cli import main
    from taskgraph.model import TaskGraphModel
    from taskgraph.spec import Spec
    from tests.conftest import minimal_spec

    name, proof = trap_package
    folder = tmp_path / "model"
    TaskGraphModel(Spec.model_validate(minimal_spec())).save_pretrained(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["spec"]["model"] = {"path": f"package:{name}/model", "max_length": 16}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    for argv in (
        ["eval", str(folder), "--no-timing", "--no-alignment"],
        ["export", str(folder), "--format", "json", "--out", str(tmp_path / "g.json")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.startswith("error: ")
    assert not proof.exists() and name not in sys.modules
