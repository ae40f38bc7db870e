"""Debian's headless Chromium driven by Playwright, for the tests of the server's pages
(``test_pages``) and of the documentation site (``test_docs_site``).

Chromium comes from ``scripts/setup.sh``. Without it the browser tests fail, so that CI
(and anyone who set up the project) always runs them; outside CI, set
``LBP_IMAGING_ALLOW_NO_BROWSER=1`` to skip them on a machine that cannot have Chromium.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ALLOW_ENV = "LBP_IMAGING_ALLOW_NO_BROWSER"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Fail when Chromium or Playwright is missing, unless skipping is allowed (never in CI)."""
    missing = [] if CHROMIUM.is_file() else [f"Chromium ({CHROMIUM})"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed: run scripts/setup.sh"
    if os.environ.get("CI") != "true" and os.environ.get(ALLOW_ENV) == "1":
        pytest.skip(f"{reason} ({ALLOW_ENV}=1 allows skipping the browser tests)")
    pytest.fail(f"{reason}, or set {ALLOW_ENV}=1 outside CI to skip the browser tests")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's ``Browser``), closed on exit."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
