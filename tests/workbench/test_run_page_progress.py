"""The Run page: progress by the case with the time left, the form kept after a run, the
duration of recent runs, and the warning for a baseline run on the split it is built from.

At ebb17df the page showed "0/?" until the first chunk, reset the form after every run,
listed runs without a duration and scored the retrieval baseline on train without a word.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from model.spec import SystemSpec
from studies.benchmarks.importer import import_benchmark
from studies.readers import accounts
from studies.store.db import get_store
from studies.store.schema import Account
from studies.systems.registry import register_system
from studies.systems.runs import RunJob, RunProgress
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")


@pytest.fixture
def home(tmp_home: Path) -> Path:
    store = get_store()
    root = tmp_home / "data" / "benchmarks" / "synthetic-colon"
    import_benchmark(store, "synthetic-colon", root, options={"n_images": 10, "n_videos": 0})
    register_system(store, "reference", SystemSpec(kind="reference", batch_size=1))
    register_system(store, "template-baseline", SystemSpec(kind="template", batch_size=1))
    return tmp_home


def _page() -> AppTest:
    store = get_store()
    with store.session() as session:
        admin_id = session.scalar(select(Account.id).where(Account.username == "run-admin"))
    if admin_id is None:
        admin_id = accounts.create_account(store, "run-admin", "admin", "a long test password 1").id
    page = AppTest.from_file(APP, default_timeout=60)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin_id)
    page.run()
    page.switch_page(str(PAGES / "run.py")).run()
    assert not page.exception, page.exception
    return page


def _progress_text(page: AppTest) -> str:
    return " ".join(str(bar.proto.text) for bar in page.get("progress"))


def test_progress_names_the_stage_then_counts_cases_with_the_time_left(home: Path) -> None:
    page = _page()
    # A job whose thread has not reported yet: the page says what it is doing, not "0/?".
    job = RunJob(benchmark="synthetic-colon", systems=["reference"], split="test", limit=None)
    job.current = "reference"
    job.state = RunProgress("reference", "preparing", 0, 0)
    page.session_state["run_job"] = job
    page.run()
    text = _progress_text(page)
    assert "preparing" in text and "?" not in text
    job.state = RunProgress("reference", "generating", 3, 8, generated=3, generating_s=6.0)
    page.run()
    text = _progress_text(page)
    assert "3/8 cases, 2.0 s per case, about 10 s left" in text


def test_the_form_is_kept_and_runs_show_durations_and_the_train_warning(home: Path) -> None:
    page = _page()
    page.multiselect(key="run_systems").set_value(["template-baseline"])
    page.selectbox(key="run_split").set_value("train")
    page.number_input(key="run_limit").set_value(3)
    page.button[0].click().run()
    assert not page.exception
    job = page.session_state["run_job"]
    assert job.wait(60)
    deadline = time.monotonic() + 30
    page.run()
    while page.get("progress") and time.monotonic() < deadline:
        page.run()
    assert not page.exception
    assert page.multiselect(key="run_systems").value == ["template-baseline"]
    assert page.selectbox(key="run_split").value == "train"
    assert page.number_input(key="run_limit").value == 3
    warnings = [w.value for w in page.warning]
    assert any("built from the train split" in w and "val or test" in w for w in warnings)
    table = page.dataframe[0].value
    assert list(table["duration"]) and all(str(d).endswith(" s") for d in table["duration"])
    assert all(str(s).endswith(" UTC") for s in table["started"])
