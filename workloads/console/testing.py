"""Helpers for the console's browser tests and the demo: Debian's headless Chromium driven
through Playwright (never a downloaded browser). The console itself runs as a real process
through local_service.LocalConsole."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = os.environ.get("MEDMEC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
