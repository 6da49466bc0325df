"""Calibration and gold drift on SQLite and PostgreSQL: every rater judges the training cases
first and sees the reference answer after each submit; the main study opens at the entry
threshold (below it the rater is told, and an admin can let them in); a rater added later
trains first too; training answers stay out of the statistics; gold accuracy per rater per
time window alerts the admin when a rater drifts below the study's baseline. (ebb17df had no
calibration, no feedback and no drift alert.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts, rating
from studies.readers.calibration import gold_drift
from studies.readers.design import GoldSpec, StudyDesign, StudyError, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.judgments import study_judgments
from studies.readers.lifecycle import start_study
from studies.readers.panel import add_rater, admit_rater
from studies.readers.rating import RatingError, next_assignment, submit_judgment
from studies.store.db import Store
from studies.store.schema import Assignment, StudyItem

LIKERT = {side: {"accuracy": 3, "completeness": 3, "safety": 3} for side in ("left", "right")}


def _reference_side(store: Store, token: str) -> tuple[str, str]:
    """(kind, the side on the rater's screen the reference answer names)."""
    with store.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        item = session.get(StudyItem, assignment.item_id)
    if item.gold_answer not in ("a", "b"):
        return item.kind, item.gold_answer or "tie"
    return item.kind, "left" if (item.gold_answer == "a") == assignment.a_on_left else "right"


def _wrong(side: str) -> str:
    return "right" if side == "left" else "left"


def _study(store: Store, tmp_path: Path):  # noqa: ANN202
    world = build_world(store, tmp_path / "bench", n_cases=8)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1") for i in range(3)
    ]
    alpha, beta = world.systems[0], world.systems[1]
    design = StudyDesign(
        name="Trained",
        benchmark=world.benchmark,
        systems=world.systems,
        overlap=2,
        seed=5,
        duplicate_fraction=0.0,
        calibration=[GoldSpec(k, alpha, beta) for k in world.case_keys[:2]],
        calibration_threshold=1.0,
        gold=[GoldSpec(k, alpha, beta) for k in world.case_keys[2:5]],
    )
    study_id = create_study(store, design)
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    return study_id, raters


def _train(store: Store, study_id: int, rater_id: int, *, mistakes: int = 0) -> list[str]:
    said = []
    for _ in range(2):
        task = next_assignment(store, rater_id, study_id)
        kind, side = _reference_side(store, task.token)
        assert kind == "calibration" and task.position in (1, 2)
        answer = _wrong(side) if mistakes > 0 else side
        mistakes -= 1
        result = submit_judgment(store, rater_id, task.token, f"{task.token}:k", answer, LIKERT)
        said.append(result.feedback)
        with pytest.raises(RatingError, match="training case's answer stays"):
            rating.correct_judgment(store, rater_id, task.token, f"{task.token}:c", "tie", LIKERT)
    return said


def test_calibration_gates_the_main_study_and_gives_feedback(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path)
    feedback = _train(store, study_id, raters[0].id)
    assert all(
        f and f.startswith("Reference answer for this training case: Report") for f in feedback
    )
    task = next_assignment(store, raters[0].id, study_id)
    assert _reference_side(store, task.token)[0] in ("regular", "gold")  # the main study

    _train(store, study_id, raters[1].id, mistakes=1)
    with pytest.raises(
        RatingError, match="matched the reference on 1 of 2 cases; this study asks for 100%"
    ):
        next_assignment(store, raters[1].id, study_id)
    assert admit_rater(store, study_id, "rater1") > 0
    assert next_assignment(store, raters[1].id, study_id) is not None
    with pytest.raises(StudyError, match="not waiting on calibration"):
        admit_rater(store, study_id, "rater1")

    # A rater who joins the running study trains first; the tasks moved to them wait.
    late = accounts.create_account(store, "late", "rater", "rater-password-1")
    change = add_rater(store, study_id, "late")
    assert change is not None and change.moved > 0 and change.added == 5  # 2 training + 3 gold
    _train(store, study_id, late.id)
    assert (
        _reference_side(store, next_assignment(store, late.id, study_id).token)[0] != "calibration"
    )

    # Everyone finishes (rater2 trains first); the statistics hold no training case.
    _train(store, study_id, raters[2].id)
    for rater in (*raters, late):
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            submit_judgment(store, rater.id, task.token, f"{task.token}:k", "tie", LIKERT)
    frame = study_judgments(store, "Trained")
    assert not frame["item"].isin(_item_ids(store, "calibration")).any()
    assert len(frame) > 0


def _item_ids(store: Store, kind: str) -> list[str]:
    with store.session() as session:
        return [str(i) for i in session.scalars(select(StudyItem.id).where(StudyItem.kind == kind))]


def test_gold_accuracy_per_window_alerts_a_rater_below_the_baseline(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_id, raters = _study(store, tmp_path)
    for rater in raters:
        _train(store, study_id, rater.id)
    start = rating.now_utc()
    # rater2 answers gold right in the first week and wrong two weeks later.
    for rater in raters:
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            kind, side = _reference_side(store, task.token)
            answer = side
            if kind == "gold" and rater.username == "rater2":
                answer = _wrong(side)
                monkeypatch.setattr(rating, "now_utc", lambda: start + timedelta(days=15))
            submit_judgment(store, rater.id, task.token, f"{task.token}:k", answer, LIKERT)
            monkeypatch.setattr(rating, "now_utc", lambda: start)
    report = gold_drift(store, study_id, window=timedelta(days=7), min_judgments=3)
    assert report.baseline == pytest.approx(6 / 9)
    rater2 = [w for w in report.windows if w.rater == "rater2"]
    assert [(w.n, w.correct) for w in rater2] == [(3, 0)]
    assert rater2[0].start >= start + timedelta(days=13)
    assert len(report.alerts) == 1 and report.alerts[0].startswith("rater2: gold accuracy 0% (0/3)")
    assert gold_drift(store, study_id, min_judgments=4).alerts == []
