"""The rating, log-in, invite and reader-study admin pages through Streamlit's AppTest.

Blinding: every rater page is rendered and the full element tree (labels, help texts,
widget ids, media URLs) is searched for anything naming a system.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest
from support.app_pages import APP, VIEWS, open_page, tree_text
from support.rating_form import form_data, has_form, send, submit
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import GoldSpec, StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import guidelines_acknowledged, next_assignment, rater_studies
from studies.store.db import get_store
from studies.store.schema import Case, CaseFlag, Generation, Judgment, System
from workbench.access import SESSION_KEY

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


def _judgments(store) -> int:  # noqa: ANN001
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Judgment))


def _acknowledged(app: AppTest) -> AppTest:
    """Past the guidelines shown at the first visit (acknowledged, recorded)."""
    if form_data(app)["guidelines_required"]:
        send(app, "ack", {})
    return app


def test_rater_rates_resumes_and_never_sees_a_system(world) -> None:
    store, raters, _admin, secrets = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    texts = []
    first = form_data(app)
    assert first["data_label"].startswith("SYNTHETIC") and first["task"]["done"] == 0
    assert [c["key"] for c in first["form"]["criteria"]] == ["accuracy", "completeness", "safety"]
    for n in range(3):
        data = form_data(app)
        texts.append(tree_text(app))
        assert data["task"]["position"] == n + 1 and data["mode"] == "rate"
        assert (
            "Synthetic case" in data["task"]["left"] and "Synthetic case" in data["task"]["right"]
        )
        assert data["task"]["media"][0]["src"].startswith("data:image/png;base64,")
        # The case after this one goes ahead, shown at once on submit, blinded the same way.
        assert data["next"]["position"] == n + 2 and data["next"]["done"] == n + 1
        submit(app, "both_bad" if n == 1 else "left", comment="both miss it" if n else "")
        assert form_data(app)["task"]["done"] == n + 1
        assert form_data(app)["reply"] is not None  # the form learns its submit was handled
    assert _judgments(store) == 3
    # The drafts of the saved answers may go from the browser.
    assert form_data(app)["clear_drafts"] == [] or len(form_data(app)["clear_drafts"]) == 1
    # A fresh browser session with the same log-in lands on the fourth task.
    resumed = open_page("rate.py", token)
    assert form_data(resumed)["task"]["position"] == 4
    assert not form_data(resumed)["guidelines_required"]  # acknowledged once, recorded
    # Home is the only other page a rater reaches; log-in and invite are for visitors.
    texts.append(tree_text(open_page("home.py", token)))
    for page in ("login.py", "invite.py"):
        texts.append(tree_text(open_page(page, None)))
    texts.append(tree_text(resumed))
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked onto a rater page"
        assert "fingerprint" not in text.lower() and "system" not in text.lower()


def test_guidelines_come_first_and_are_acknowledged_once(world) -> None:
    store, raters, _admin, _secrets = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = open_page("rate.py", token)
    data = form_data(app)
    assert data["guidelines_required"] and "Report A" in data["guidelines"]
    study_id = rater_studies(store, raters[0].id)[0].id
    assert not guidelines_acknowledged(store, raters[0].id, study_id)
    send(app, "ack", {})
    assert guidelines_acknowledged(store, raters[0].id, study_id)
    assert not form_data(app)["guidelines_required"]
    assert form_data(app)["guidelines"] == data["guidelines"]  # G still opens them


def test_every_missing_answer_is_refused_by_the_server_too(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    submit(app, "both_bad")
    assert "needs a comment" in form_data(app)["message"]["text"]
    assert form_data(app)["message"]["kind"] == "error"
    # The answer sent is kept for the form (as the browser's draft is).
    assert form_data(app)["answer"]["choice"] == "both_bad"
    submit(app, "left", likert={"left": {"accuracy": 4}, "right": {}})
    assert "rate Completeness" in form_data(app)["message"]["text"]
    assert _judgments(store) == 0
    assert form_data(app)["task"]["position"] == 1


def test_rater_flags_a_case_they_cannot_assess(world) -> None:
    store, raters, _admin, _secrets = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    data = form_data(app)
    assert {r["key"] for r in data["flag_reasons"]} == {"image_quality", "media_broken", "other"}
    send(app, "flag", {"token": data["task"]["token"], "reason": "other", "note": ""})
    assert "note" in form_data(app)["message"]["text"]
    assert form_data(app)["task"]["token"] == data["task"]["token"]
    send(
        app,
        "flag",
        {"token": data["task"]["token"], "reason": "image_quality", "note": "blurred"},
    )
    after = form_data(app)
    assert after["message"]["kind"] == "success"
    assert after["task"]["token"] != data["task"]["token"]
    # "Case n of N" counts the cases left to the rater: the flagged one is out of both (its
    # place in the order would have read "case 2" and, at the end, "case N + 1 of N").
    assert after["task"]["total"] == data["task"]["total"] - 1
    assert after["task"]["number"] == 1 and after["next"]["number"] == 2
    assert data["task"]["token"] in after["clear_drafts"]
    with store.session() as session:
        flags = session.execute(select(CaseFlag.reason, CaseFlag.note, CaseFlag.rater_id)).all()
    assert [(f.reason, f.note, f.rater_id) for f in flags] == [
        ("image_quality", "blurred", raters[0].id)
    ]
    assert _judgments(store) == 0


def test_both_unacceptable_needs_a_comment(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    submit(app, "both_bad")
    assert "needs a comment" in form_data(app)["message"]["text"]
    assert _judgments(store) == 0
    submit(app, "both_bad", comment="both miss the 12 mm polyp")
    assert _judgments(store) == 1


def test_rater_cannot_open_the_admin_page_and_public_cannot_rate(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    direct = AppTest.from_file(str(VIEWS / "studies_admin.py"), default_timeout=60)
    direct.session_state[SESSION_KEY] = token
    direct.run()
    assert any("may not open this page" in e.value for e in direct.error)
    assert not direct.dataframe and "Download" not in tree_text(direct)
    anonymous = AppTest.from_file(str(VIEWS / "rate.py"), default_timeout=60).run()
    assert any("log in" in i.value.lower() for i in anonymous.info)
    assert not has_form(anonymous)


def test_expired_session_is_refused(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    accounts.log_out(store, token)
    page = AppTest.from_file(str(VIEWS / "rate.py"), default_timeout=60)
    page.session_state[SESSION_KEY] = token
    page.run()
    assert any("expired" in w.value for w in page.warning)
    assert not has_form(page)


def test_a_submit_after_the_session_expired_says_so_and_keeps_the_answer(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    accounts.log_out(store, token)  # expired (or revoked) while the rater was rating
    submit(app, "tie", comment="close call")
    assert not has_form(app) and _judgments(store) == 0
    told = [w.value for w in app.warning] + [i.value for i in app.info]
    assert any("expired" in m for m in told)
    assert any("expired" in m and "answer is kept" in m for m in told)
    # Logged in again, the same case comes back with the answer kept for the form.
    app.session_state[SESSION_KEY] = accounts.log_in(store, "rater1", PASSWORD)
    app.run()
    app.switch_page(str(VIEWS / "rate.py")).run()
    data = form_data(app)
    assert data["answer"]["choice"] == "tie" and data["answer"]["comment"] == "close call"
    submit(app, "tie", comment="close call")
    assert _judgments(store) == 1


def test_a_training_case_shows_its_reference_answer_and_the_training_status(
    tmp_home: Path,
) -> None:
    store = get_store()
    data = build_world(store, tmp_home / "data" / "benchmarks" / "reader", n_cases=4)
    for name in ("rater1", "rater2"):
        accounts.create_account(store, name, "rater", PASSWORD)
    alpha, beta = data.systems[0], data.systems[1]
    study_id = create_study(
        store,
        StudyDesign(
            name="Trained round",
            benchmark=data.benchmark,
            systems=data.systems,
            seed=3,
            calibration=[GoldSpec(data.case_keys[0], alpha, beta)],
        ),
    )
    for name in ("rater1", "rater2"):
        enrol_rater(store, study_id, name)
    start_study(store, study_id)
    app = _acknowledged(open_page("rate.py", accounts.log_in(store, "rater1", PASSWORD)))
    assert form_data(app)["feedback"] is None and form_data(app)["calibration"] is None
    submit(app, "left")
    after = form_data(app)
    assert after["feedback"].startswith("Reference answer for this training case:")
    assert after["calibration"].startswith("Training: 1 of 1 cases answered")
    assert after["task"]["position"] == 2
    submit(app, "left")
    assert form_data(app)["feedback"] is None  # shown once, after the training case only


def test_clips_and_frames_reach_the_form_as_anonymous_data(world, tmp_home: Path) -> None:
    store, raters, _admin, _secrets = world
    root = tmp_home / "data" / "benchmarks" / "reader"
    (root / "clips").mkdir()
    (root / "clips" / "case-secret-name.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 clip")
    frames = root / "frames" / "case-secret-frames"
    frames.mkdir(parents=True)
    png = next(root.rglob("*.png")).read_bytes()
    for index in range(30):
        (frames / f"frame_{index:03d}.png").write_bytes(png)
    task = next_assignment(store, raters[0].id, rater_studies(store, raters[0].id)[0].id)
    with store.session() as session:
        case_ids = session.scalars(select(Case.id).order_by(Case.id)).all()
        for case_id, (modality, path) in zip(
            case_ids,
            [("video", "clips/case-secret-name.mp4"), ("frames", "frames/case-secret-frames")] * 3,
            strict=False,
        ):
            session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(modality=modality, media=[{"path": path, "kind": modality}])
            )
    assert task is not None
    app = _acknowledged(open_page("rate.py", accounts.log_in(store, "rater1", PASSWORD)))
    shown = [form_data(app)["task"]]
    submit(app, "left")
    shown.append(form_data(app)["task"])
    kinds = {t["modality"]: t["media"] for t in shown}
    assert set(kinds) == {"video", "frames"}
    assert kinds["video"][0]["src"].startswith("data:video/mp4;base64,")
    assert len(kinds["frames"][0]["frames"]) == 10  # evenly spaced, at most 12
    assert all(f.startswith("data:image/png;base64,") for f in kinds["frames"][0]["frames"])
    assert "secret" not in tree_text(app)  # no file name reaches the browser


def test_the_next_case_goes_ahead_only_when_it_can_be_shown(world) -> None:
    store, raters, _admin, _secrets = world
    study_id = rater_studies(store, raters[0].id)[0].id
    app = _acknowledged(open_page("rate.py", accounts.log_in(store, "rater1", PASSWORD)))
    first = next_assignment(store, raters[0].id, study_id)
    second = next_assignment(store, raters[0].id, study_id, after_position=first.position)
    assert form_data(app)["next"]["token"] == second.token
    # The next case's image is broken: it is not sent ahead (its own turn says so).
    image = second.media[0].path
    intact = image.read_bytes()
    image.write_bytes(intact[:40])
    app.run()
    assert form_data(app)["next"] is None
    submit(app, "left")
    assert not has_form(app) and any("cannot be shown" in e.value for e in app.error)
    # The last case has nothing after it.
    app.button(key="rate_skip_flag").click().run()
    image.write_bytes(intact)  # fixed: the other pairs of that case can be shown again
    app.run()
    while form_data(app)["next"] is not None:
        submit(app, "left")
    last = form_data(app)["task"]
    assert last["number"] == last["total"]
    submit(app, "left")
    assert not has_form(app) and any("All done" in m.value for m in app.success)


def test_log_in_page(world) -> None:
    app = open_page("login.py", None)
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
    app = open_page("studies_admin.py", token)
    text = tree_text(app)
    assert "Progress per rater" in text and "Progress per pair" in text
    assert "rater1" in text and "sys-alpha" in text  # the admin sees systems
    assert "Download CSV" in text and "Download JSONL" in text
    app.button(key="admin_pause").click().run()
    assert not app.exception
    assert "paused" in tree_text(app)


def test_invite_page_creates_an_account(world) -> None:
    store, *_ = world
    token = accounts.create_invite(store, role="rater")
    app = AppTest.from_file(APP, default_timeout=60).run()
    app.switch_page(str(VIEWS / "invite.py"))
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


def test_rater_corrects_an_earlier_answer_ratings_included(world) -> None:
    store, raters, _admin, _secrets = world
    token = accounts.log_in(store, "rater1", PASSWORD)
    app = _acknowledged(open_page("rate.py", token))
    for _ in range(3):
        submit(app, "left", score=4)
    assert form_data(app)["earlier"] is None  # the list is sent only when asked (key P)
    send(app, "list", {})
    earlier = form_data(app)["earlier"]
    assert [e["number"] for e in earlier] == [3, 2, 1]
    assert earlier[-1]["label"] == "Case 1: Report A is better"
    send(app, "open", {"token": earlier[-1]["token"]})
    data = form_data(app)
    assert data["mode"] == "correct" and data["task"]["position"] == 1
    assert data["answer"]["choice"] == "left"
    assert data["answer"]["likert"]["left"]["accuracy"] == 4
    changed = {
        "left": {"accuracy": 2, "completeness": 3, "safety": 1},
        "right": {"accuracy": 5, "completeness": 5, "safety": 5},
    }
    submit(app, "right", likert=changed)
    after = form_data(app)
    assert after["mode"] == "rate" and after["task"]["position"] == 4
    assert "case 1 is changed" in after["message"]["text"]
    with store.session() as session:
        rows = session.execute(
            select(
                Judgment.id, Judgment.preference_shown, Judgment.supersedes_id, Judgment.likert
            ).order_by(Judgment.id)
        ).all()
    assert [r.preference_shown for r in rows] == ["left", "left", "left", "right"]
    assert rows[3].supersedes_id == rows[0].id
    assert sorted(rows[3].likert["a"].values()) in ([1, 2, 3], [5, 5, 5])


def test_admin_creates_enrols_and_starts_a_study(world) -> None:
    store, *_ = world
    token = accounts.log_in(store, "chief", PASSWORD)
    app = open_page("studies_admin.py", token)
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
    app = open_page("studies_admin.py", token)
    app.selectbox(key="acc_target").set_value("rater2")
    app.radio(key="acc_action").set_value("deactivate")
    app.checkbox(key="acc_confirm").check()
    next(b for b in app.button if b.label == "Apply").click().run()
    assert any("rater2: deactivate done" in s.value for s in app.success)
    assert accounts.resolve_session(store, rater_token) is None
    app.radio(key="acc_action").set_value("set password")
    app.text_input(key="acc_password").input("short")
    next(b for b in app.button if b.label == "Apply").click().run()
    assert any("at least 10" in e.value for e in app.error)
