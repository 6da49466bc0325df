"""Real browser, real server: a rater logs in, rates three cases with the keyboard, reloads
and resumes on the fourth; the database holds exactly those judgments and the page never
shows a system name. Needs Debian's chromium (`make browser`) and pip's playwright.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment, System

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "rater-password-1"
SCREENSHOT = ROOT / "docs" / "rating-page.png"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def seeded(tmp_path: Path):
    home = tmp_path / "home"
    store = Store(f"sqlite:///{home / 'workbench.db'}")
    world = build_world(store, home / "data" / "benchmarks" / "reader", n_cases=5)
    rater = accounts.create_account(store, "rater1", "rater", PASSWORD, display_name="Dr One")
    other = accounts.create_account(store, "rater2", "rater", PASSWORD)
    study_id = create_study(
        store,
        StudyDesign(
            name="Browser round", benchmark=world.benchmark, systems=world.systems, seed=11
        ),
    )
    for account in (rater, other):
        enrol_rater(store, study_id, account.username)
    start_study(store, study_id)
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += list(session.scalars(select(System.fingerprint)))
    yield home, store, rater, study_id, secrets
    store.dispose()


@pytest.fixture
def server(seeded, tmp_path: Path):
    home = seeded[0]
    port = _free_port()
    env = dict(os.environ)
    env.update(
        MEDVISION_HOME=str(home),
        MEDVISION_ADMIN_PASSWORD="admin-password-1",
        PYTHONPATH=str(ROOT),
    )
    env.pop("MEDVISION_DATABASE_URL", None)
    log = (tmp_path / "streamlit.log").open("w")
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
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the app did not start: {(tmp_path / 'streamlit.log').read_text()}")
        time.sleep(0.5)
    try:
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _idle(page) -> None:  # noqa: ANN001
    """Wait until the app has finished its current run (no 'Running...' indicator)."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


def test_rater_rates_with_the_keyboard_and_resumes(seeded, server: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    _home, store, rater, study_id, secrets = seeded
    total = next_assignment(store, rater.id, study_id).total
    seen: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        # Open the entry page first: Streamlit runs app.py (and its st.navigation) there.
        page.goto(server)
        expect(page.get_by_text("Not logged in.")).to_be_visible()
        page.goto(f"{server}/login")
        page.get_by_role("textbox", name="Username").fill("rater1")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Report A")).to_be_visible()
        expect(page.get_by_text("Logged in as")).to_be_visible()

        for n in range(3):
            expect(page.get_by_text(f"{n} / {total} done")).to_be_visible()
            seen.append(page.inner_text("body"))
            groups = page.get_by_role("radiogroup")
            expect(groups).to_have_count(6)
            for index in range(6):
                group = groups.nth(index)
                group.get_by_text("4", exact=True).click()
                expect(group.get_by_role("radio", name="4")).to_be_checked()
            _idle(page)
            for index in range(6):
                expect(groups.nth(index).get_by_role("radio", name="4")).to_be_checked()
            # Keys act on the page, not inside a form field.
            page.evaluate("document.activeElement && document.activeElement.blur()")
            page.keyboard.press("2" if n == 1 else "1")
            expect(page.get_by_text("Your choice:")).to_be_visible()
            _idle(page)
            page.keyboard.press("Enter")
            expect(page.get_by_text(f"{n + 1} / {total} done")).to_be_visible()

        page.reload()
        expect(page.get_by_text(f"3 / {total} done")).to_be_visible()
        expect(page.get_by_role("heading", name="Report B")).to_be_visible()
        seen.append(page.inner_text("body"))
        assert "token" not in page.url and page.url.rstrip("/").endswith("/rate")
        page.get_by_role("radiogroup").nth(0).get_by_text("4", exact=True).click()
        page.wait_for_timeout(300)
        shot = tmp_path / "rating-page.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.environ.get("MEDVISION_UPDATE_SCREENSHOT") or not SCREENSHOT.exists():
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOT)
        browser.close()

    for text in seen:
        for secret in secrets:
            assert secret not in text, f"{secret!r} appeared on the rating page"
    with store.session() as session:
        rows = session.execute(
            select(Judgment.preference_shown, Judgment.rater_id, Assignment.order_index)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .order_by(Judgment.id)
        ).all()
    assert [(r.preference_shown, r.rater_id, r.order_index) for r in rows] == [
        ("left", rater.id, 0),
        ("right", rater.id, 1),
        ("left", rater.id, 2),
    ]
    assert next_assignment(store, rater.id, study_id).position == 4
