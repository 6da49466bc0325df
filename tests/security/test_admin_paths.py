"""Paths typed into admin pages stay inside the data folder (review row 31, D16 admin side):
the Preferences export and the Training page's adapter, export and start-adapter folders.
A folder outside is refused with a message naming the data folder; nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import get_store
from studies.store.media import MediaPathError, path_inside
from studies.systems.training_jobs import list_training_jobs

VIEWS = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(VIEWS.parent / "app.py")
LIKERT = {"accuracy": 4, "completeness": 4, "safety": 5}


def _judged_study(tmp_home: Path) -> None:
    store = get_store()
    world = build_world(store, tmp_home / "bench", n_cases=3, systems=("sys-a", "sys-b"))
    rater = accounts.create_account(store, "rater-paths", "rater", "rater-paths-pw-1")
    study_id = create_study(
        store,
        StudyDesign(name="Paths", benchmark=world.benchmark, systems=world.systems, overlap=1),
    )
    enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    while (task := next_assignment(store, rater.id, study_id)) is not None:
        likert = {"left": LIKERT, "right": LIKERT}
        submit_judgment(store, rater.id, task.token, f"{task.token}-k", "left", likert, "")


def _admin_page(name: str) -> AppTest:
    store = get_store()
    admin = accounts.create_account(store, "paths-admin", "admin", "paths-admin-pw-1")
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state["medvision_session"] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(VIEWS / name)).run()
    assert not page.exception, page.exception
    return page


def _button(page: AppTest, label: str):  # noqa: ANN202
    return next(b for b in page.button if b.label == label)


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_the_preferences_export_stays_in_the_data_folder(tmp_home: Path, where: str) -> None:
    """row 31: the Output folder wrote to any server folder at ebb17df."""
    _judged_study(tmp_home)
    page = _admin_page("preferences.py")
    outside = tmp_home.parent / "outside-export"
    typed = str(outside) if where == "absolute" else "../../outside-export"
    page.text_input(key="prefs_out").set_value(typed)
    _button(page, "Export").click().run()
    assert not page.exception, page.exception
    data = (tmp_home / "data").resolve()
    assert any("Output folder" in e.value and f"outside {data}" in e.value for e in page.error), [
        e.value for e in page.error
    ]
    assert not outside.exists()
    # A folder typed relative to the data folder lands inside it.
    page.text_input(key="prefs_out").set_value("preferences/mine")
    _button(page, "Export").click().run()
    assert (data / "preferences" / "mine" / "train.jsonl").is_file()


def test_the_training_page_writes_adapters_only_in_the_data_folder(tmp_home: Path) -> None:
    """row 31: the Adapter output folder wrote to any server folder at ebb17df."""
    _judged_study(tmp_home)
    page = _admin_page("training.py")
    outside = tmp_home.parent / "outside-adapter"
    page.text_input(key="train_out").set_value(str(outside))
    _button(page, "Start training").click().run()
    assert not page.exception, page.exception
    assert any("Adapter output folder" in e.value for e in page.error)
    assert not outside.exists() and list_training_jobs(get_store()) == []


def test_the_one_check_of_a_typed_path(tmp_path: Path) -> None:
    """row 31: absolute and relative paths inside the root resolve; `..`, an absolute path
    outside and a symlink out of the root are refused with the root named."""
    root = tmp_path / "data"
    (root / "inside").mkdir(parents=True)
    (root / "link").symlink_to(tmp_path)
    assert path_inside(root, "inside/x") == (root / "inside" / "x").resolve()
    assert path_inside(root, str(root / "y")) == (root / "y").resolve()
    for typed in ("../elsewhere", str(tmp_path / "elsewhere"), "link/elsewhere", "/etc"):
        with pytest.raises(MediaPathError, match=f"outside {root.resolve()}"):
            path_inside(root, typed)
    with pytest.raises(MediaPathError, match="is empty"):
        path_inside(root, "  ")
