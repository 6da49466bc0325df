"""A rater's log-in session that ends while the browser is away says so on the next visit, in
a real browser on the real server: the session's expiry passes (12 hours in the store) and
the rater reloads; the browser still sends its session cookie. (9f89c26: the reload landed on
the logged-out Home without a word; only a session ended within an open tab said so.) Needs
Debian's chromium (`make browser`) and pip's playwright. Every case is SYNTHETIC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from support.browser import app_server, chromium, idle, log_in
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.store.db import Store
from studies.store.schema import AuthSession
from workbench.access import EXPIRED_MESSAGE

pytestmark = pytest.mark.browser

PASSWORD = "rater-password-1"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = Store(f"sqlite:///{home / 'workbench.db'}")
    world = build_world(store, home / "data" / "benchmarks" / "reader", n_cases=3)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2)]
    study_id = create_study(
        store, StudyDesign(name="Round", benchmark=world.benchmark, systems=world.systems[:2])
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    store.dispose()
    return home


def test_a_reload_after_the_session_expired_says_so(home: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with app_server(home, tmp_path / "server.log") as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        log_in(page, base, "rater1", PASSWORD)
        idle(page)
        assert any(c["name"] == "medvision_session" for c in page.context.cookies())
        # The 12 hours pass while the rater is away.
        store = Store(f"sqlite:///{home / 'workbench.db'}")
        try:
            with store.session() as session:
                past = datetime.now(UTC) - timedelta(minutes=1)
                session.execute(update(AuthSession).values(expires_at=past))
        finally:
            store.dispose()
        page.reload()
        expect(page.get_by_text(EXPIRED_MESSAGE)).to_be_visible()
        expect(page.get_by_text("Not logged in.")).to_be_visible()
        # Said once: the next visit is the plain logged-out page, and the cookie is gone.
        idle(page)
        page.goto(base)
        expect(page.get_by_text("Not logged in.")).to_be_visible()
        idle(page)
        expect(page.get_by_text(EXPIRED_MESSAGE)).to_have_count(0)
