"""The Preferences and Training pages through Streamlit's AppTest, on a judged synthetic study."""

from __future__ import annotations

import os
import time
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
from studies.systems.training_jobs import list_training_jobs

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")
GOOD = {"accuracy": 5, "completeness": 4, "safety": 5}
POOR = {"accuracy": 2, "completeness": 2, "safety": 3}


def judge_study(store, tmp_root: Path, name: str = "Round 1", judge: bool = True) -> None:
    """A started study on synthetic reports; raters prefer the fuller (longer) report."""
    world = build_world(store, tmp_root, n_cases=6, systems=("sys-alpha", "sys-beta"))
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-pass-1") for i in range(2)
    ]
    study_id = create_study(
        store,
        StudyDesign(name=name, benchmark=world.benchmark, systems=world.systems, overlap=2, seed=1),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    for rater in raters if judge else []:
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            left_better = len(task.left_text) >= len(task.right_text)
            likert = {"left": GOOD, "right": POOR} if left_better else {"left": POOR, "right": GOOD}
            submit_judgment(
                store,
                rater.id,
                task.token,
                f"{task.token}-1",
                "left" if left_better else "right",
                likert,
                "",
                3.0,
            )


def _page(name: str) -> AppTest:
    """The page opened by a logged-in admin."""
    store = get_store()
    admin = accounts.get_account(store, "prefs-admin") or accounts.create_account(
        store, "prefs-admin", "admin", "admin-pass-123"
    )
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state["medvision_session"] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / name)).run()
    assert not page.exception, page.exception
    return page


def _button(page: AppTest, label: str):
    return next(b for b in page.button if b.label == label)


def _texts(page: AppTest) -> str:
    parts = [e.value for e in page.markdown] + [e.value for e in page.caption]
    parts += [e.value for e in page.success] + [e.value for e in page.warning]
    parts += [e.value for e in page.error] + [e.value for e in page.info]
    return "\n".join(str(p) for p in parts)


def test_preferences_page_counts_previews_and_exports(tmp_home: Path) -> None:
    judge_study(get_store(), tmp_home / "bench")
    page = _page("preferences.py")
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Pairs"] == "6" and metrics["Automatic"] == "0"
    assert any("SYNTHETIC" in w.value for w in page.warning)
    assert len(page.dataframe) == 1
    # A stricter policy: both raters must be on the winning side -> still 6 (they agree).
    page.slider(key="prefs_min_agreement").set_value(1.0)
    _button(page, "Apply policy").click().run()
    assert {m.label: m.value for m in page.metric}["Pairs"] == "6"
    page.number_input(key="prefs_min_raters").set_value(3)
    _button(page, "Apply policy").click().run()
    assert {m.label: m.value for m in page.metric}["Pairs"] == "0"
    assert "too few raters 6" in _texts(page)
    page.number_input(key="prefs_min_raters").set_value(1)
    _button(page, "Apply policy").click().run()
    out = tmp_home / "data" / "export"  # inside the data folder, as the page requires
    page.text_input(key="prefs_out").set_value(str(out))
    _button(page, "Export").click().run()
    assert not page.exception, page.exception
    assert any("Wrote" in s.value for s in page.success), _texts(page)
    assert (out / "hf").is_dir() and (out / "train.jsonl").is_file()
    # Exporting into the same folder again is refused with a message.
    _button(page, "Export").click().run()
    assert any("not empty" in e.value for e in page.error)
    # So is a folder that cannot be made (its parent is a file), without a traceback.
    (tmp_home / "data" / "a-file").write_text("x")
    page.text_input(key="prefs_out").set_value(str(tmp_home / "data" / "a-file" / "export"))
    _button(page, "Export").click().run()
    assert not page.exception, page.exception
    assert any(f"cannot write into {tmp_home / 'data' / 'a-file'}" in e.value for e in page.error)


def test_preferences_page_on_an_unjudged_study(tmp_home: Path) -> None:
    judge_study(get_store(), tmp_home / "bench", name="Round 1 (synthetic)", judge=False)
    page = _page("preferences.py")
    assert not page.exception, page.exception
    assert "No judgments yet: none of the 6 items" in _texts(page)
    assert "relax it" not in _texts(page)
    # The study is on synthetic cases even before anyone judged them.
    assert any("SYNTHETIC" in w.value for w in page.warning)
    # The default folder is safe to paste into a shell: no spaces or brackets.
    out = Path(page.text_input(key="prefs_out").value)
    assert out.name.startswith("Round-1-synthetic-") and " " not in str(out)


def test_preferences_page_without_studies(tmp_home: Path) -> None:
    page = _page("preferences.py")
    assert "No reader study yet" in _texts(page)


def test_training_page_starts_a_dpo_job_and_shows_it(tmp_home: Path, tiny_model_dir: Path) -> None:
    from studies.preferences.harvest import HarvestPolicy, export_preferences, harvest_preferences

    store = get_store()
    judge_study(store, tmp_home / "bench")
    prefs = tmp_home / "data" / "prefs"
    export_preferences(
        harvest_preferences(store, "Round 1", HarvestPolicy(validation_fraction=0.2)), prefs
    )
    from model.spec import SystemSpec
    from studies.systems.registry import get_system, register_system

    spec = SystemSpec(kind="vlm", model=str(tiny_model_dir), max_new_tokens=12)
    register_system(store, "tiny-like", spec)
    page = _page("training.py")
    assert "No finished training jobs yet." in _texts(page)
    # The new system copies the decoding settings of the registered model system.
    assert page.selectbox(key="train_like").value == "tiny-like"
    page.text_input(key="train_model").set_value(str(tiny_model_dir))
    page.text_input(key="train_prefs").set_value(str(prefs))
    page.number_input(key="train_steps").set_value(2)
    page.number_input(key="train_batch").set_value(2)
    page.number_input(key="train_rank").set_value(4)
    page.text_input(key="train_out").set_value(str(tmp_home / "data" / "adapter"))
    page.text_input(key="train_system").set_value("tiny-dpo-page")
    _button(page, "Start training").click().run()
    assert not page.exception, page.exception
    assert any("started" in s.value for s in page.success), _texts(page)
    deadline = time.monotonic() + 240
    while list_training_jobs(store)[0].status == "running":
        assert time.monotonic() < deadline, "the training job did not finish"
        time.sleep(0.3)
    job = list_training_jobs(store)[0]
    assert job.status == "done", job.error
    assert job.system_name == "tiny-dpo-page" and len(job.losses) == 2
    assert get_system(store, "tiny-dpo-page").spec.max_new_tokens == 12
    page = _page("training.py")
    assert any("done" in e.label and "tiny-dpo-page" in e.label for e in page.expander)
    # The synthetic study's pairs are labelled, and the data is said in words, not as a dict.
    assert any("SYNTHETIC data" in e.label for e in page.expander)
    captions = _texts(page)
    assert f"preference export `{prefs.resolve()}` of study Round 1 (" in captions
    assert "train pairs)" in captions
    assert "{'prefs'" not in captions
    # A bad folder is reported, and no job is added.
    page.text_input(key="train_model").set_value(str(tmp_home / "no-model"))
    _button(page, "Start training").click().run()
    assert any("config.json" in e.value for e in page.error)
    assert len(list_training_jobs(store)) == 1


@pytest.mark.parametrize("page_name", ["preferences.py", "training.py"])
def test_pages_are_registered_for_admins(page_name: str) -> None:
    from workbench.navigation import PAGES as SPECS

    spec = next(s for s in SPECS if s.file == page_name)
    assert spec.roles == ("admin",)


def test_training_page_defaults_to_the_newest_export_and_a_registered_model(
    tmp_home: Path, tiny_model_dir: Path
) -> None:
    from model.spec import SystemSpec
    from studies.preferences.harvest import HarvestPolicy, export_preferences, harvest_preferences
    from studies.store.settings import get_settings
    from studies.systems.registry import register_system

    store = get_store()
    page = _page("training.py")
    assert "No preference export yet" in _texts(page)
    assert page.text_input(key="train_model").value == get_settings().model

    judge_study(store, tmp_home / "bench")
    register_system(store, "tiny-vlm", SystemSpec(kind="vlm", model=str(tiny_model_dir)))
    exports = get_settings().data_dir / "preferences"
    result = harvest_preferences(store, "Round 1", HarvestPolicy(validation_fraction=0.2))
    export_preferences(result, exports / "older")
    newest = exports / "newer"
    export_preferences(result, newest)
    os.utime(exports / "older" / "export.json", (1, 1))
    page = _page("training.py")
    assert "No preference export yet" not in _texts(page)
    assert page.text_input(key="train_prefs").value == str(newest)
    assert page.text_input(key="train_model").value == str(tiny_model_dir)
