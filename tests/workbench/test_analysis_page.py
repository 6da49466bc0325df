"""The Analysis page through Streamlit's AppTest, on a study written to the store."""

from __future__ import annotations

import uuid
import zipfile
from io import BytesIO
from pathlib import Path

import pandas as pd
from streamlit.testing.v1 import AppTest

from studies.reader_stats.data import criteria_of
from studies.reader_stats.simulation import simulate_judgments
from studies.readers import accounts
from studies.store.db import Store, get_store
from studies.store.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Judgment,
    Study,
    StudyItem,
    System,
)
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")


def write_study(store: Store, judgments: pd.DataFrame, name: str) -> None:
    """The judgments as study rows (items in canonical order), inserted directly."""
    with store.session() as session:
        benchmark = Benchmark(
            name=f"bench-{name}",
            loader="synthetic-colon",
            root="/tmp",
            task="report",
            synthetic=True,
        )
        session.add(benchmark)
        session.flush()
        systems = {
            s: System(name=s, kind="template", fingerprint=uuid.uuid4().hex)
            for s in sorted(set(judgments["system_a"]) | set(judgments["system_b"]))
        }
        cases = {
            c: Case(
                benchmark_id=benchmark.id,
                case_key=c,
                split="test",
                modality="image",
                content_hash="0",
            )
            for c in sorted(judgments["case"].unique())
        }
        raters = {r: Account(username=r, role="rater") for r in judgments["rater"].unique()}
        study = Study(name=name, status="active", config={})
        session.add_all([*systems.values(), *cases.values(), *raters.values(), study])
        session.flush()
        generations = {}
        for (system, case), length in {
            **{(r.system_a, r.case): r.len_a for r in judgments.itertuples()},
            **{(r.system_b, r.case): r.len_b for r in judgments.itertuples()},
        }.items():
            generations[(system, case)] = Generation(
                system_fingerprint=systems[system].fingerprint,
                system_id=systems[system].id,
                case_id=cases[case].id,
                prompt_hash="p",
                text=" ".join(["word"] * int(length)),
            )
        session.add_all(generations.values())
        session.flush()
        items = {}
        for index, row in enumerate(judgments.itertuples(index=False)):
            key = (row.item, row.case)
            if key not in items:
                items[key] = StudyItem(
                    study_id=study.id,
                    case_id=cases[row.case].id,
                    system_a_id=systems[row.system_a].id,
                    system_b_id=systems[row.system_b].id,
                    generation_a_id=generations[(row.system_a, row.case)].id,
                    generation_b_id=generations[(row.system_b, row.case)].id,
                    kind="gold" if row.is_gold else "regular",
                    gold_answer=row.gold_answer if isinstance(row.gold_answer, str) else None,
                )
                session.add(items[key])
                session.flush()
            assignment = Assignment(
                token=uuid.uuid4().hex,
                study_id=study.id,
                rater_id=raters[row.rater].id,
                item_id=items[key].id,
                order_index=index,
                a_on_left=row.left == "a",
                is_duplicate=bool(row.is_duplicate),
            )
            session.add(assignment)
            session.flush()
            likert = {
                side: {c: int(getattr(row, f"likert_{side}_{c}")) for c in criteria_of(judgments)}
                for side in ("a", "b")
            }
            session.add(
                Judgment(
                    assignment_id=assignment.id,
                    rater_id=raters[row.rater].id,
                    submission_key=uuid.uuid4().hex,
                    preference_shown="left",
                    winner=row.winner,
                    likert=likert,
                    time_on_task_s=float(row.time_on_task_s),
                )
            )


def _page() -> AppTest:
    """The Analysis page, opened by a logged-in admin."""
    store = get_store()
    admin = accounts.get_account(store, "analyst") or accounts.create_account(
        store, "analyst", "admin", "Analysis-admin-pass-1"
    )
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / "analysis.py")).run()
    assert not page.exception, page.exception
    return page


def test_analysis_page_shows_tables_plots_and_downloads(tmp_home: Path) -> None:
    judgments = simulate_judgments(
        {"lora": 0.8, "base": 0.0, "template": -0.8},
        n_cases=12,
        raters=3,
        raters_per_item=2,
        tie_nu=0.4,
        gold_per_rater=2,
        duplicates_per_rater=2,
        seed=11,
    )
    write_study(get_store(), judgments, "pilot")
    page = _page()
    assert page.selectbox(key="analysis_study").value == "pilot"
    page.number_input(key="analysis_resamples").set_value(100)
    page.selectbox(key="analysis_ties").set_value("davidson")
    page.button(key="analysis_run").click().run()
    assert not page.exception, page.exception
    assert not page.error
    assert any("SYNTHETIC" in w.value for w in page.warning)
    # Summary, BT, win matrix, pairwise, Likert (4), agreement (3): at least 10 tables.
    assert len(page.dataframe) >= 10
    summary = page.dataframe[0].value
    assert list(summary["System"])[0] == "lora"
    captions = " ".join(c.value for c in page.caption)
    assert "bootstrap resamples = 100" in captions and "n raters = 3" in captions
    assert "Research software, not a medical device" in captions
    assert len(page.get("image")) == 4  # BT estimates, win matrix, Likert, agreement
    # Zip, LaTeX, Markdown; each figure as PNG (300 dpi), SVG and PDF.
    buttons = page.get("download_button")
    assert len(buttons) == 3 + 4 * 3
    assert {b.key for b in buttons} >= {
        "analysis_figure_bt_estimates_svg",
        "analysis_figure_agreement_pdf",
    }
    # The archive holds every table in three formats, the plots and the manifest.
    label, analysis, archive = page.session_state["analysis_result"]
    assert label == "pilot" and analysis.settings.tie_model == "davidson"
    names = set(zipfile.ZipFile(BytesIO(archive)).namelist())
    assert {"paper.tex", "paper.csv", "paper.md", "bt_estimates.png", "win_matrix.pdf"} <= names
    assert "manifest.json" in names and "analysis.json" in names


def test_analysis_page_without_studies_and_with_an_empty_study(tmp_home: Path) -> None:
    page = _page()
    assert any("No reader study yet" in i.value for i in page.info)
    assert page.button(key="analysis_run").disabled
    with get_store().session() as session:
        session.add(Study(name="empty", config={}))
    page = _page()
    page.button(key="analysis_run").click().run()
    assert not page.exception
    assert any("has no judgments yet" in e.value for e in page.error)
    assert "analysis_result" not in page.session_state


def test_analysis_page_opened_by_its_own_url_asks_for_a_log_in(tmp_home: Path) -> None:
    # Streamlit can run a file under pages/ without app.py (its first request after a start).
    page = AppTest.from_file(str(PAGES / "analysis.py"), default_timeout=60).run()
    assert not page.exception, page.exception
    assert any("Please log in" in i.value for i in page.info)
    assert not page.radio and not page.button


def test_a_new_reader_statistic_is_one_table_entry(tmp_home: Path, monkeypatch) -> None:  # noqa: ANN001
    """The recipe: a statistic over `analysis.judgments` plus one STUDY_TABLES line shows
    on its tab and lands in every export, with no edit to the page or the exports."""
    from studies.reader_stats import tables as reader_tables

    def time_table(analysis) -> reader_tables.SignificanceTable:  # noqa: ANN001
        data = (
            analysis.judgments.groupby("rater")["time_on_task_s"]
            .median()
            .rename("median_s")
            .reset_index()
        )
        display = data.assign(median_s=data["median_s"].map(reader_tables.fmt_number))
        return reader_tables.SignificanceTable("time_on_task", "Time on task", data, display)

    entry = reader_tables.StudyTable("time_on_task", "Agreement", time_table)
    monkeypatch.setattr(reader_tables, "STUDY_TABLES", (*reader_tables.STUDY_TABLES, entry))
    write_study(get_store(), simulate_judgments({"a": 0.3, "b": 0.0}, n_cases=6, seed=5), "t")
    page = _page()
    page.number_input(key="analysis_resamples").set_value(0)
    page.button(key="analysis_run").click().run()
    assert not page.exception, page.exception
    assert "**Time on task**" in [m.value for m in page.tabs[4].markdown]
    _label, _analysis, archive = page.session_state["analysis_result"]
    names = set(zipfile.ZipFile(BytesIO(archive)).namelist())
    assert {"time_on_task.csv", "time_on_task.tex", "time_on_task.md"} <= names
