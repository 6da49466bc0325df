"""A study-specific rating criterion, declared only in a form file, goes all the way:
`studies create --form` -> rating page -> store -> CSV/JSONL export -> stats -> tables.

The form adds `clarity` and names `patient_risk` (not `safety`) as its harm criterion.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest
from support.rating_form import form_data, submit
from support.reader_world import build_world
from typer.testing import CliRunner

from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.data import criteria_of, load_judgments_file
from studies.reader_stats.tables import render_many, study_tables
from studies.readers import accounts
from studies.readers.judgments import study_judgments
from studies.readers.lifecycle import start_study
from studies.readers.rating import export_judgments, next_assignment, submit_judgment
from studies.store.db import get_store
from studies.store.schema import Judgment, Study
from workbench.access import SESSION_KEY
from workbench.cli import app as cli

PAGES = Path(__file__).resolve().parents[2] / "workbench" / "views"
APP = str(PAGES.parent / "app.py")
PASSWORD = "rater-password-1"
ANCHORS = '{ "1" = "poor", "2" = "weak", "3" = "fair", "4" = "good", "5" = "excellent" }'
FORM = f"""
require_likert = true
comment_required_for = ["both_bad"]

[[criteria]]
key = "accuracy"
label = "Accuracy"
question = "Are the stated findings correct?"
anchors = {ANCHORS}

[[criteria]]
key = "clarity"
label = "Clarity"
question = "Is the report easy to act on?"
anchors = {ANCHORS}

[[criteria]]
key = "patient_risk"
label = "Patient risk"
question = "Could acting on this report harm the patient? (5 = no)"
harm = true
anchors = {ANCHORS}
"""


def _create(tmp_home: Path, form_text: str, suffix: str = ".toml", name: str = "Clarity round"):
    store = get_store()
    world = build_world(
        store, tmp_home / "data" / "benchmarks" / "reader", n_cases=4, systems=("sys-a", "sys-b")
    )
    for username in ("rater1", "rater2"):
        accounts.create_account(store, username, "rater", PASSWORD)
    form = tmp_home / f"form{suffix}"
    form.write_text(form_text, encoding="utf-8")
    args = ["studies", "create", "--name", name, "--benchmark", world.benchmark]
    args += ["-s", "sys-a", "-s", "sys-b", "--duplicates", "0", "--form", str(form)]
    args += ["-r", "rater1", "-r", "rater2"]
    return store, CliRunner().invoke(cli, args)


def _open_rate_page(token: str) -> AppTest:
    page = AppTest.from_file(APP, default_timeout=60)
    page.session_state[SESSION_KEY] = token
    page.run()
    page.switch_page(str(PAGES / "rate.py")).run()
    assert not page.exception, page.exception
    return page


def test_a_custom_criterion_reaches_export_stats_and_tables(tmp_home: Path) -> None:
    store, created = _create(tmp_home, FORM)
    assert created.exit_code == 0, created.output
    start_study(store, "Clarity round")

    # The rating page shows the form's criteria and stores what the rater chose.
    token = accounts.log_in(store, "rater1", PASSWORD)
    page = _open_rate_page(token)
    criteria_shown = form_data(page)["form"]["criteria"]
    assert [c["label"] for c in criteria_shown] == ["Accuracy", "Clarity", "Patient risk"]
    assert all(len(c["anchors"]) == 5 for c in criteria_shown)  # anchors beside the points
    scores = {"accuracy": 4, "clarity": 5, "patient_risk": 3}
    likert = {"left": scores, "right": {k: 6 - v for k, v in scores.items()}}
    submit(page, "left", likert=likert)
    assert not page.exception and not page.error
    assert (form_data(page)["message"] or {}).get("kind") != "error"
    with store.session() as session:
        (stored,) = session.scalars(select(Judgment)).all()
    shown_left = "a" if stored.winner == "a" else "b"
    other = "b" if shown_left == "a" else "a"
    assert stored.likert[shown_left] == scores
    assert stored.likert[other] == {k: 6 - v for k, v in scores.items()}

    # The other judgments through the same rating functions the page calls.
    for username in ("rater1", "rater2"):
        rater = accounts.get_account(store, username)
        study_id = store_study_id(store)
        step = 0
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            step += 1
            left = {"accuracy": 4, "clarity": 2 + step % 3, "patient_risk": 4}
            right = {"accuracy": 3, "clarity": 1 + step % 2, "patient_risk": 2 + step % 2}
            submit_judgment(
                store, rater.id, task.token, f"{username}-{step}", "left",
                {"left": left, "right": right}, "", 12.0,
            )  # fmt: skip

    # Export: one score column per side and criterion of the form, values included.
    exported = list(csv.DictReader(io.StringIO(export_judgments(store, "Clarity round", "csv"))))
    assert len(exported) == 8
    likert = [c for c in exported[0] if c.startswith("likert_")]
    assert likert == [
        "likert_a_accuracy",
        "likert_b_accuracy",
        "likert_a_clarity",
        "likert_b_clarity",
        "likert_a_patient_risk",
        "likert_b_patient_risk",
    ]
    first = next(r for r in exported if int(r["judgment_id"]) == stored.id)
    assert first[f"likert_{shown_left}_clarity"] == "5" and first[f"likert_{other}_clarity"] == "1"
    rows = [
        json.loads(line) for line in export_judgments(store, "Clarity round", "jsonl").splitlines()
    ]
    assert all(row["likert_a_clarity"] in range(1, 6) for row in rows)

    # Stats: the export file and the store read the same criteria.
    path = tmp_home / "judgments.csv"
    path.write_text(export_judgments(store, "Clarity round", "csv"), encoding="utf-8")
    assert criteria_of(load_judgments_file(path)) == ["accuracy", "clarity", "patient_risk"]
    judgments = study_judgments(store, "Clarity round")
    assert criteria_of(judgments) == ["accuracy", "clarity", "patient_risk"]
    analysis = analyze_study(judgments, AnalysisSettings(n_resamples=0, comparator="sys-a"))
    assert set(analysis.likert_means["criterion"]) == {"accuracy", "clarity", "patient_risk"}
    assert "clarity" in set(analysis.likert_paired["criterion"])
    assert {"Krippendorff's alpha (ordinal)"} <= set(
        analysis.agreement.loc[analysis.agreement["ratings"] == "clarity", "measure"]
    )
    # The harm analysis reads the criterion the form flags, not a key literal.
    assert analysis.harm_criterion == "patient_risk"
    assert set(analysis.harm["criterion"]) == {"patient_risk"}

    # Tables: the Likert tables, the paper table and the harm table name the criteria.
    tables = {table.name: table for table in study_tables(analysis)}
    assert "clarity" in set(tables["likert_means"].display["Criterion"])
    assert "Clarity" in tables["paper"].display.columns
    assert tables["harm"].title == "Harm (patient risk) non-inferiority"
    assert "Clarity" in render_many(list(tables.values()), analysis.provenance, "latex")

    # The CLI reads the same.
    result = CliRunner().invoke(
        cli, ["stats", "study", "--study", "Clarity round", "-b", "0", "--format", "markdown"]
    )
    assert result.exit_code == 0, result.output
    assert "clarity" in result.output and "Harm (patient risk)" in result.output


def store_study_id(store) -> int:  # noqa: ANN001
    with store.session() as session:
        return session.scalar(select(Study.id).where(Study.name == "Clarity round"))


def test_the_analysis_page_tabs_name_the_form_criteria(tmp_home: Path) -> None:
    store, created = _create(tmp_home, FORM)
    assert created.exit_code == 0, created.output
    start_study(store, "Clarity round")
    study_id = store_study_id(store)
    for username in ("rater1", "rater2"):
        rater = accounts.get_account(store, username)
        step = 0
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            step += 1
            scores = {"accuracy": 4, "clarity": 1 + step % 5, "patient_risk": 3}
            submit_judgment(
                store, rater.id, task.token, f"{username}-{step}", "left",
                {"left": scores, "right": {**scores, "clarity": 3}}, "", 9.0,
            )  # fmt: skip
    admin = accounts.create_account(store, "chief", "admin", "Analysis-admin-pass-1")
    page = AppTest.from_file(APP, default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(PAGES / "analysis.py")).run()
    page.number_input(key="analysis_resamples").set_value(0)
    page.button(key="analysis_run").click().run()
    assert not page.exception, page.exception
    assert not page.error, [e.value for e in page.error]
    captions = " ".join(c.value for c in page.caption)
    assert "Criteria: Accuracy, Clarity, Patient risk (harm)." in captions
    titles = " ".join(m.value for m in page.markdown)
    assert "Harm (patient risk) non-inferiority" in titles


BAD_FORMS = {
    "missing anchors": (
        '[[criteria]]\nkey = "clarity"\nlabel = "Clarity"\nanchors = { "1" = "poor" }\n',
        ".toml",
        "form.criteria[1].anchors",
    ),
    "bad key": (
        json.dumps({"criteria": [{"key": "Clarity!", "anchors": {}}]}),
        ".json",
        "form.criteria[1].key",
    ),
    "two harm criteria": (
        FORM.replace('key = "clarity"', 'key = "clarity"\nharm = true'),
        ".toml",
        "only one criterion may be the harm criterion",
    ),
    "unknown field": (
        FORM.replace('key = "clarity"', 'key = "clarity"\nscore = 7'),
        ".toml",
        "form.criteria[2].score: unknown field",
    ),
    "not toml": ("[[criteria]\nkey=", ".toml", "not valid TOML"),
    "wrong suffix": ("criteria: []", ".yaml", "a form file is .toml or .json"),
}


def test_a_bad_form_file_is_a_clear_message_and_creates_no_study(tmp_home: Path) -> None:
    for number, (text, suffix, message) in enumerate(BAD_FORMS.values()):
        name = f"Bad round {number}"
        store, result = _create_again(tmp_home, text, suffix, name, first=number == 0)
        assert result.exit_code != 0
        assert message in result.output, result.output
        assert "Traceback" not in result.output
        with store.session() as session:
            assert session.scalar(select(func.count()).select_from(Study)) == 0


def _create_again(tmp_home: Path, text: str, suffix: str, name: str, *, first: bool):
    if first:
        return _create(tmp_home, text, suffix, name)
    store = get_store()
    form = tmp_home / f"form{suffix}"
    form.write_text(text, encoding="utf-8")
    args = ["studies", "create", "--name", name, "--benchmark", "synthetic-reader"]
    args += ["-s", "sys-a", "-s", "sys-b", "--form", str(form)]
    return store, CliRunner().invoke(cli, args)
