"""What the browser tests share: the real app under uvicorn on a free loopback port, the
headless Debian Chromium driven by Playwright (skipped locally when absent, a failure in CI),
and axe-core (from npm, `npm ci`) injected into a page to list its accessibility violations."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from search.settings import Settings
from web.app import create_app

__all__ = ["AXE_SCRIPT", "CHROMIUM", "CHROMIUM_ARGS", "axe_violations", "chromium", "serve_app"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
AXE_SCRIPT = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
START_CEILING_S = 120.0  # generous: a busy 2-core machine starts the app slowly


def _healthy(base_url: str) -> str | None:
    """None when /healthz answers ok, else what it answered."""
    try:
        answer = httpx.get(f"{base_url}/healthz", timeout=1.0)
    except httpx.HTTPError as exc:
        return repr(exc)
    if answer.status_code == 200 and answer.json() == {"status": "ok"}:
        return None
    return f"HTTP {answer.status_code}: {answer.text[:200]}"


@contextmanager
def serve_app(settings: Settings) -> Iterator[str]:
    """The app for `settings` on 127.0.0.1 in a thread; yields its base URL once /healthz
    answers, and stops it afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="pixseek-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_CEILING_S
        while (problem := _healthy(base_url)) is not None:
            if not thread.is_alive():
                pytest.fail(f"uvicorn stopped before {base_url}/healthz answered (see the log)")
            if time.monotonic() > deadline:
                pytest.fail(f"{base_url}/healthz did not answer in {START_CEILING_S} s: {problem}")
            time.sleep(0.05)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "uvicorn did not shut down within 10 s"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Debian Chromium; skipped locally when absent, a failure in CI (CI=true)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; CI needs it (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not installed; browser tests need it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on `page` as it is now (each with its rule `id`, `impact`, `help`
    and the `nodes` it found). Without axe-core installed it skips locally, saying what to run,
    and fails in CI (CI=true), like the browser itself."""
    if not AXE_SCRIPT.is_file():
        why = (
            f"{AXE_SCRIPT} is missing: the accessibility tests need axe-core from npm; "
            "run `npm ci` in the repository root (or `make install-test`)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    page.add_script_tag(path=str(AXE_SCRIPT))
    return page.evaluate(  # type: ignore[no-any-return]
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
