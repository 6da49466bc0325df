"""The annotation page and the Annotation results page through Streamlit's AppTest (the
browser test, tests/e2e/test_annotation_browser.py, drives the same pages in chromium).

Blinding: the whole rendered element tree is searched for anything naming the model. Nothing
typed is lost: a submit refused by a pause keeps the draft, which is saved after the resume;
an earlier case is corrected by a new annotation superseding the stored one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from support.app_pages import open_page, tree_text
from support.reader_world import build_world
from support.started_study import start_with

from studies.readers import accounts
from studies.readers.annotation import check_findings, next_annotation, submit_annotation
from studies.readers.design import StudyDesign
from studies.readers.lifecycle import pause_study, resume_study
from studies.store.db import get_store
from studies.store.schema import Annotation, Generation, System
from workbench.navigation import landing_page, visible_pages

PASSWORD = "rater-password-1"


@pytest.fixture
def world(tmp_home: Path):
    store = get_store()
    data = build_world(store, tmp_home / "data" / "benchmarks" / "reader", n_cases=3)
    anna, ben, carl = (
        accounts.create_account(store, name, "rater", PASSWORD) for name in ("anna", "ben", "carl")
    )
    admin = accounts.create_account(store, "chief", "admin", PASSWORD)
    study_id = start_with(
        store,
        StudyDesign(
            name="Expert round",
            benchmark=data.benchmark,
            systems=[data.systems[0]],
            kind="annotation",
            overlap=2,
            seed=3,
        ),
        (anna, ben),
    )
    # carl rates in a comparison study only.
    start_with(
        store,
        StudyDesign(
            name="Pairs", benchmark=data.benchmark, systems=data.systems, overlap=1, seed=4
        ),
        [carl],
    )
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += list(session.scalars(select(System.fingerprint)))
        secrets += list(session.scalars(select(Generation.prompt_hash)))
    return store, (anna, ben, carl), admin, study_id, secrets


def _token(username: str) -> str:
    return accounts.log_in(get_store(), username, PASSWORD, session_hours=1)


def _button(app: AppTest, label: str):  # noqa: ANN202
    return next(b for b in app.button if b.label == label)


def test_the_menu_offers_the_annotation_page_to_its_panel_only(world) -> None:
    store, (anna, _ben, carl), admin, _study, _secrets = world
    files = {
        name: [s.file for s in visible_pages(a)] for name, a in (("anna", anna), ("carl", carl))
    }
    assert "annotate.py" in files["anna"] and "annotate.py" not in files["carl"]
    assert "annotation_results.py" not in files["anna"]
    admin_files = [s.file for s in visible_pages(admin)]
    assert "annotation_results.py" in admin_files and "annotate.py" not in admin_files
    assert "annotate.py" not in [s.file for s in visible_pages(None)]
    assert landing_page(anna) == "annotate.py"
    assert landing_page(carl) == "rate.py"
    # The rating page does not offer the annotation study.
    app = open_page("rate.py", _token("anna"))
    assert any("no reader study to rate" in i.value for i in app.info)


def test_a_refused_submit_keeps_the_draft_and_the_page_names_no_system(world) -> None:
    store, (anna, _ben, _carl), _admin, study_id, secrets = world
    task = next_annotation(store, anna.id, study_id)
    app = open_page("annotate.py", _token("anna"))
    tree = tree_text(app)
    for secret in secrets:
        assert secret not in tree, f"{secret!r} reached the annotation page"
    assert any("SYNTHETIC data" in w.value for w in app.warning)
    assert app.text_area[0].value == task.draft_report
    assert any(f"Case {task.position} of {task.total}" in m.value for m in app.markdown)

    report = task.draft_report + " Reviewed."
    app.text_area[0].set_value(report)
    _bbps(app).set_value(6)
    pause_study(store, study_id)
    _button(app, "Submit annotation").click().run()
    assert not app.exception, app.exception
    assert any("paused" in i.value for i in app.info)
    assert any("kept in this tab" in c.value for c in app.caption)
    with store.session() as session:
        assert session.scalars(select(Annotation)).all() == []

    resume_study(store, study_id)
    app.run()
    assert app.text_area[0].value == report
    assert _bbps(app).value == 6
    assert any("paused" in e.value for e in app.error)  # the refused submit, said once
    _button(app, "Submit annotation").click().run()
    assert not app.exception, app.exception
    assert any(f"Case {task.position} saved." in s.value for s in app.success)
    with store.session() as session:
        (row,) = session.scalars(select(Annotation)).all()
    expected = {**task.draft_findings, "bbps_total": 6}
    assert (row.rater_id, row.report, row.findings, row.source) == (
        anna.id,
        report,
        check_findings(expected),
        "corrected",
    )

    # The earlier case corrected: a new row superseding the stored one.
    fix = next(t for t in app.text_area if t.label == "Corrected report")
    assert fix.value == report
    fix.set_value(report + " Amended.")
    next(w for w in app.number_input if w.label == "BBPS total (0-9) (correction)").set_value(8)
    _button(app, "Save correction").click().run()
    assert not app.exception, app.exception
    assert any(f"Correction of case {task.position} saved" in s.value for s in app.success)
    with store.session() as session:
        first, second = session.scalars(select(Annotation).order_by(Annotation.id)).all()
    assert second.supersedes_id == first.id and second.report == report + " Amended."
    assert second.findings == check_findings({**expected, "bbps_total": 8})
    assert app.text_area[0].label == "Report (correct the draft)"  # the next case waits


def _bbps(app: AppTest):  # noqa: ANN202
    return next(w for w in app.number_input if w.key.endswith("_c_bbps_total"))


def test_the_results_page_sends_disagreements_and_shows_the_validation(world) -> None:
    store, (anna, ben, _carl), admin, study_id, _secrets = world
    accounts.create_account(store, "senior", "rater", PASSWORD)
    for rater in (anna, ben):
        while (task := next_annotation(store, rater.id, study_id)) is not None:
            findings = dict(task.draft_findings)
            if rater is ben and task.position == 1:
                findings["bbps_total"] = 5  # ben's first case: the one disagreement
            submit_annotation(
                store, rater.id, task.token, f"{rater.id}-{task.token}", task.draft_report, findings
            )
    app = open_page("annotation_results.py", _token("chief"))
    assert any("1 case(s) in disagreement" in m.value for m in app.markdown)
    assert any("Extractor validation" in h.value for h in app.subheader)
    app.text_input(key="annres_senior").input("senior")
    _button(app, "Send to the adjudicator").click().run()
    assert not app.exception, app.exception
    assert any("1 added" in s.value for s in app.success)
    senior = accounts.resolve_session(store, _token("senior"))
    assert next_annotation(store, senior.id, study_id).adjudication


def test_home_opens_the_annotation_study_it_names(world) -> None:
    store, (anna, ben, _carl), _admin, _study_id, _secrets = world
    second = start_with(
        store,
        StudyDesign(
            name="Second round",
            benchmark="synthetic-reader",
            systems=["sys-beta"],
            kind="annotation",
            overlap=2,
            seed=9,
        ),
        (anna, ben),
    )
    # What Home's "Go annotating" sets.
    app = open_page("annotate.py", _token("anna"), {"rate_open_study": second})
    assert app.selectbox(key="annot_study").value == 1  # the second study, by its place
    task = next_annotation(store, anna.id, second)
    assert app.text_area[0].value == task.draft_report


def test_written_from_scratch_every_problem_at_once(world) -> None:
    store, (anna, _ben, _carl), _admin, _study_id, secrets = world
    scratch = start_with(
        store,
        StudyDesign(
            name="From scratch",
            benchmark="synthetic-reader",
            systems=["sys-gamma"],
            kind="annotation",
            annotation_source="written",
            overlap=1,
            seed=2,
        ),
        [anna],
    )
    app = open_page("annotate.py", _token("anna"), {"rate_open_study": scratch})
    # A blank page: no model report, no drafted findings, and nothing naming the model.
    (report,) = [t for t in app.text_area if t.label == "Report (write the reference report)"]
    assert report.value == ""
    assert not any(s.label.endswith("(lesion 1)") for s in app.selectbox)
    tree = tree_text(app)
    assert not any(secret in tree for secret in secrets)
    _button(app, "Add lesion").click().run()
    next(s for s in app.selectbox if s.label == "No polyps").set_value(True)
    _button(app, "Submit annotation").click().run()
    assert not app.exception, app.exception
    (error,) = [e.value for e in app.error if "Not saved" in e.value]
    assert "- Report: " in error and "- No polyps: " in error  # both at once, each named
    assert any(s.label == "Location (lesion 1)" for s in app.selectbox)  # the lesion stays
    with store.session() as session:
        assert session.scalars(select(Annotation)).all() == []
