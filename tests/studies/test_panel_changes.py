"""Changing the panel of a running study, on SQLite and PostgreSQL: raters added, deactivated
and replaced, tasks not done in time handed on, while other raters submit. Every regular item
keeps exactly its overlap of tasks, ends with exactly `overlap` judgments (none above), no
judgment is lost, and every change is an amendment in the export and the table footers.
(ebb17df had no such operation: a started study refused every new rater.)"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.amendments import verify_amendments
from studies.readers.design import StudyDesign, StudyError, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.judgments import study_judgments
from studies.readers.lifecycle import close_study, start_study
from studies.readers.panel import (
    add_rater,
    deactivate_rater,
    reclaim_overdue,
    replace_rater,
)
from studies.readers.rating import (
    AccessDenied,
    RatingError,
    export_judgments,
    next_assignment,
    rater_studies,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment, Study, StudyItem

LIKERT = {
    "left": {"accuracy": 4, "completeness": 4, "safety": 4},
    "right": {"accuracy": 2, "completeness": 3, "safety": 2},
}


def _study(store: Store, tmp_path: Path, n_raters: int, *, n_cases: int = 6, gold: bool = False):
    world = build_world(store, tmp_path / "bench", n_cases=n_cases)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1")
        for i in range(n_raters)
    ]
    design = StudyDesign(
        name="Panel", benchmark=world.benchmark, systems=world.systems, overlap=2, seed=3
    )
    if gold:
        from studies.readers.design import GoldSpec

        design.gold = [
            GoldSpec(case_key=world.case_keys[0], better=world.systems[0], worse=world.systems[1])
        ]
    study_id = create_study(store, design)
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    return study_id, raters


def _check_overlap(store: Store, study_id: int, *, all_judged: bool) -> None:
    """Each item: exactly `overlap` original tasks with distinct raters, never more judged;
    when the study is done, each regular item has exactly `overlap` judged originals."""
    with store.session() as session:
        items = {
            i.id: i
            for i in session.scalars(select(StudyItem).where(StudyItem.study_id == study_id))
        }
        assignments = list(
            session.scalars(select(Assignment).where(Assignment.study_id == study_id))
        )
        judged = set(session.scalars(select(Judgment.assignment_id)))
    originals = [a for a in assignments if not a.is_duplicate]
    # A duplicate stays with the rater of its case and comes after it, moved or not.
    place = {(a.rater_id, a.item_id): a.order_index for a in originals}
    for duplicate in (a for a in assignments if a.is_duplicate):
        if duplicate.id not in judged:
            assert duplicate.order_index > place[(duplicate.rater_id, duplicate.item_id)]
    copies = Counter(a.item_id for a in originals)
    raters_of = {item: {a.rater_id for a in originals if a.item_id == item} for item in items}
    done = Counter(a.item_id for a in originals if a.id in judged)
    for item_id, item in items.items():
        assert copies[item_id] == item.overlap, (item_id, copies[item_id], item.overlap)
        assert len(raters_of[item_id]) == item.overlap
        assert done[item_id] <= item.overlap
        # Gold items go to every rater on the panel (quality checks, not overlap copies): one
        # a rater left without judging stays theirs and unjudged.
        if all_judged and item.kind == "regular":
            assert done[item_id] == item.overlap, (item_id, done[item_id])


def test_raters_added_and_removed_while_others_submit(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path, 3)
    late = [accounts.create_account(store, f"late{i}", "rater", "rater-password-1") for i in (1, 2)]
    errors: list[BaseException] = []
    created: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()

    def rate(rater_id: int, pause_s: float) -> None:
        try:
            while True:
                try:
                    task = next_assignment(store, rater_id, study_id)
                except RatingError as exc:  # deactivated: the panel place has ended
                    with lock:
                        refused.append(str(exc))
                    return
                if task is None:
                    return
                try:
                    result = submit_judgment(
                        store, rater_id, task.token, f"{task.token}:k", "left", LIKERT, "", 1.0
                    )
                except (AccessDenied, RatingError) as exc:
                    # The task moved to another rater (or the rater left) between reading and
                    # submitting: nothing was written; go on with the next task.
                    with lock:
                        refused.append(str(exc))
                    continue
                with lock:
                    if result.created:
                        created.append(result.judgment_id)
                time.sleep(pause_s)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=rate, args=(r.id, 0.05)) for r in raters]
    for thread in threads:
        thread.start()
    # The panel changes once the raters are under way (most of their tasks still ahead).
    deadline = time.monotonic() + 30
    while len(created) < 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    added = add_rater(store, study_id, late[0].username)
    assert added is not None and added.moved > 0 and added.number == 1
    threads.append(threading.Thread(target=rate, args=(late[0].id, 0.0)))
    threads[-1].start()
    removed = deactivate_rater(store, study_id, raters[1].username)
    assert removed.number == 2 and removed.stranded == 0
    # The second late rater joins through `studies enrol`, the same path as an invite.
    assert enrol_rater(store, study_id, late[1].username)
    threads.append(threading.Thread(target=rate, args=(late[1].id, 0.0)))
    threads[-1].start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    # Whoever is still active finishes what is left.
    for rater in [raters[0], raters[2], *late]:
        rate(rater.id, 0.0)
    assert not errors, errors

    _check_overlap(store, study_id, all_judged=True)
    with store.session() as session:
        judgments = {j.id: j for j in session.scalars(select(Judgment))}
        study = session.get(Study, study_id)
        assert verify_amendments(session, study)
    # No judgment lost: every one a submit reported as written is there, none more.
    assert sorted(created) == sorted(judgments)
    # The removed rater's own judgments stay (theirs, under their name).
    assert any(j.rater_id == raters[1].id for j in judgments.values())
    assert all(study.id != study_id for study in rater_studies(store, raters[1].id))
    from studies.readers.progress import study_progress

    panel = {r.username: r.active for r in study_progress(store, study_id).raters}
    assert panel == {"rater0": True, "rater1": False, "rater2": True, "late1": True, "late2": True}

    rows = list(csv.DictReader(io.StringIO(export_judgments(store, study_id))))
    assert len(rows) == len(judgments)
    assert "Design amended 3 times" in rows[0]["study_amendments"]
    for word in ("rater added: late1", "rater deactivated: rater1", "rater added: late2"):
        assert word in rows[0]["study_amendments"]
    assert rows[0]["study_design_hash"] != rows[0]["study_config_hash"]

    from studies.reader_stats.analysis import AnalysisSettings, Provenance
    from studies.reader_stats.tables import footer_lines

    frame = study_judgments(store, "Panel")
    footer = footer_lines(Provenance.of(frame, AnalysisSettings()))
    assert any("Design amended 3 times" in line for line in footer)


def test_replace_and_reclaim_keep_the_overlap_and_refuse_stale_links(
    store: Store, tmp_path: Path
) -> None:
    study_id, raters = _study(store, tmp_path, 3, n_cases=4, gold=True)
    newcomer = accounts.create_account(store, "newcomer", "rater", "rater-password-1")
    stale = next_assignment(store, raters[0].id, study_id)
    assert stale is not None
    change = replace_rater(store, study_id, "rater0", "newcomer")
    assert change.moved > 0 and change.added == 1  # rater0's tasks and the gold item
    # rater0's page still holds a task link that moved: refused, nothing written.
    with pytest.raises(AccessDenied, match="handed to another rater"):
        submit_judgment(store, raters[0].id, stale.token, "stale:k", "left", LIKERT)
    with pytest.raises(RatingError, match="panel"):
        next_assignment(store, raters[0].id, study_id)
    _check_overlap(store, study_id, all_judged=False)

    # rater1 judges everything; rater2 and newcomer nothing for two days: their tasks go to
    # rater1 where rater1 does not hold the item already.
    _finish(store, study_id, raters[1].id)
    change = reclaim_overdue(store, study_id, timedelta(days=1), now=_later(store, study_id, 2))
    assert change.detail["raters"] == ["rater2", "newcomer"]
    assert change.moved > 0
    _check_overlap(store, study_id, all_judged=False)
    for rater_id in (raters[1].id, raters[2].id, newcomer.id):
        _finish(store, study_id, rater_id)
    _check_overlap(store, study_id, all_judged=True)
    with store.session() as session:
        gold = session.scalar(select(StudyItem).where(StudyItem.kind == "gold"))
        assert gold.overlap == 4

    # Bad requests say what to fix and change nothing.
    with pytest.raises(StudyError, match="already deactivated"):
        deactivate_rater(store, study_id, "rater0")
    with pytest.raises(StudyError, match="no account"):
        add_rater(store, study_id, "nobody")
    with pytest.raises(StudyError, match="positive"):
        reclaim_overdue(store, study_id, timedelta(0))
    assert add_rater(store, study_id, "newcomer") is None  # already active: no amendment
    close_study(store, study_id)
    with pytest.raises(StudyError, match="closed"):
        add_rater(store, study_id, "rater0")
    with store.session() as session:
        assert verify_amendments(session, session.get(Study, study_id))


def _finish(store: Store, study_id: int, rater_id: int) -> None:
    while (task := next_assignment(store, rater_id, study_id)) is not None:
        submit_judgment(store, rater_id, task.token, f"{task.token}:k", "tie", LIKERT)


def _later(store: Store, study_id: int, days: int):  # noqa: ANN202
    from studies.readers.accounts import aware, now_utc

    with store.session() as session:
        started = aware(session.get(Study, study_id).started_at)
    return max(started, now_utc()) + timedelta(days=days, minutes=1)


def test_cli_enrols_invites_and_changes_the_panel_of_an_active_study(tmp_home: Path) -> None:
    from typer.testing import CliRunner

    from studies.store.db import get_store
    from workbench.cli import app

    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    store = get_store()
    world = build_world(store, tmp_home / "data" / "reader", n_cases=4)
    for name in ("ada", "bob", "cy"):
        accounts.create_account(store, name, "rater", "rater-password-1")
    systems = [arg for s in world.systems for arg in ("--system", s)]
    code, out = run(
        "studies", "create", "--name", "Live", "--benchmark", world.benchmark, *systems,
        "--rater", "ada", "--rater", "bob",
    )  # fmt: skip
    assert code == 0, out
    assert run("studies", "start", "--study", "Live")[0] == 0
    code, out = run("studies", "enrol", "--study", "Live", "cy")
    assert code == 0 and "Amendment 1 of study 'Live' (rater added)" in out, out
    code, out = run("studies", "invite", "--study", "Live", "--base-url", "http://h")
    assert code == 0, out
    dan, _session = accounts.accept_invite(
        store, out.strip().split("token=")[1], "dan", "pw-dan-12345"
    )
    assert any(s.name == "Live" for s in rater_studies(store, dan.id))
    code, out = run("studies", "panel", "--study", "Live", "--replace", "bob")
    assert code == 1 and "OLD:NEW" in out
    code, out = run("studies", "panel", "--study", "Live", "--remove", "bob", "--reclaim-days", "3")
    assert code == 0 and "Amendment 3" in out and "Amendment 4" in out, out
    _check_overlap(store, next(iter(_ids(store))), all_judged=False)


def _ids(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(Study.id)))


def test_admin_page_changes_the_panel_of_a_running_study(tmp_home: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from studies.store.db import get_store
    from workbench.access import SESSION_KEY

    store = get_store()
    study_id, _raters = _study(store, tmp_home, 3, n_cases=3)
    accounts.create_account(store, "late", "rater", "rater-password-1")
    admin = accounts.create_account(store, "chief", "admin", "Chief-admin-pass-1")
    views = Path(__file__).resolve().parents[2] / "workbench" / "views"
    page = AppTest.from_file(str(views.parent / "app.py"), default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(views / "studies_admin.py")).run()
    assert not page.exception, page.exception
    page.selectbox(key="panel_add").set_value("late")
    page.selectbox(key="panel_remove").set_value("rater2").run()
    page.checkbox(key="panel_confirm").check().run()  # taking a rater off is confirmed
    page.button(key="panel_replace_go").click().run()
    assert not page.exception and not page.error, page.error
    said = " ".join(m.value for m in page.success)
    assert "Amendment 1 of study 'Panel' (rater replaced)" in said
    assert any("#1 rater replaced: rater2 by late" in c.value for c in page.caption)
    accounts.create_account(store, "senior", "rater", "senior-password-1")
    page.run()
    page.selectbox(key="adj_senior").set_value("senior").run()
    page.button(key="adj_go").click().run()
    assert not page.exception and not page.error, page.error
    assert "0 items sent to senior for adjudication (amendment 2)" in " ".join(
        m.value for m in page.success
    )
    # Nothing is judged yet, so the senior rater's queue is empty (the disagreements and the
    # senior's answers: tests/studies/test_adjudication.py).
    assert not any("adjudicated" in c.value for c in page.caption)
    _check_overlap(store, study_id, all_judged=False)
