"""Headless Chromium, driven from Python: load a page and read its DOM back, or take a screenshot of it.

Used by ``python -m benchmarks view`` (time to interactive of the HTML view), the real-browser tests of the
HTML export and ``python -m benchmarks.screenshots``. Chromium runs as a subprocess with a fresh profile in a
temporary folder, no network features, and its console on stderr (every console message, including
Content-Security-Policy refusals, is a ``:CONSOLE`` line).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from taskgraph.errors import TaskgraphError

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)
TIMEOUT_S = 120
ROOT = re.compile(r'<main id="taskgraph"[^>]*>')


class BrowserError(TaskgraphError):
    """Chromium is missing, or it failed to load a page."""


@dataclass(frozen=True)
class Loaded:
    """A page after its scripts ran: the DOM, Chromium's console lines and the root element's attributes."""

    dom: str
    console: list[str]

    @property
    def root(self) -> dict[str, str]:
        """Attributes of ``<main id="taskgraph">`` (``data-rendered``, ``data-errors``, ...), HTML-unescaped."""
        import html

        (tag,) = ROOT.findall(self.dom)
        return {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag)}


def find_chromium() -> str | None:
    """The Chromium executable, or None when none is installed."""
    for name in CANDIDATES:
        found = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if found:
            return found
    return None


def load(
    page: Path, *, fragment: str = "", window: tuple[int, int] = (1400, 900), virtual_time_ms: int | None = 2000
) -> Loaded:
    """Open ``page`` (``#fragment`` appended) in headless Chromium; its DOM once loaded, and its console.

    ``virtual_time_ms`` lets timers run in virtual time (fast, deterministic); ``None`` runs in real time,
    which is what a timing needs (the page clock then reads real milliseconds).
    """
    budget = () if virtual_time_ms is None else (f"--virtual-time-budget={virtual_time_ms}",)
    done = _run([f"--window-size={window[0]},{window[1]}", *budget, "--dump-dom", _url(page, fragment)])
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(done.stdout, console)


def screenshot(page: Path, png: Path, *, fragment: str = "", window: tuple[int, int] = (1400, 900)) -> Path:
    """Save a PNG of ``page`` as a ``window``-sized browser shows it; returns ``png``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            f"--window-size={window[0]},{window[1]}",
            "--virtual-time-budget=2000",
            f"--screenshot={png.resolve()}",
            _url(page, fragment),
        ]
    )
    if not png.is_file() or png.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot of {str(page)!r} to {str(png)!r}")
    return png


def _url(page: Path, fragment: str) -> str:
    return page.resolve().as_uri() + (f"#{fragment}" if fragment else "")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError(
            "headless Chromium is not installed (apt-get install chromium); it is needed to "
            "load the HTML view in a real browser"
        )
    with tempfile.TemporaryDirectory(prefix="taskgraph-chromium-") as profile:
        try:
            done = subprocess.run(
                [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise BrowserError(f"Chromium did not finish within {TIMEOUT_S} s: {' '.join(args[-1:])}") from None
    if done.returncode != 0:
        raise BrowserError(f"Chromium failed (exit {done.returncode}) on {args[-1]}: {done.stderr[-1500:]}")
    return done
