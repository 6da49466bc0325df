"""The Reader studies admin page through Streamlit's AppTest over a real SQLite store:
destructive actions need a ticked confirmation and nothing destructive is preselected; the
flags raters gave are listed; the New-study form takes the washout, calibration and flag
policy with the design's own validation. (9f89c26: Close ended a study on one click, and
'Manage an account' opened on account 'admin' with 'deactivate' chosen.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study, study_design
from studies.readers.enrolment import enrol_rater
from studies.readers.flags import flag_task
from studies.readers.lifecycle import start_study
from studies.readers.progress import list_studies
from studies.readers.rating import next_assignment
from studies.store.db import get_store
from workbench.access import SESSION_KEY

VIEWS = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(VIEWS.parent / "app.py")
PASSWORD = "rater-password-1"
DESTRUCTIVE = {"deactivate", "close", "exclude"}


@pytest.fixture
def world(tmp_home: Path):  # noqa: ANN201
    store = get_store()
    data = build_world(store, tmp_home / "data" / "benchmarks" / "reader", n_cases=4)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2, 3)]
    accounts.create_account(store, "chief", "admin", PASSWORD)
    study_id = create_study(
        store,
        StudyDesign(name="Blind round", benchmark=data.benchmark, systems=data.systems[:2]),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    yield store, raters, study_id, data
    store.dispose()


def _admin_page(store) -> AppTest:  # noqa: ANN001
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[SESSION_KEY] = accounts.log_in(store, "chief", PASSWORD)
    app.run()
    app.switch_page(str(VIEWS / "studies_admin.py")).run()
    assert not app.exception, app.exception
    return app


def test_nothing_destructive_is_preselected_or_one_click(world) -> None:
    store, _raters, study_id, _data = world
    app = _admin_page(store)
    for box in [*app.selectbox, *app.radio]:
        assert str(box.value).lower() not in DESTRUCTIVE, (box.key, box.value)
    assert app.selectbox(key="acc_target").value is None
    assert app.radio(key="acc_action").value is None
    assert app.selectbox(key="panel_remove").value == "-"
    # Close: disabled until confirmed.
    assert app.button(key="admin_close").disabled
    app.checkbox(key="admin_close_confirm").check().run()
    assert not app.button(key="admin_close").disabled
    # Panel changes that take a rater off or hand tasks on: confirmed first.
    app.selectbox(key="panel_remove").set_value("rater3").run()
    assert app.button(key="panel_remove_go").disabled
    assert app.button(key="panel_reclaim_go").disabled
    app.checkbox(key="panel_confirm").check().run()
    assert not app.button(key="panel_remove_go").disabled
    app.button(key="admin_close").click().run()
    assert not app.exception, app.exception
    assert [s.status for s in list_studies(store)] == ["closed"]
    assert any("is closed" in s.value for s in app.success)


def test_deactivating_an_account_is_confirmed(world) -> None:
    store, raters, _study_id, _data = world
    rater_token = accounts.log_in(store, "rater2", PASSWORD)
    app = _admin_page(store)

    def apply() -> None:
        next(b for b in app.button if b.label == "Apply").click().run()
        assert not app.exception, app.exception

    apply()  # nothing chosen: nothing happens
    assert any("choose an account and an action first" in e.value for e in app.error)
    app.selectbox(key="acc_target").set_value("rater2")
    app.radio(key="acc_action").set_value("deactivate")
    apply()
    assert any("tick 'I confirm deactivating'" in e.value for e in app.error)
    assert accounts.get_account(store, "rater2").active
    assert accounts.resolve_session(store, rater_token) is not None
    app.checkbox(key="acc_confirm").check()
    apply()
    assert any("rater2: deactivate done" in s.value for s in app.success)
    assert not accounts.get_account(store, "rater2").active
    assert accounts.resolve_session(store, rater_token) is None


def test_the_admin_page_lists_flags_and_their_outcome(world) -> None:
    store, raters, study_id, _data = world
    task = next_assignment(store, raters[0].id, study_id)
    flag_task(store, raters[0].id, task.token, "f1", "other", "the clip stops after 1 s")
    app = _admin_page(store)
    assert any("Cases raters could not assess (1)" in s.value for s in app.subheader)
    [frame] = [d.value for d in app.dataframe if "what happened" in getattr(d.value, "columns", [])]
    row = frame.iloc[0]
    assert (row["rater"], row["note"], row["position"]) == ("rater1", "the clip stops after 1 s", 1)
    assert row["what happened"].startswith("handed to rater")
    assert row["reason"] == "Other (say why)"
    progress = next(d.value for d in app.dataframe if "remaining" in d.value.columns)
    assert "flagged" in progress.columns


def test_new_study_form_takes_washout_calibration_and_flag_policy(world) -> None:
    store, _raters, _study_id, data = world
    app = _admin_page(store)
    alpha, beta = data.systems[:2]

    def create(name: str) -> None:
        app.text_input(key="new_name").input(name)
        app.multiselect(key="new_systems").set_value([alpha, beta])
        next(b for b in app.button if b.label == "Create study").click().run()
        assert not app.exception, app.exception

    # The design's own checks, with the field named; nothing is created.
    app.number_input(key="new_calibration_threshold").set_value(0.8)
    create("Trained round")
    assert any("calibration_threshold: add calibration items first" in e.value for e in app.error)
    app.text_area(key="new_calibration").input(f"{data.case_keys[0]}, {alpha}")
    create("Trained round")
    assert any("calibration line 1: write 'case_key, better" in e.value for e in app.error)
    assert len(list_studies(store)) == 1

    app.text_area(key="new_calibration").input(f"{data.case_keys[0]}, {alpha}, {beta}")
    app.number_input(key="new_washout_cases").set_value(2)
    app.number_input(key="new_washout_days").set_value(3.0)
    app.radio(key="new_flag_policy").set_value("exclude")
    create("Trained round")
    assert any("Created the draft study" in s.value for s in app.success), app.error
    design = study_design(store, "Trained round")
    assert (design.washout_cases, design.washout_days) == (2, 3.0)
    assert [c.case_key for c in design.calibration] == [data.case_keys[0]]
    assert (design.calibration_threshold, design.flag_policy) == (0.8, "exclude")
