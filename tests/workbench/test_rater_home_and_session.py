"""The rater's Home (their studies, done / remaining, a neutral description, a way in) and an
ended log-in session that says so, through Streamlit's AppTest over a real SQLite store.
(9f89c26: Home told raters the reports were "AI-written ... against baselines" and showed no
study; an expired or revoked session dropped the rater on Home without a word.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from support.app_pages import open_page, tree_text
from support.reader_world import build_world
from support.started_study import start_with

from studies.readers import accounts
from studies.readers.design import StudyDesign
from studies.readers.flags import flag_task
from studies.readers.lifecycle import pause_study
from studies.readers.rating import next_assignment
from studies.store.db import get_store
from studies.store.schema import System
from workbench.access import EXPIRED_MESSAGE

PASSWORD = "rater-password-1"


@pytest.fixture
def world(tmp_home: Path):  # noqa: ANN201
    store = get_store()
    data = build_world(store, tmp_home / "data" / "benchmarks" / "reader", n_cases=4)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2)]
    studies = []
    for name in ("Polyp round", "Second round"):
        study_id = start_with(
            store,
            StudyDesign(
                name=name, benchmark=data.benchmark, systems=data.systems[:2], seed=len(name)
            ),
            raters,
        )
        studies.append(study_id)
    yield store, raters, studies
    store.dispose()


def test_an_ended_session_says_so_wherever_the_rater_lands(world) -> None:
    store, raters, _studies = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("home.py", token)
    assert not any(EXPIRED_MESSAGE in w.value for w in app.warning)
    accounts.log_out(store, token)  # revoked (a re-seed, an admin) or past its 12 hours
    app.run()
    assert not app.exception, app.exception
    assert [w.value for w in app.warning if w.value == EXPIRED_MESSAGE] == [EXPIRED_MESSAGE]
    assert "Log in again" in tree_text(app)
    # Said once; the next run is the plain logged-out page.
    app.run()
    assert not any(EXPIRED_MESSAGE in w.value for w in app.warning)
    # A log-out the rater asked for is not an expiry.
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("home.py", token)
    app.button(key="account_log_out").click().run()
    app.run()
    assert not any(EXPIRED_MESSAGE in w.value for w in app.warning)


def test_rater_home_lists_studies_with_progress_neutrally(world) -> None:
    store, raters, studies = world
    rater = raters[0]
    first = next_assignment(store, rater.id, studies[0])
    flag_task(store, rater.id, first.token, "home-flag", "image_quality")
    pause_study(store, studies[0])
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("home.py", token)
    text = tree_text(app)
    assert [s.value for s in app.subheader] == ["Polyp round", "Second round"]
    total = first.total
    # The flagged case left the count: nothing done, one fewer remaining.
    assert f"0 done, {total - 1} remaining" in text
    assert "their authors hidden" in text
    assert "This study is paused" in text
    with store.session() as session:
        names = list(session.scalars(select(System.name)))
    lowered = text.lower()
    for word in ("ai-written", "against baselines", " ai ", "model", "system", *names):
        assert word not in lowered, f"{word!r} reaches a rater's Home"
    assert app.button(key=f"home_go_{studies[0]}").disabled
    app.button(key=f"home_go_{studies[1]}").click().run()
    assert not app.exception, app.exception
    # The rating page opened on that study (the second of the rater's two).
    assert "rate_open_study" not in app.session_state
    assert app.selectbox(key="rate_study").value == 1


def test_visitors_home_is_neutral_too(world) -> None:
    app = open_page("home.py", None)
    text = tree_text(app).lower()
    assert "ai-written" not in text and "against baselines" not in text
    assert "log in to rate reports" in text
