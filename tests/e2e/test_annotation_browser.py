"""An expert-annotation study end to end, in a real browser on the real server: two annotators
correct the model's report and the structured findings of each case with keyboard and mouse
(one refused submit lists every problem at once and keeps the draft), they disagree on one
field of one case, the adjudicator settles it on the same page; then `medvision extract
--validate` (the real CLI) prints the extractor's per-field accuracy with intervals, and the
on-policy preference pairs (each correction chosen over the model's report) load in TRL.

The database holds exactly the annotations entered; no system name reaches the page. Needs
Debian's chromium (`make browser`) and pip's playwright. Every case is SYNTHETIC. The README's
screenshot of the page, docs/annotation-page.png, comes from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.browser import ADMIN_PASSWORD, app_server, chromium, idle, log_in
from support.dpo import dpo_train
from support.reader_world import build_world, case_key_of
from support.started_study import start_with

from studies.readers import accounts
from studies.readers.annotation import (
    check_findings,
    next_annotation,
)
from studies.readers.design import StudyDesign
from studies.store.db import Store
from studies.store.schema import Annotation, Assignment, Case, Generation, StudyItem, System

pytestmark = pytest.mark.browser

PASSWORD = "rater-password-1"
STUDY = "Expert round"
MODEL = "sys-alpha"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "annotation-page.png"
N_CASES = 2


@pytest.fixture
def seeded(tmp_path: Path):
    home = tmp_path / "home"
    store = Store(f"sqlite:///{home / 'workbench.db'}")
    world = build_world(store, home / "data" / "benchmarks" / "reader", n_cases=N_CASES)
    annotators = [
        accounts.create_account(store, name, "rater", PASSWORD) for name in ("anna", "ben")
    ]
    senior = accounts.create_account(store, "senior", "rater", PASSWORD)
    study_id = start_with(
        store,
        StudyDesign(
            name=STUDY,
            benchmark=world.benchmark,
            systems=[MODEL],
            kind="annotation",
            overlap=2,
            seed=5,
        ),
        annotators,
    )
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += list(session.scalars(select(System.fingerprint)))
    yield home, store, annotators, senior, study_id, secrets
    store.dispose()


def _select(page, label: str, typed: str) -> None:  # noqa: ANN001
    """A select box as a clinician uses it: click it, type to filter, Enter picks."""
    page.get_by_role("combobox", name=label).click()
    page.keyboard.type(typed)
    page.keyboard.press("Enter")


def _number(page, label: str, value: str) -> None:  # noqa: ANN001
    box = page.get_by_role("spinbutton", name=label)
    box.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)


def _append_to_report(page, text: str) -> None:  # noqa: ANN001
    box = page.get_by_role("textbox", name="Report (correct the draft)")
    box.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def _submit(page, *, keyboard: bool = False) -> None:  # noqa: ANN001
    if keyboard:
        page.keyboard.press("Control+Enter")
    else:
        page.get_by_role("button", name="Submit annotation").click()


def test_an_annotation_study_runs_end_to_end_in_the_browser(
    seeded, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from playwright.sync_api import expect

    home, store, (anna, ben), senior, study_id, secrets = seeded
    seen: list[str] = []
    # What each annotator enters, per case key: (appended to the report, findings changes).
    expected: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}

    with app_server(home, tmp_path / "streamlit.log") as base, chromium() as browser:
        for annotator in (anna, ben):
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.set_default_timeout(60_000)
            log_in(page, base, annotator.username, PASSWORD)
            # An annotator lands on the annotation page, not the rating page.
            expect(page.get_by_role("heading", name="Annotate cases")).to_be_visible()
            expect(page.get_by_text("SYNTHETIC data")).to_be_visible()
            for n in range(N_CASES):
                task = next_annotation(store, annotator.id, study_id)
                case_key = case_key_of(store, task.token)
                expect(page.get_by_text(f"Case {task.position} of {task.total}")).to_be_visible()
                report_box = page.get_by_role("textbox", name="Report (correct the draft)")
                expect(report_box).to_have_value(task.draft_report)
                seen.append(page.content())
                if annotator is anna and n == 0:
                    _screenshot(page, tmp_path)
                findings = _copy(task.draft_findings)
                added = f" Checked by {annotator.username}, case {n + 1}."
                _append_to_report(page, added)
                _number(page, "BBPS total (0-9)", "7")
                findings["bbps_total"] = 7
                if annotator is anna and n == 0:
                    # Two mistakes at once: both are listed, nothing typed is lost.
                    _select(page, "No polyps", "yes")
                    _number(page, "Polyp count", "0")
                    _submit(page)
                    alert = page.get_by_text("Not saved. Please fix")
                    expect(alert).to_be_visible()
                    problems = page.get_by_role("alert").filter(has_text="Not saved").inner_text()
                    assert "No polyps: " in problems and "Polyp count: " in problems
                    expect(report_box).to_have_value(task.draft_report + added)
                    expect(page.get_by_role("spinbutton", name="BBPS total (0-9)")).to_have_value(
                        "7"
                    )
                    _select(page, "No polyps", "no")
                    _number(page, "Polyp count", "1")
                    findings["no_polyps"], findings["polyp_count"] = False, 1
                if annotator is anna and n == 1:
                    # A lesion added by mistake, then removed: the first one's values stay.
                    page.get_by_role("button", name="Add lesion").click()
                    expect(page.get_by_text("Lesion 2", exact=True)).to_be_visible()
                    _select(page, "Location (lesion 2)", "rectum")
                    page.get_by_role("button", name="Remove lesion 2").click()
                    expect(page.get_by_text("Lesion 2", exact=True)).to_have_count(0)
                    expect(report_box).to_have_value(task.draft_report + added)
                histology = "tubular adenoma"
                if annotator is ben and n == 0:
                    histology = "hyperplastic"  # the one disagreement
                _select(page, "Histology (lesion 1)", histology)
                findings["lesions"][0]["histology"] = histology.replace(" ", "_")
                _submit(page, keyboard=annotator is ben)
                expect(page.get_by_text(f"Case {task.position} saved.")).to_be_visible()
                idle(page)
                expected[(annotator.username, case_key)] = (task.draft_report + added, findings)
            expect(page.get_by_text("All your cases of this study are done")).to_be_visible()
            seen.append(page.content())
            page.context.close()

        # The admin sends the disputed case to the adjudicator on the results page.
        page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        page.set_default_timeout(60_000)
        log_in(page, base, "admin", ADMIN_PASSWORD)
        # Through the menu: the same app session (a fresh load may come before the cookie).
        page.get_by_role("link", name="Annotation results").click()
        expect(page.get_by_text("1 case(s) in disagreement")).to_be_visible()
        page.get_by_role("textbox", name="Adjudicator").fill(senior.username)
        page.get_by_role("button", name="Send to the adjudicator").click()
        expect(page.get_by_text("1 added", exact=False)).to_be_visible()
        admin = page

        page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        page.set_default_timeout(60_000)
        log_in(page, base, senior.username, PASSWORD)
        expect(page.get_by_role("heading", name="Adjudicate annotations")).to_be_visible()
        task = next_annotation(store, senior.id, study_id)
        assert task.adjudication and len(task.candidates) == 2
        seen.append(page.content())
        # Both annotations side by side, anonymous, as written.
        for number, (report, _) in enumerate(task.candidates, start=1):
            expect(page.locator("strong", has_text=f"Annotation {number}")).to_be_visible()
            # As shown, not as prefilled in the "Settled report" box, which holds one of them.
            shown = page.get_by_text(report, exact=True).and_(page.locator(":not(textarea)"))
            expect(shown).to_be_visible()
        # The comparison marks the one field the two annotators differ on.
        differing = page.locator("table tbody tr").filter(has_text="differs")
        expect(differing).to_have_count(1)
        expect(differing).to_contain_text("Lesion 1: Histology")
        settled_report, settled = task.candidates[0]
        settled = _copy(settled)
        _select(page, "Histology (lesion 1)", "tubular adenoma")
        settled["lesions"][0]["histology"] = "tubular_adenoma"
        page.get_by_role("textbox", name="Settled report").click()
        page.keyboard.press("Control+End")
        page.keyboard.type(" Settled.")
        page.get_by_role("button", name="Submit settled annotation").click()
        expect(page.get_by_text("All your cases of this study are done")).to_be_visible()
        seen.append(page.content())
        page.context.close()

        # The admin's view: every case settled, agreement and the extractor's validation.
        admin.reload()
        expect(admin.get_by_role("heading", name="Extractor validation")).to_be_visible()
        expect(admin.get_by_text("1 adjudicated, 1 agreed")).to_be_visible()
        expect(admin.get_by_text("SYNTHETIC data")).to_be_visible()

    for html in seen:
        for secret in secrets:
            assert secret not in html, f"{secret!r} appeared on the annotation page"

    # The database holds exactly what was entered: one annotation per annotator and case,
    # and the adjudicated one, each through the one findings normaliser.
    with store.session() as session:
        rows = session.execute(
            select(Annotation, Assignment.rater_id, Case.case_key, StudyItem.kind)
            .join(Assignment, Assignment.id == Annotation.assignment_id)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .join(Case, Case.id == StudyItem.case_id)
            .order_by(Annotation.id)
        ).all()
        names = {anna.id: "anna", ben.id: "ben", senior.id: "senior"}
        stored = {
            (names[rater], key): (a.report, a.findings, a.source, a.supersedes_id)
            for a, rater, key, _ in rows
        }
    assert len(rows) == 2 * N_CASES + 1
    for (who, key), (report, findings) in expected.items():
        assert stored[(who, key)] == (report, check_findings(findings), "corrected", None)
    disputed = next(key for (who, key) in expected if who == "ben")
    assert stored[("senior", disputed)] == (
        settled_report + " Settled.",
        check_findings(settled),
        "adjudicated",
        None,
    )

    # The extractor's validation through the real command line.
    env = dict(os.environ, MEDVISION_HOME=str(home))
    env.pop("MEDVISION_DATABASE_URL", None)
    cli = [sys.executable, "-m", "workbench.cli"]
    shown = subprocess.run(
        [*cli, "extract", "--validate", STUDY],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr + shown.stdout
    for field in ("location", "histology", "bbps_total"):
        assert field in shown.stdout
    assert "Wilson" in shown.stdout and "%" in shown.stdout
    assert "Research software, not a medical device" in shown.stdout

    # The on-policy pairs (each correction chosen over the model's report), exported by the
    # command line, in TRL.
    out = tmp_path / "on-policy"
    exported = subprocess.run(
        [*cli, "prefs", "export", "--study", STUDY, "--out", str(out)]
        + ["--validation-fraction", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr + exported.stdout
    _pairs_load_in_trl(store, out, tmp_path, tiny_model_dir)


def _screenshot(page, tmp_path: Path) -> None:  # noqa: ANN001
    """The README's picture of the page (written when missing, or always with
    MEDVISION_UPDATE_SCREENSHOT=1)."""
    page.wait_for_timeout(300)
    shot = tmp_path / "annotation-page.png"
    page.screenshot(path=str(shot))
    if os.environ.get("MEDVISION_UPDATE_SCREENSHOT") or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def _copy(findings: dict[str, Any]) -> dict[str, Any]:
    return {
        **findings,
        "resection": list(findings.get("resection") or []),
        "lesions": [dict(lesion) for lesion in findings.get("lesions") or []],
    }


def _pairs_load_in_trl(store: Store, out: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    from datasets import load_from_disk

    train = load_from_disk(str(out / "hf"))["train"]
    with store.session() as session:
        model_reports = set(
            session.scalars(
                select(Generation.text)
                .join(System, System.id == Generation.system_id)
                .where(System.name == MODEL)
            )
        )
    assert len(train) == 2 * N_CASES
    for row in train:
        assert row["rejected"][0]["content"][0]["text"] in model_reports
        assert "Checked by" in row["chosen"][0]["content"][0]["text"]
    trainer = dpo_train(tiny_model_dir, train, tmp_path / "dpo", steps=1, lora=False)
    assert trainer.state.global_step == 1
