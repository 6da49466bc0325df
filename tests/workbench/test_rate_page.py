"""The rating, log-in, invite and reader-study admin pages through Streamlit's AppTest.

Blinding: every rater page is rendered and the full element tree (labels, help texts,
widget ids, media URLs) is searched for anything naming a system.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.store.db import get_store
from studies.store.schema import Generation, Judgment, System
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")
PASSWORD = "rater-password-1"


@pytest.fixture
def world(tmp_home: Path):
    store = get_store()
    data = build_world(store, tmp_home / "data" / "benchmarks" / "reader", n_cases=5)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2)]
    admin = accounts.create_account(store, "chief", "admin", PASSWORD)
    study_id = create_study(
        store,
        StudyDesign(name="Blind round", benchmark=data.benchmark, systems=data.systems, seed=3),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += list(session.scalars(select(System.fingerprint)))
        secrets += list(session.scalars(select(Generation.prompt_hash)))
    return store, raters, admin, secrets


def _open(page: str, token: str | None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    if token:
        app.session_state[SESSION_KEY] = token
    app.run()
    app.switch_page(str(PAGES / page)).run()
    assert not app.exception, app.exception
    return app


def _tree_text(app: AppTest) -> str:
    """Every proto of the rendered page as text: labels, help, ids, keys, media URLs."""
    parts: list[str] = []

    def walk(node) -> None:  # noqa: ANN001
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(app._tree)
    return "\n".join(parts)


def _rate_once(app: AppTest, choice: str = "left", comment: str = "") -> AppTest:
    for radio in app.radio:
        if radio.key.startswith(("rate_left_", "rate_right_")):
            radio.set_value(4)
    next(b for b in app.button if b.key.startswith(f"rate_choice_{choice}")).click().run()
    if comment:
        next(t for t in app.text_area if t.key.startswith("rate_comment")).input(comment)
    next(b for b in app.button if b.key.startswith("rate_submit")).click().run()
    assert not app.exception, app.exception
    return app


def _judgments(store) -> int:  # noqa: ANN001
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Judgment))


def test_rater_rates_resumes_and_never_sees_a_system(world) -> None:
    store, raters, _admin, secrets = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _open("rate.py", token)
    texts = []
    assert "0 / " in _tree_text(app)
    assert any("SYNTHETIC" in warning.value for warning in app.warning)
    for n in range(3):
        texts.append(_tree_text(app))
        assert "Report A" in texts[-1] and "Report B" in texts[-1]
        # The two reports (plus, after the first, the previous case in the correction box).
        assert texts[-1].count("Synthetic case") == (2 if n == 0 else 4)
        assert "/media/" in texts[-1]
        _rate_once(app, "both_bad" if n == 1 else "left", comment="both miss it" if n else "")
        assert f"{n + 1} / " in _tree_text(app)
    assert _judgments(store) == 3
    # A fresh browser session with the same log-in lands on the fourth task.
    resumed = _open("rate.py", token)
    text = _tree_text(resumed)
    assert "3 / " in text
    # Home is the only other page a rater reaches; log-in and invite are for visitors.
    texts.append(_tree_text(_open("home.py", token)))
    for page in ("login.py", "invite.py"):
        texts.append(_tree_text(_open(page, None)))
    texts.append(text)
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked onto a rater page"
        assert "fingerprint" not in text.lower() and "system" not in text.lower()


def test_both_unacceptable_needs_a_comment(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _open("rate.py", token)
    _rate_once(app, "both_bad")
    assert any("needs a comment" in e.value for e in app.error)
    assert _judgments(store) == 0


def test_rater_cannot_open_the_admin_page_and_public_cannot_rate(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    direct = AppTest.from_file(str(PAGES / "studies_admin.py"), default_timeout=60)
    direct.session_state[SESSION_KEY] = token
    direct.run()
    assert any("may not open this page" in e.value for e in direct.error)
    assert not direct.dataframe and "Download" not in _tree_text(direct)
    anonymous = AppTest.from_file(str(PAGES / "rate.py"), default_timeout=60).run()
    assert any("log in" in i.value.lower() for i in anonymous.info)
    assert not anonymous.radio


def test_expired_session_is_refused(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    accounts.log_out(store, token)
    page = AppTest.from_file(str(PAGES / "rate.py"), default_timeout=60)
    page.session_state[SESSION_KEY] = token
    page.run()
    assert any("expired" in w.value for w in page.warning)
    assert not page.radio


def test_log_in_page(world) -> None:
    app = _open("login.py", None)
    app.text_input(key="login_username").input("rater1")
    app.text_input(key="login_password").input("wrong password!")
    app.button[0].click().run()
    assert any(e.value == accounts.LOGIN_FAILED for e in app.error)
    assert SESSION_KEY not in app.session_state
    app.text_input(key="login_password").input(PASSWORD)
    app.button[0].click().run()
    assert SESSION_KEY in app.session_state


def test_admin_page_shows_progress_and_downloads(world) -> None:
    store, _raters, admin, _secrets = world
    token = accounts.log_in(store, "chief", PASSWORD)
    app = _open("studies_admin.py", token)
    text = _tree_text(app)
    assert "Progress per rater" in text and "Progress per pair" in text
    assert "rater1" in text and "sys-alpha" in text  # the admin sees systems
    assert "Download CSV" in text and "Download JSONL" in text
    app.button(key="admin_pause").click().run()
    assert not app.exception
    assert "paused" in _tree_text(app)


def test_invite_page_creates_an_account(world) -> None:
    store, *_ = world
    token = accounts.create_invite(store, role="rater")
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.switch_page(str(PAGES / "invite.py"))
    app.query_params["token"] = token
    app.run()
    assert not app.exception, app.exception
    app.text_input(key="inv_user").input("newrater")
    app.text_input(key="inv_pw").input(PASSWORD)
    app.text_input(key="inv_pw2").input(PASSWORD)
    app.button[0].click().run()
    assert accounts.get_account(store, "newrater") is not None
    with pytest.raises(accounts.AuthError, match="already been used"):
        accounts.inspect_invite(store, token)


def test_rater_corrects_the_previous_answer(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _open("rate.py", token)
    _rate_once(app, "left")
    fix = next(r for r in app.radio if r.key.startswith("rate_fix_pref"))
    assert fix.value == "left"
    fix.set_value("tie").run()
    next(b for b in app.button if b.key.startswith("rate_fix_save")).click().run()
    assert not app.exception, app.exception
    assert any("Correction saved" in s.value for s in app.success)
    with store.session() as session:
        rows = session.execute(
            select(Judgment.preference_shown, Judgment.supersedes_id).order_by(Judgment.id)
        ).all()
    assert [r.preference_shown for r in rows] == ["left", "tie"]
    assert rows[1].supersedes_id is not None


def test_admin_creates_enrols_and_starts_a_study(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "chief", PASSWORD)
    app = _open("studies_admin.py", token)
    app.text_input(key="new_name").input("Second round")
    app.multiselect(key="new_systems").set_value(["sys-alpha", "sys-beta"])
    app.number_input(key="new_sample").set_value(3)
    next(b for b in app.button if b.label == "Create study").click().run()
    assert not app.exception, app.exception
    assert any("Created the draft study" in s.value for s in app.success)
    app.run()  # the study list is drawn above the form: one more run shows the new study
    app.selectbox(key="admin_study").set_value("Second round").run()
    app.multiselect(key="admin_enrol").set_value(["rater1", "rater2"]).run()
    app.button(key="admin_enrol_go").click().run()
    app.button(key="admin_start").click().run()
    assert not app.exception, app.exception
    assert any("Started: 3 cases, 3 items" in s.value for s in app.success)
    from studies.readers.progress import list_studies

    assert [s.status for s in list_studies(store)] == ["active", "active"]
    # A bad design is refused with a message naming the field, and nothing is created.
    app.text_input(key="new_name").input("Third")
    app.multiselect(key="new_systems").set_value(["sys-alpha"])
    next(b for b in app.button if b.label == "Create study").click().run()
    assert any("systems: choose at least two" in e.value for e in app.error)
    assert len(list_studies(store)) == 2


def test_admin_manages_accounts(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "chief", PASSWORD)
    rater_token = accounts.log_in(store, "rater2", PASSWORD)
    app = _open("studies_admin.py", token)
    app.selectbox(key="acc_target").set_value("rater2")
    app.radio(key="acc_action").set_value("deactivate")
    next(b for b in app.button if b.label == "Apply").click().run()
    assert any("rater2: deactivate done" in s.value for s in app.success)
    assert accounts.resolve_session(store, rater_token) is None
    app.radio(key="acc_action").set_value("set password")
    app.text_input(key="acc_password").input("short")
    next(b for b in app.button if b.label == "Apply").click().run()
    assert any("at least 10" in e.value for e in app.error)
