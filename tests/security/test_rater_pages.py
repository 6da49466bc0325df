"""Review rows 1-5, 19, 32 (display side) and D6 (tracebacks): the app's pages through
Streamlit's AppTest, with a real store (SQLite; PostgreSQL too where the store decides).

Rows 4-5: report text and the case question come from models and datasets; whatever they
hold is shown as plain text (a Text element), never as Markdown, HTML or a heading.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, update
from streamlit.testing.v1 import AppTest
from support.app_pages import APP, VIEWS, open_page, page_elements
from support.rating_form import form_data, has_form, submit
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import set_study_status, start_study
from studies.readers.media_problems import media_problems
from studies.readers.rating import next_assignment
from studies.store.audit import events
from studies.store.db import get_store
from studies.store.schema import Case, Generation, Judgment, System
from workbench.access import SESSION_KEY
from workbench.navigation import PAGES as PAGE_SPECS
from workbench.ui import PAGE_ERROR

FORM_SCRIPT = VIEWS.parent / "components" / "rating_form.js"
PASSWORD = "rater-password-1"
PHISHING = (
    "Findings: one 6 mm polyp in the sigmoid colon.\n\n"
    "[Click here to re-enter your password](https://evil.example/phish)\n\n"
    "![](http://127.0.0.1:8699/beacon.png)\n\n"
    "# BIG HEADING"
)
SCRIPTS = (
    "Findings: normal.\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
    "[x](javascript:alert(3))"
)
MARKERS = {
    PHISHING: ("evil.example", "beacon.png", "BIG HEADING"),
    SCRIPTS: ("alert(1)", "onerror", "javascript:alert"),
}


def _make_world(home: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str | None = None):  # noqa: ANN202
    """A started study with two raters and an admin, in the app's own store."""
    if pg_url:
        monkeypatch.setenv("MEDVISION_DATABASE_URL", pg_url)
    monkeypatch.setenv("MEDVISION_BUSY_TIMEOUT_S", "0.5")
    store = get_store()
    data = build_world(store, home / "data" / "benchmarks" / "reader", n_cases=4)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2)]
    accounts.create_account(store, "chief", "admin", PASSWORD)
    study_id = create_study(
        store, StudyDesign(name="Blind round", benchmark=data.benchmark, systems=data.systems)
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    return store, raters, study_id


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request, tmp_home: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """The world on SQLite and on PostgreSQL (where the store decides what the page shows)."""
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    made = _make_world(tmp_home, monkeypatch, pg_url)
    yield made
    made[0].dispose()


@pytest.fixture
def sqlite_world(tmp_home: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The world on SQLite only (display and gating do not depend on the backend)."""
    made = _make_world(tmp_home, monkeypatch)
    yield made
    made[0].dispose()


def _set_texts(store, text: str) -> None:  # noqa: ANN001
    with store.session() as session:
        session.execute(update(Generation).values(text=text))
        session.execute(update(Case).values(question=text))


# The answer each page's form holds (typed in the browser; sent with the submit).
_ENTERED: dict[int, tuple[str, str]] = {}


def _fill(app: AppTest, choice: str, comment: str = "") -> None:
    _ENTERED[id(app)] = (choice, comment)


def _submit(app: AppTest) -> AppTest:
    choice, comment = _ENTERED[id(app)]
    submit(app, choice, score=4, comment=comment)
    assert not app.exception, app.exception
    return app


def _judgments(store) -> list:  # noqa: ANN001
    with store.session() as session:
        return list(
            session.execute(
                select(Judgment.preference_shown, Judgment.comment, Judgment.supersedes_id)
            )
        )


@pytest.mark.parametrize("payload", [PHISHING, SCRIPTS], ids=["row05", "row04"])
def test_row04_row05_report_text_and_question_are_plain_text(sqlite_world, payload: str) -> None:
    """row 04, row 05: a link, an image beacon, a heading, script and onerror in report
    text and question reach the page only inside Text elements, never as Markdown/HTML."""
    store, _raters, _study = sqlite_world
    _set_texts(store, payload)
    app = open_page("rate.py", accounts.log_in(store, "rater1", PASSWORD))
    elements = page_elements(app)
    texts = [proto for kind, proto in elements if kind == "text"]
    # Question, Report A, Report B: each the whole payload, paragraphs kept, sent to the
    # rating form as data, which its script sets as text (never as HTML).
    task = form_data(app)["task"]
    assert task["question"] == task["left"] == task["right"] == payload
    script = FORM_SCRIPT.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, f"the rating form's script uses {sink}"
    for kind, proto in elements:
        if kind in ("text", "unknown", "bidi_component") or proto in texts:
            continue
        for marker in MARKERS[payload]:
            assert marker not in proto, f"{marker!r} reached a {kind} element"
    for element in app.markdown:
        assert not any(marker in element.value for marker in MARKERS[payload])


def test_row01_row02_role_gating_by_url(sqlite_world) -> None:
    """row 01, row 02: a visitor and a rater opening every admin page get Home (or a refusal)
    and no admin content; the menu offers only their pages."""
    store, *_ = sqlite_world
    rater_token = accounts.log_in(store, "rater1", PASSWORD)
    admin_only = [spec.file for spec in PAGE_SPECS if spec.roles == ("admin",)]
    for token in (None, rater_token):
        app = AppTest.from_file(APP, default_timeout=60)
        if token:
            app.session_state[SESSION_KEY] = token
        app.run()
        for page in admin_only:
            with pytest.raises(Exception):  # noqa: B017, PT011 - not in the menu: no such page
                app.switch_page(str(VIEWS / page)).run()
            assert not app.dataframe and not app.get("download_button")
    # Opened directly (bypassing the menu), each admin page refuses a rater by itself too.
    for token in (rater_token,):
        for page in admin_only:
            direct = AppTest.from_file(str(VIEWS / page), default_timeout=60)
            if token:
                direct.session_state[SESSION_KEY] = token
            direct.run()
            assert not direct.exception, (page, direct.exception)
            refused = [e.value for e in direct.error] + [i.value for i in direct.info]
            assert any("log in" in m.lower() or "may not open" in m for m in refused), page
            assert not direct.dataframe and not direct.get("download_button")


def test_row03_rater_pages_name_no_system(sqlite_world) -> None:
    """row 03: the rater's pages (every element, ids, help, media URLs) name no system."""
    store, *_ = sqlite_world
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += [f[:12] for f in session.scalars(select(System.fingerprint))]
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("rate.py", token)
    pages = [app]
    _fill(app, "left")
    pages.append(_submit(app))
    pages.append(open_page("home.py", token))
    for page in pages:
        text = "\n".join(proto for _kind, proto in page_elements(page))
        assert "Report A" in text or "Home" in text or "Med-Vision" in text
        for secret in [*secrets, "system_a", "generation_id", "fingerprint"]:
            assert secret not in text, f"{secret!r} leaked onto a rater page"


def test_row19_second_tab_answer_is_shown_and_can_replace_the_first(world) -> None:
    """row 19 (D2): tab 1 says A, tab 2 (same task) says B with a comment: tab 2 is told,
    sees both answers and its comment, and can replace the stored answer; nothing lost."""
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    tab1, tab2 = open_page("rate.py", token), open_page("rate.py", token)
    _fill(tab2, "right", "A misses the 20 mm polyp")
    _fill(tab1, "left")
    _submit(tab1)
    _submit(tab2)
    assert any("already answered" in w.value for w in tab2.warning)
    assert any(t.value == "A misses the 20 mm polyp" for t in tab2.text)
    assert [j.preference_shown for j in _judgments(store)] == ["left"]
    tab2.button(key="rate_conflict_replace").click().run()
    assert any("replaced the stored one" in m.value for m in tab2.success)
    assert not tab2.exception, tab2.exception
    rows = sorted(_judgments(store), key=lambda j: j.supersedes_id or 0)
    assert [(j.preference_shown, j.comment) for j in rows] == [
        ("left", ""),
        ("right", "A misses the 20 mm polyp"),
    ]


def _filled_values(app: AppTest) -> tuple[list, str]:
    """The ratings and comment the page gives back to the form (what was kept)."""
    kept = form_data(app)["answer"] or {"likert": {}, "comment": ""}
    radios = [v for side in kept["likert"].values() for v in side.values()]
    return radios, kept["comment"]


def test_d2_pause_and_expired_session_keep_the_raters_input(world) -> None:
    """D2 (page side): a submit during a pause, then after the session expired, says what
    happened; the answer comes back filled in and is saved once the rater can go on."""
    store, _raters, study_id = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("rate.py", token)
    _fill(app, "both_bad", "both miss the lesion at 30 cm")
    set_study_status(store, study_id, "pause")
    _submit(app)
    assert any("paused" in i.value for i in app.info)
    assert any("unsaved answer is kept" in c.value for c in app.caption)
    set_study_status(store, study_id, "resume")
    accounts.log_out(store, token)  # the session ends while the rater is away
    app.run()
    assert not has_form(app)  # logged out: no rating form
    app.session_state[SESSION_KEY] = accounts.log_in(store, "rater1", PASSWORD)
    app.run()
    app.switch_page(str(VIEWS / "rate.py")).run()
    radios, comment = _filled_values(app)
    assert radios and all(value == 4 for value in radios)
    assert comment == "both miss the lesion at 30 cm"
    assert form_data(app)["answer"]["choice"] == "both_bad"  # the choice is back
    _submit(app)
    assert [(j.preference_shown, j.comment) for j in _judgments(store)] == [
        ("both_bad", "both miss the lesion at 30 cm")
    ]


def test_d10_busy_database_keeps_the_form_and_the_retry_saves(world) -> None:
    """D10 (page side): the database is busy past its timeout: the rater reads "busy, not
    saved, press Submit again", the form keeps the answer, and pressing Submit again saves it."""
    store, *_ = world
    app = open_page("rate.py", accounts.log_in(store, "rater1", PASSWORD))
    _fill(app, "tie", "close call")
    hold, release = threading.Event(), threading.Event()

    def writer() -> None:
        engine = create_engine(store.url)
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql("BEGIN")
                connection.exec_driver_sql("LOCK TABLE assignments IN EXCLUSIVE MODE")
            hold.set()
            release.wait(30)
            connection.rollback()
        engine.dispose()

    holder = threading.Thread(target=writer)
    holder.start()
    try:
        assert hold.wait(20)
        _submit(app)
    finally:
        release.set()
        holder.join(30)
    told = form_data(app)["message"]["text"]
    assert "busy" in told and "kept in this form" in told
    assert _filled_values(app)[1] == "close call" and not _judgments(store)
    _submit(app)
    assert [(j.preference_shown, j.comment) for j in _judgments(store)] == [("tie", "close call")]


def test_row32_unreadable_media_is_flagged_and_the_rater_goes_on(world, tmp_home: Path) -> None:
    """row 32 (D7, display): the next case's image is truncated after import: the rater
    gets a message and "flag and go on", no traceback; the admin page lists the problem;
    the rater rates the next case."""
    store, raters, study_id = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    task = next_assignment(store, raters[0].id, study_id)
    image = task.media[0].path
    image.write_bytes(image.read_bytes()[: len(image.read_bytes()) // 2])
    app = open_page("rate.py", token)
    assert not app.exception
    assert any("cannot be shown" in e.value for e in app.error)
    assert "Traceback" not in "\n".join(p for _k, p in page_elements(app))
    assert not has_form(app)
    [problem] = media_problems(store, study_id)
    assert problem.rater == "rater1" and problem.position == task.position
    app.run()  # a reload records it once
    assert len(media_problems(store, study_id)) == 1
    next(b for b in app.button if b.key.startswith("rate_skip_")).click().run()
    assert not app.exception and form_data(app)["task"]["media"]
    _fill(app, "left")
    _submit(app)
    assert len(_judgments(store)) == 1
    admin = open_page("studies_admin.py", accounts.log_in(store, "chief", PASSWORD))
    admin.selectbox(key="admin_study").set_value("Blind round").run()
    assert any("Media problems (1)" in s.value for s in admin.subheader)


def test_d6_a_page_that_raises_shows_a_message_not_a_traceback(
    sqlite_world, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D6: an error inside a page becomes the page-error message with a reference, an
    audit event for the admin, and no traceback or server path in the page."""
    store, *_ = sqlite_world
    monkeypatch.setenv("MEDVISION_PAGE_ERRORS", "message")  # as served (the suite raises)

    def page() -> None:
        from workbench.ui import error_boundary

        with error_boundary("broken page"):
            raise OSError("image file is truncated: /srv/data/secret/path.png")

    app = AppTest.from_function(page, default_timeout=30).run()
    assert not app.exception
    [error] = app.error
    reference = error.value.split("reference ")[-1].rstrip(".")
    assert error.value == PAGE_ERROR.format(reference=reference)
    assert "/srv/data" not in "\n".join(p for _k, p in page_elements(app))
    with store.session() as session:
        [event] = events(session, action="page.error")
        assert event.detail == {"reference": reference, "error": "OSError"}
        assert session.scalar(select(func.count()).select_from(Judgment)) == 0
    # The real app: the rating page fails inside (its judgments table is gone): the rater
    # reads the message inside the page; the menu and the account box are still there.
    token = accounts.log_in(store, "rater1", PASSWORD)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE judgments RENAME TO judgments_moved")
    app = open_page("rate.py", token)
    assert [e.value for e in app.error][-1].startswith("Something went wrong on this page")
    assert "judgments" not in "\n".join(p for _k, p in page_elements(app))
    assert any(b.key == "account_log_out" for b in app.button)
