"""Rating on both backends: resume, idempotent submit, supersede, refusals, exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import close_study, pause_study, resume_study, start_study
from studies.readers.progress import study_progress
from studies.readers.rating import (
    AccessDenied,
    RatingError,
    correct_judgment,
    export_judgments,
    get_task,
    last_judged_task,
    next_assignment,
    rater_studies,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, AuthSession, Judgment, StudyItem

PASSWORD = "rater-password-1"
FULL = {"accuracy": 4, "completeness": 3, "safety": 5}
OTHER = {"accuracy": 2, "completeness": 2, "safety": 1}
LIKERT = {"left": FULL, "right": OTHER}


@pytest.fixture
def study(store: Store, tmp_path: Path):
    world = build_world(store, tmp_path / "bench", n_cases=6)
    raters = [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in (1, 2)]
    study_id = create_study(
        store,
        StudyDesign(
            name="Round", benchmark=world.benchmark, systems=world.systems, overlap=2, seed=4
        ),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    tokens = {r.id: accounts.log_in(store, r.username, PASSWORD) for r in raters}
    return store, study_id, raters, tokens


def _count(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(Judgment))


def test_next_submit_and_resume(study) -> None:
    store, study_id, raters, tokens = study
    rater = raters[0]
    first = next_assignment(store, rater.id, study_id, session_token=tokens[rater.id])
    assert (first.position, first.done, first.total) == (
        1,
        0,
        18 + 2,
    )  # 6 cases x 3 pairs, 2 duplicates
    assert first.media and first.media[0].path.exists()
    result = submit_judgment(
        store,
        rater.id,
        first.token,
        "k1",
        "left",
        LIKERT,
        "",
        12.5,
        session_token=tokens[rater.id],
    )
    assert result.created
    second = next_assignment(store, rater.id, study_id)
    assert second.position == 2 and second.done == 1 and second.token != first.token
    # The other rater's order is independent and untouched.
    assert next_assignment(store, raters[1].id, study_id).done == 0
    assert rater_studies(store, rater.id)[0].done == 1
    assert last_judged_task(store, rater.id, study_id).token == first.token


def test_winner_and_likert_are_stored_in_system_terms(study) -> None:
    store, study_id, raters, _ = study
    rater = raters[0]
    seen = set()
    for n in range(6):
        task = next_assignment(store, rater.id, study_id)
        submit_judgment(store, rater.id, task.token, f"k{n}", "left", LIKERT, "", 3.0)
        with store.session() as session:
            judgment = session.scalar(select(Judgment).order_by(Judgment.id.desc()).limit(1))
            assignment = session.get(Assignment, judgment.assignment_id)
            item = session.get(StudyItem, assignment.item_id)
        seen.add(assignment.a_on_left)
        expected = "a" if assignment.a_on_left else "b"
        assert judgment.preference_shown == "left" and judgment.winner == expected
        assert judgment.likert[expected] == FULL
        assert judgment.likert["b" if expected == "a" else "a"] == OTHER
        assert item.system_a_id < item.system_b_id
    assert seen == {True, False}


def test_double_submit_is_idempotent(study) -> None:
    store, study_id, raters, _ = study
    rater = raters[0]
    task = next_assignment(store, rater.id, study_id)
    first = submit_judgment(store, rater.id, task.token, "same-key", "tie", LIKERT)
    again = submit_judgment(store, rater.id, task.token, "same-key", "tie", LIKERT)
    assert first.created and not again.created and again.judgment_id == first.judgment_id
    # A second tab with its own key: the first judgment stands, nothing new is written.
    other_tab = submit_judgment(store, rater.id, task.token, "tab-2", "right", LIKERT)
    assert not other_tab.created and other_tab.judgment_id == first.judgment_id
    assert _count(store) == 1


def test_correction_supersedes(study) -> None:
    store, study_id, raters, _ = study
    rater = raters[0]
    task = next_assignment(store, rater.id, study_id)
    first = submit_judgment(store, rater.id, task.token, "k1", "left", LIKERT)
    fixed = correct_judgment(store, rater.id, task.token, "k2", "right", LIKERT, "changed mind")
    assert fixed.created
    with store.session() as session:
        rows = list(session.scalars(select(Judgment).order_by(Judgment.id)))
    assert [r.supersedes_id for r in rows] == [None, first.judgment_id]
    assert rows[0].preference_shown == "left"  # never updated
    exported = list(csv.DictReader(io.StringIO(export_judgments(store, study_id, "csv"))))
    assert [r["superseded"] for r in exported] == ["True", "False"]
    # The correction does not change progress: the task stays done once.
    assert next_assignment(store, rater.id, study_id).done == 1
    with pytest.raises(RatingError, match="no earlier judgment"):
        other = next_assignment(store, rater.id, study_id)
        correct_judgment(store, rater.id, other.token, "k3", "left", LIKERT)


def test_refusals_write_nothing(study) -> None:
    store, study_id, raters, tokens = study
    mine, theirs = raters
    task = next_assignment(store, mine.id, study_id)
    cases = [
        (dict(token="tampered-" + task.token[:8]), AccessDenied, "not valid"),
        (dict(rater=theirs.id, session=tokens[theirs.id]), AccessDenied, "not one of yours"),
        (dict(preference="both_bad"), RatingError, "needs a comment"),
        (dict(preference="A"), RatingError, "Choose a preference"),
        (dict(likert={"left": FULL, "right": {"accuracy": 3}}), RatingError, "Report B"),
        (dict(likert={"left": {**FULL, "accuracy": 6}, "right": OTHER}), RatingError, "1-5"),
        (dict(session=tokens[theirs.id]), AccessDenied, "another account"),
        (dict(session="forged"), AccessDenied, "session has expired"),
        (dict(time=-1.0), RatingError, "Time on task"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            submit_judgment(
                store,
                change.get("rater", mine.id),
                change.get("token", task.token),
                "key",
                change.get("preference", "left"),
                change.get("likert", LIKERT),
                "",
                change.get("time", 1.0),
                session_token=change.get("session", tokens[mine.id]),
            )
    with store.session() as session:
        session.execute(
            update(AuthSession).values(expires_at=accounts.now_utc() - timedelta(seconds=1))
        )
    with pytest.raises(AccessDenied, match="session has expired"):
        submit_judgment(
            store, mine.id, task.token, "key", "left", LIKERT, session_token=tokens[mine.id]
        )
    with pytest.raises(AccessDenied, match="session has expired"):
        next_assignment(store, mine.id, study_id, session_token=tokens[mine.id])
    assert _count(store) == 0


def test_a_rater_cannot_read_another_raters_assignment(study) -> None:
    store, study_id, raters, _ = study
    mine, theirs = raters
    their_task = next_assignment(store, theirs.id, study_id)
    with pytest.raises(AccessDenied, match="not one of yours"):
        get_task(store, mine.id, their_task.token)
    assert get_task(store, theirs.id, their_task.token).left_text == their_task.left_text
    outsider = accounts.create_account(store, "outsider", "rater", PASSWORD)
    with pytest.raises(AccessDenied, match="not a rater in this study"):
        next_assignment(store, outsider.id, study_id)


def test_paused_and_closed_studies_refuse(study) -> None:
    store, study_id, raters, _ = study
    rater = raters[0]
    task = next_assignment(store, rater.id, study_id)
    pause_study(store, study_id)
    with pytest.raises(RatingError, match="paused"):
        submit_judgment(store, rater.id, task.token, "k", "left", LIKERT)
    with pytest.raises(RatingError, match="paused"):
        next_assignment(store, rater.id, study_id)
    resume_study(store, study_id)
    submit_judgment(store, rater.id, task.token, "k", "left", LIKERT)
    close_study(store, study_id)
    nxt = get_task(store, rater.id, task.token)
    with pytest.raises(RatingError, match="closed"):
        submit_judgment(store, rater.id, nxt.token, "k-new", "right", LIKERT)
    assert _count(store) == 1


def test_both_unacceptable_with_comment_and_exports(study) -> None:
    store, study_id, raters, _ = study
    for rater in raters:
        for n in range(3):
            task = next_assignment(store, rater.id, study_id)
            submit_judgment(
                store,
                rater.id,
                task.token,
                f"{rater.id}-{n}",
                "both_bad",
                LIKERT,
                "both miss the polyp",
                7.0,
            )
    rows = [json.loads(line) for line in export_judgments(store, study_id, "jsonl").splitlines()]
    assert len(rows) == 6
    row = rows[0]
    assert row["winner"] == "both_bad" and row["comment"] == "both miss the polyp"
    assert {row["left"], row["right"]} == {row["system_a"], row["system_b"]}
    assert row["rater"] in {"rater1", "rater2"} and row["case"].startswith("case-")
    assert row["likert_a_accuracy"] in (4, 2) and row["time_on_task_s"] == 7.0
    assert row["study_config_hash"] and row["submitted_at"] and row["assigned_at"]
    assert "not a medical device" in row["export"]
    progress = study_progress(store, study_id)
    assert [r.done for r in progress.raters] == [3, 3]
    assert sum(p.done for p in progress.pairs) == 6
    from studies.readers.judgments import study_judgments

    frame = study_judgments(store, "Round")
    assert len(frame) == 6 and set(frame["winner"]) == {"both_bad"}
