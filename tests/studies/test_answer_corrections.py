"""Any earlier answer can be corrected, ratings included, and the guidelines are
acknowledged once, on SQLite and PostgreSQL. (9f89c26 offered only the last answer and kept
its ratings; guidelines were never recorded as read.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.reader_world import build_world
from support.started_study import LIKERT, start_with

from studies.readers import accounts
from studies.readers.design import StudyDesign
from studies.readers.rating import (
    GUIDELINES_ACTION,
    AccessDenied,
    RatingError,
    acknowledge_guidelines,
    answered_tasks,
    calibration_status,
    correct_judgment,
    guidelines_acknowledged,
    next_assignment,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, AuditEvent, Judgment, System

FIRST = LIKERT  # the first answer; CHANGED corrects it
CHANGED = {
    "left": {"accuracy": 1, "completeness": 2, "safety": 1},
    "right": {"accuracy": 5, "completeness": 5, "safety": 5},
}


def _study(store: Store, tmp_path: Path) -> tuple[int, list[accounts.AccountInfo]]:
    world = build_world(store, tmp_path / "bench", n_cases=4)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1") for i in (1, 2)
    ]
    study_id = start_with(
        store,
        StudyDesign(
            name="Corrections",
            benchmark=world.benchmark,
            systems=world.systems[:2],
            duplicate_fraction=0.0,
        ),
        raters,
    )
    return study_id, raters


def test_the_first_of_three_answers_is_corrected_ratings_included(
    store: Store, tmp_path: Path
) -> None:
    study_id, (rater, other) = _study(store, tmp_path)
    shown = []
    for number in range(3):
        task = next_assignment(store, rater.id, study_id)
        shown.append(task)
        submit_judgment(store, rater.id, task.token, f"k{number}", "left", FIRST, "first")
    answered = answered_tasks(store, rater.id, study_id)
    assert [a.position for a in answered] == [t.position for t in shown]
    first = answered[0]
    # The task as it was shown: same sides, same texts, no system name anywhere.
    assert (first.task.left_text, first.task.right_text) == (
        shown[0].left_text,
        shown[0].right_text,
    )
    assert (first.preference_shown, first.likert, first.comment) == ("left", FIRST, "first")
    assert first.correctable
    with store.session() as session:
        names = list(session.scalars(select(System.name)))
    assert not any(name in repr(first) for name in names)

    result = correct_judgment(
        store, rater.id, first.task.token, "fix-1", "right", CHANGED, "on second thought"
    )
    assert result.created
    again = answered_tasks(store, rater.id, study_id)
    assert (again[0].preference_shown, again[0].likert, again[0].comment) == (
        "right",
        CHANGED,
        "on second thought",
    )
    assert [(a.preference_shown, a.likert) for a in again[1:]] == [("left", FIRST)] * 2
    # The chain in the database: the old judgment kept, the new one supersedes it, and the
    # ratings are stored under the systems (a / b) as shown.
    with store.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.token == first.task.token))
        chain = list(
            session.scalars(
                select(Judgment)
                .where(Judgment.assignment_id == assignment.id)
                .order_by(Judgment.id)
            )
        )
    assert len(chain) == 2 and chain[1].supersedes_id == chain[0].id
    a_side = "left" if assignment.a_on_left else "right"
    assert chain[0].likert["a"] == FIRST[a_side] and chain[1].likert["a"] == CHANGED[a_side]
    # A repeated click writes nothing; ratings the form does not allow are refused.
    assert not correct_judgment(
        store, rater.id, first.task.token, "fix-1", "right", CHANGED, "on second thought"
    ).created
    bad = {"left": {**CHANGED["left"], "accuracy": 7}, "right": CHANGED["right"]}
    with pytest.raises(RatingError, match="Report A: Accuracy must be a whole number 1-5"):
        correct_judgment(store, rater.id, first.task.token, "fix-2", "right", bad)
    missing = {"left": {"accuracy": 3}, "right": CHANGED["right"]}
    with pytest.raises(RatingError, match="Report A: rate Completeness"):
        correct_judgment(store, rater.id, first.task.token, "fix-3", "right", missing)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Judgment)) == 4
    # Another rater sees none of it; a study without training cases has no calibration.
    assert answered_tasks(store, other.id, study_id) == []
    assert calibration_status(store, rater.id, study_id) is None
    with pytest.raises(AccessDenied):
        correct_judgment(store, other.id, first.task.token, "fix-4", "left", FIRST)


def test_guidelines_are_acknowledged_once(store: Store, tmp_path: Path) -> None:
    study_id, (rater, other) = _study(store, tmp_path)
    assert not guidelines_acknowledged(store, rater.id, study_id)
    acknowledge_guidelines(store, rater.id, study_id)
    acknowledge_guidelines(store, rater.id, study_id)
    assert guidelines_acknowledged(store, rater.id, study_id)
    assert not guidelines_acknowledged(store, other.id, study_id)
    with store.session() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == GUIDELINES_ACTION)
        ).all()
    assert [(e.actor_id, e.entity_id) for e in events] == [(rater.id, str(study_id))]
    assert len(events[0].detail["guidelines_sha256"]) == 64
    # A fresh process (a new store on the same database) reads it back.
    again = Store(store.url)
    try:
        assert guidelines_acknowledged(again, rater.id, study_id)
    finally:
        again.dispose()
    stranger = accounts.create_account(store, "stranger", "rater", "rater-password-1")
    with pytest.raises(AccessDenied, match="not a rater in this study"):
        acknowledge_guidelines(store, stranger.id, study_id)


def _reference_side(store: Store, token: str) -> str:
    """The side on the rater's screen that a training case's reference answer names."""
    from studies.store.schema import StudyItem

    with store.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        item = session.get(StudyItem, assignment.item_id)
    return "left" if (item.gold_answer == "a") == assignment.a_on_left else "right"


def test_calibration_status_says_passed_or_not_yet(store: Store, tmp_path: Path) -> None:
    from studies.readers.design import GoldSpec
    from studies.readers.panel import admit_rater

    world = build_world(store, tmp_path / "bench", n_cases=6)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1") for i in (1, 2)
    ]
    alpha, beta = world.systems[0], world.systems[1]
    study_id = start_with(
        store,
        StudyDesign(
            name="Trained",
            benchmark=world.benchmark,
            systems=world.systems[:2],
            duplicate_fraction=0.0,
            calibration=[GoldSpec(k, alpha, beta) for k in world.case_keys[:2]],
            calibration_threshold=1.0,
        ),
        raters,
    )
    status = calibration_status(store, raters[0].id, study_id)
    assert (status.judged, status.total, status.passed) == (0, 2, False)
    assert status.text() == "Training: 0 of 2 cases answered."
    for rater, right in ((raters[0], True), (raters[1], False)):
        for _ in range(2):
            task = next_assignment(store, rater.id, study_id)
            answer = _reference_side(store, task.token) if right else "tie"
            submit_judgment(store, rater.id, task.token, f"{task.token}:k", answer, FIRST)
    status = calibration_status(store, raters[0].id, study_id)
    assert (status.judged, status.correct, status.passed) == (2, 2, True)
    assert status.text().endswith("the main cases are open.")
    # 'tie' everywhere while the reference names a report: below the threshold, not yet.
    status = calibration_status(store, raters[1].id, study_id)
    assert (status.judged, status.correct, status.passed) == (2, 0, False)
    assert "asks for 100%" in status.text()
    admit_rater(store, study_id, raters[1].username)
    assert calibration_status(store, raters[1].id, study_id).passed
