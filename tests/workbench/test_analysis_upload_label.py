"""The Analysis page, given a study's own export as an upload, keeps its synthetic label.

At ebb17df the upload of a synthetic study's CSV showed no SYNTHETIC banner.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest
from support.rated_study import rated_study

from studies.exports.synthetic import CASES, synthetic_line
from studies.readers import accounts
from studies.readers.rating import export_judgments
from studies.store.db import get_store
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")


def test_an_uploaded_study_export_keeps_its_label(tmp_home: Path) -> None:
    store = get_store()
    name = rated_study(store, tmp_home / "data" / "reader", synthetic_cases=True, n_cases=8)
    exported = export_judgments(store, name, "csv").encode("utf-8")
    admin = accounts.create_account(store, "analyst", "admin", "Analysis-admin-pass-1")
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / "analysis.py")).run()
    page.radio(key="analysis_source").set_value("A judgments file").run()
    page.file_uploader(key="analysis_file").upload(f"{name}.csv", exported, "text/csv").run()
    page.number_input(key="analysis_resamples").set_value(20)
    page.button(key="analysis_run").click().run()
    assert not page.exception, page.exception
    assert not page.error, [e.value for e in page.error]
    warnings = [w.value for w in page.warning]
    assert synthetic_line(CASES) in warnings
    assert not any("simulated" in w for w in warnings)
    footer = " ".join(c.value for c in page.caption)
    assert synthetic_line(CASES) in footer
