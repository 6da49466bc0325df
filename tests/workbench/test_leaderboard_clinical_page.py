"""The Leaderboard page's case drill-down: the clinical metric's detection, description and
surveillance parts on the case beside the corpus CIs, and errors with their levels."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from studies.readers import accounts
from studies.store.db import Store, get_store
from studies.store.schema import Benchmark, Case, Generation, System
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")


def populate(store: Store) -> None:
    texts = {
        "reference": "A 12 mm sessile polyp in the sigmoid colon. Pathology: tubular adenoma.",
        "small": "A 6 mm sessile polyp in the sigmoid colon. Pathology: tubular adenoma.",
        "silent": "",
    }
    with store.session() as session:
        bench = Benchmark(name="lb-clin", loader="test", root="/tmp", task="report", synthetic=True)
        session.add(bench)
        session.flush()
        systems = [System(name=n, kind="test", fingerprint=f"fp-{n}") for n in texts]
        session.add_all(systems)
        for i in range(4):
            case = Case(
                benchmark_id=bench.id,
                case_key=f"c{i}",
                split="test",
                modality="image",
                references=[texts["reference"]],
                content_hash=str(i),
            )
            session.add(case)
            session.flush()
            for system in systems:
                session.add(
                    Generation(
                        system_fingerprint=system.fingerprint,
                        system_id=system.id,
                        case_id=case.id,
                        prompt_hash="p",
                        text=texts[system.name],
                    )
                )


def test_drill_down_shows_detection_description_surveillance_and_error_levels(
    tmp_home: Path,
) -> None:
    store = get_store()
    populate(store)
    admin = accounts.create_account(store, "lbc-admin", "admin", "Leaderboard-admin-pass-1")
    page = AppTest.from_file(APP, default_timeout=180)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / "leaderboard.py")).run()
    page.selectbox(key="lb_baseline").set_value("small")
    page.multiselect(key="lb_metrics").set_value(["clinical"])
    page.number_input(key="lb_resamples").set_value(50)
    page.number_input(key="lb_permutations").set_value(50)
    page.button(key="lb_run").click().run()
    assert not page.exception, page.exception
    table = page.dataframe[0].value
    assert {"Lesion recall", "Attribute accuracy", "Surveillance agreement"} <= set(table["Metric"])
    page.selectbox(key="lb_left").set_value("small")
    page.selectbox(key="lb_right").set_value("silent")
    page.run()
    assert not page.exception, page.exception
    parts = [d.value for d in page.dataframe[1:]]
    small, silent = [p for p in parts if "Clinical score" in p]
    # 4 matched findings, one surveillance-level size error (weight 3): 4 / (4 + 3), above
    # the surveillance ceiling, so 0.5.
    clinical = small[small["Clinical score"] == "clinical"].iloc[0]
    assert clinical["This case"] == f"{min(4 / 7, 0.5):.3f}"
    assert (silent[silent["Clinical score"] == "clinical"]["This case"] == "0.000").all()
    recall = small[small["Clinical score"] == "lesion-recall"].iloc[0]
    assert recall["This case"] == "1.000" and recall["All cases [95% CI]"].startswith("1.000 [")
    captions = " ".join(c.value for c in page.caption)
    assert "USMSTF 2020 interval from this report: 1-2 tubular adenomas < 10 mm: 7-10 years" in (
        captions
    )
    marks = " ".join(m.value for m in page.markdown)
    assert ":red-background[wrong size class: expected 'large', found 'small']" in marks
    assert "changes the USMSTF 2020 surveillance interval" in marks
    assert "no assertion: the report states nothing about polyps" in marks
