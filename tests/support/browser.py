"""The real app in a real browser: `streamlit run workbench/app.py` on a free local port over a
given MEDVISION_HOME, and Debian's chromium through Playwright (`make browser`).

Shared by the browser tests (tests/e2e/): each builds its own store under a home folder and
opens the app over it; nothing here is mocked.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ADMIN_PASSWORD = "admin-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppDidNotStart(RuntimeError):
    """The app exited, or did not answer its health check in time; the message has its log."""


def start_app(
    home: Path, log_path: Path, *, timeout_s: float = 120
) -> tuple[subprocess.Popen, str]:
    """`streamlit run workbench/app.py` over `home` (SQLite in it) on a free local port, its
    console in `log_path`; returns the process and the base URL once the app answers."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        MEDVISION_HOME=str(home),
        MEDVISION_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONPATH=str(ROOT),
    )
    env.pop("MEDVISION_DATABASE_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "workbench" / "app.py"),
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_app(process)
            raise AppDidNotStart(f"the app did not start: {log_path.read_text()}")
        time.sleep(0.5)


def stop_app(process: subprocess.Popen) -> None:
    """Stop the app: terminate, then kill if it has not ended within 20 s."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@contextmanager
def app_server(home: Path, log_path: Path, *, timeout_s: float = 120) -> Iterator[str]:
    """The app over `home` (SQLite in it), its console in `log_path`; yields the base URL."""
    try:
        process, base = start_app(home, log_path, timeout_s=timeout_s)
    except AppDidNotStart as exc:
        pytest.fail(str(exc))
    try:
        yield base
    finally:
        stop_app(process)


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")


@contextmanager
def chromium(viewport: dict[str, int] | None = None) -> Iterator[object]:
    """A headless chromium browser (Playwright's sync API), closed afterwards."""
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()


def idle(page) -> None:  # noqa: ANN001
    """Wait until the app has finished its current run (no 'Running...' indicator)."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def log_in(page, base: str, username: str, password: str) -> None:  # noqa: ANN001
    """Log in through the log-in page (the entry page first: app.py's navigation runs there)."""
    from playwright.sync_api import expect

    page.goto(base)
    expect(page.get_by_text("Not logged in.")).to_be_visible()
    page.goto(f"{base}/login")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Logged in as")).to_be_visible()
