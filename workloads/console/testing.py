"""Helpers for the console's browser tests and the demo: the console as a real process, and
Debian's headless Chromium driven through Playwright (never a downloaded browser)."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx

from medmec import netutil, processes

CHROMIUM = os.environ.get("MEDMEC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def start_console(workdir: Path, token: str, env: dict[str, str], extra: list[str] = ()
                  ) -> tuple[processes.Proc, str]:
    """`medmec serve console` on a free loopback port; returns the process and its URL."""
    tokens = workdir / "console-tokens"
    tokens.write_text(token + "\n")
    port = netutil.free_port()
    proc = processes.start("console", [sys.executable, "-m", "medmec", "serve", "console",
                                       "--host", "127.0.0.1", "--http-port", str(port),
                                       "--tokens-file", str(tokens), "--refresh", "1s", *extra],
                           workdir / "console.log", env=env)
    url = f"http://127.0.0.1:{port}"
    processes.wait_ready(proc, lambda: httpx.get(url + "/healthz", timeout=2).json()["snapshot"],
                         timeout=60, what="serving a first snapshot")
    return proc, url


@contextlib.contextmanager
def browser() -> Iterator:
    """A Playwright browser context on headless Chromium with a new, empty profile."""
    from playwright.sync_api import sync_playwright
    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: install Debian's (apt-get install -y "
                           f"chromium) or point MEDMEC_CHROMIUM at one")
    with tempfile.TemporaryDirectory(prefix="medmec-chromium-") as profile, \
            sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)  # two busy cores: Chromium can be slow to paint
        try:
            yield context
        finally:
            context.close()


def artifacts_dir(name: str) -> Path:
    """test-artifacts/<name>/ at the repository root (gitignored), for screenshots."""
    root = Path(__file__).resolve().parents[2] / "test-artifacts" / name
    root.mkdir(parents=True, exist_ok=True)
    return root
