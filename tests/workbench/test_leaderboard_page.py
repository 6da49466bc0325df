"""The Leaderboard page through Streamlit's AppTest, on rows written to the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from metrics.base import CaseTexts, MetricOptions, MetricScores, TextMetric
from metrics.registry import register, unregister
from studies.leaderboard.tables import to_json
from studies.readers import accounts
from studies.store.db import Store, get_store
from studies.store.schema import Benchmark, Case, Generation, System
from workbench.access import SESSION_KEY

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")
SITES = ["cecum", "ascending colon", "transverse colon", "sigmoid", "rectum"]


def populate(store: Store) -> None:
    with store.session() as session:
        bench = Benchmark(name="lb-page", loader="test", root="/tmp", task="report", synthetic=True)
        session.add(bench)
        session.flush()
        systems = [System(name=n, kind="test", fingerprint=f"fp-{n}") for n in ("base", "tuned")]
        session.add_all(systems)
        for i in range(8):
            reference = f"A {4 + i} mm sessile polyp in the {SITES[i % 5]}."
            case = Case(
                benchmark_id=bench.id,
                case_key=f"c{i}",
                split="test",
                modality="image",
                references=[reference],
                content_hash=str(i),
            )
            session.add(case)
            session.flush()
            texts = {
                "tuned": reference,
                "base": f"A {14 + i} mm pedunculated polyp in the {SITES[(i + 2) % 5]}.",
            }
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


def _page() -> AppTest:
    store = get_store()
    admin = accounts.get_account(store, "lb-admin") or accounts.create_account(
        store, "lb-admin", "admin", "Leaderboard-admin-pass-1"
    )
    page = AppTest.from_file(APP, default_timeout=180)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / "leaderboard.py")).run()
    assert not page.exception, page.exception
    return page


def test_leaderboard_page_builds_table_plot_downloads_and_case_view(tmp_home: Path) -> None:
    populate(get_store())
    page = _page()
    assert page.selectbox(key="lb_benchmark").value == "lb-page"
    page.selectbox(key="lb_baseline").set_value("base")
    page.multiselect(key="lb_metrics").set_value(["rouge", "clinical"])
    page.number_input(key="lb_resamples").set_value(100)
    page.number_input(key="lb_permutations").set_value(100)
    page.number_input(key="lb_seed").set_value(7)
    page.button(key="lb_run").click().run()
    assert not page.exception, page.exception
    assert not page.error
    assert any("SYNTHETIC" in w.value for w in page.warning)
    table = page.dataframe[0].value
    # The registry's printed names: the rouge-score variants say whose they are.
    assert set(table["Metric"]) == {
        "ROUGE-1 (rouge-score)",
        "ROUGE-2 (rouge-score)",
        "ROUGE-L (rouge-score)",
        "ROUGE-Lsum (rouge-score)",
        "Clinical score",
        "Clinical attribute F1",
        "Lesion precision",
        "Lesion recall",
        "Lesion F1",
        "Attribute accuracy",
        "Surveillance agreement",
    }
    tuned = table[(table["Metric"] == "Clinical score") & (table["System"] == "tuned")].iloc[0]
    assert tuned["Score"] == 1.0 and tuned["Diff. vs baseline"] > 0 and tuned["Sig."]
    assert len(page.get("vega_lite_chart")) == 1
    captions = " ".join(c.value for c in page.caption)
    assert "seed 7" in captions and "100 resamples" in captions
    assert "Research software, not a medical device" in captions
    # Paper table (LaTeX, Markdown, CSV), long CSV, JSON; the forest plot as PNG, SVG, PDF.
    assert len(page.get("download_button")) == 8
    assert any(m.value == "**Differences to the baseline**" for m in page.markdown)
    board = page.session_state["leaderboard_result"]
    assert json.loads(to_json(board))["n_cases"] == 8

    # Drill-down: texts side by side, finding differences highlighted for the baseline.
    page.selectbox(key="lb_case").set_value("c1")
    page.selectbox(key="lb_left").set_value("base")
    page.selectbox(key="lb_right").set_value("tuned")
    page.run()
    assert not page.exception, page.exception
    texts = [t.value for t in page.text]
    assert "A 5 mm sessile polyp in the ascending colon." in texts
    assert "A 15 mm pedunculated polyp in the sigmoid." in texts
    marks = " ".join(m.value for m in page.markdown)
    assert ":red-background[wrong location: expected 'ascending', found 'sigmoid']" in marks
    assert ":red-background[wrong size class" in marks
    assert any("No finding differences" in s.value for s in page.success)


def test_leaderboard_page_without_generations(tmp_home: Path) -> None:
    page = _page()
    assert any("No benchmark has generations yet" in i.value for i in page.info)


def test_leaderboard_page_reports_a_scoring_failure_without_a_traceback(tmp_home: Path) -> None:
    populate(get_store())
    page = _page()
    page.multiselect(key="lb_metrics").set_value(["bertscore"])
    page.text_input(key="lb_bert_model").set_value("/nonexistent/model")
    page.number_input(key="lb_bert_layers").set_value(6)
    page.button(key="lb_run").click().run()
    assert not page.exception
    assert any("scoring 'base' failed" in e.value for e in page.error)
    assert "leaderboard_result" not in page.session_state


def test_leaderboard_page_defaults_baseline_and_explains_a_normal_case(tmp_home: Path) -> None:
    store = get_store()
    populate(store)
    with store.session() as session:
        bench = session.query(Benchmark).filter_by(name="lb-page").one()
        systems = {s.name: s for s in session.query(System)}
        systems["tuned"].kind = "template"  # a template baseline, though not first by name
        normal = "No polyps seen; normal colonoscopy."
        case = Case(
            benchmark_id=bench.id,
            case_key="normal",
            split="test",
            modality="image",
            references=[normal],
            content_hash="normal",
        )
        session.add(case)
        session.flush()
        for name, text in (("base", "A 6 mm sessile polyp in the rectum."), ("tuned", normal)):
            session.add(
                Generation(
                    system_fingerprint=systems[name].fingerprint,
                    system_id=systems[name].id,
                    case_id=case.id,
                    prompt_hash="p",
                    text=text,
                )
            )
    page = _page()
    assert page.selectbox(key="lb_baseline").value == "tuned"
    page.multiselect(key="lb_metrics").set_value(["clinical"])
    page.number_input(key="lb_resamples").set_value(50)
    page.number_input(key="lb_permutations").set_value(50)
    page.button(key="lb_run").click().run()
    assert not page.exception, page.exception
    exports = set(page.session_state["leaderboard_exports"])
    assert exports == {
        ("latex", "paper"),
        ("markdown", "paper"),
        ("csv", "paper"),
        ("csv", "long"),
        ("json", "paper"),
    }
    assert any(e.label == "How these numbers were made" for e in page.expander)
    # The drill-down starts on the baseline against the other system.
    assert page.selectbox(key="lb_left").value == "tuned"
    assert page.selectbox(key="lb_right").value == "base"
    page.selectbox(key="lb_case").set_value("normal").run()
    assert not page.exception, page.exception
    captions = " ".join(c.value for c in page.caption)
    assert "No lesions (no polyp found)." in captions
    marks = " ".join(m.value for m in page.markdown)
    assert "the reference says no polyps, the report describes one" in marks
    assert "expected True" not in marks


def test_leaderboard_page_opened_by_its_own_url_asks_for_a_log_in(tmp_home: Path) -> None:
    # Streamlit can run a file under pages/ without app.py (its first request after a start).
    populate(get_store())
    page = AppTest.from_file(str(PAGES / "leaderboard.py"), default_timeout=60).run()
    assert not page.exception, page.exception
    assert any("Please log in" in i.value for i in page.info)
    assert not page.selectbox and not page.multiselect


class LengthRatio(TextMetric):
    """A metric registered only in this test: candidate words over reference words."""

    group = "length_ratio"
    columns = ("length-ratio",)

    def score(self, texts: CaseTexts) -> MetricScores:
        ratios = [
            len(c.split()) / max(1, len(r[0].split()))
            for c, r in zip(texts.candidates, texts.references, strict=True)
        ]
        return MetricScores(per_case={"length-ratio": np.array(ratios)})

    def signature(self, column: str, options: MetricOptions) -> str:
        return "length-ratio|tok:whitespace|refs:first"


def test_leaderboard_page_offers_and_shows_a_registered_metric(tmp_home: Path) -> None:
    populate(get_store())
    register(LengthRatio())
    try:
        page = _page()
        assert "length_ratio" in page.multiselect(key="lb_metrics").options
        page.selectbox(key="lb_baseline").set_value("base")
        page.multiselect(key="lb_metrics").set_value(["length_ratio"])
        page.number_input(key="lb_resamples").set_value(50)
        page.number_input(key="lb_permutations").set_value(50)
        page.button(key="lb_run").click().run()
        assert not page.exception, page.exception
        table = page.dataframe[0].value
        assert set(table["Metric"]) == {"length-ratio"}
        tuned = table[table["System"] == "tuned"].iloc[0]
        assert tuned["Score"] == 1.0
        assert tuned["CI low"] <= tuned["Score"] <= tuned["CI high"]
    finally:
        unregister("length_ratio")


def test_leaderboard_page_leaves_copied_references_out_unless_asked(tmp_home: Path) -> None:
    """The page passed every system with generations, so the copied `reference` system sat in
    the table and in the correction family (ebb17df)."""
    store = get_store()
    populate(store)
    with store.session() as session:
        bench = session.query(Benchmark).filter_by(name="lb-page").one()
        copy = System(name="gold-copy", kind="reference", fingerprint="fp-gold")
        session.add(copy)
        for case in session.query(Case).filter_by(benchmark_id=bench.id):
            session.add(
                Generation(
                    system_fingerprint="fp-gold",
                    case_id=case.id,
                    prompt_hash="p",
                    text=case.references[0],
                )
            )
    page = _page()
    assert page.multiselect(key="lb_systems").options == ["base", "tuned"]
    page.selectbox(key="lb_baseline").set_value("base")
    page.multiselect(key="lb_metrics").set_value(["rouge"])
    page.number_input(key="lb_resamples").set_value(50)
    page.number_input(key="lb_permutations").set_value(50)
    page.selectbox(key="lb_family").set_value("all")
    page.button(key="lb_run").click().run()
    assert not page.exception, page.exception
    board = page.session_state["leaderboard_result"]
    assert board.systems == ["base", "tuned"] and board.settings.family == "all"
    page.checkbox(key="lb_include_reference").check()
    page.button(key="lb_run").click().run()
    assert not page.exception, page.exception
    board = page.session_state["leaderboard_result"]
    assert "gold-copy" in board.systems and board.ceilings == ["gold-copy"]
    comparison = board.comparisons["rougeL"]
    assert comparison.p_corrected["gold-copy"] == comparison.p_values["gold-copy"]
