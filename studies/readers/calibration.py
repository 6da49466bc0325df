"""Calibration and gold accuracy over time.

Calibration: a block of training items (kind `calibration`, each with its reference answer)
every rater judges first; after each submit the rating step returns the reference answer in
the rater's screen terms (`SubmitResult.feedback`). With `StudyDesign.calibration_threshold`,
a rater's main-study tasks wait (`WAITS_FOR_CALIBRATION`) until the share of their calibration
answers that matched the reference reaches it; a rater below it is told so, and an admin may
let them in (`admit_rater`, an amendment). Calibration judgments stay out of the reader
statistics and of preference harvesting.

Drift: `gold_drift` reads each rater's accuracy on the gold items per time window against the
study's baseline (all raters' gold accuracy); a rater whose latest window (with enough gold
judgments) is below the baseline by more than a margin is an alert for the admin page.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select, update
from sqlalchemy.orm import Session

from studies.readers.design import find_study
from studies.readers.form import PREFERENCES
from studies.readers.judgments import is_current
from studies.store.db import Store
from studies.store.schema import (
    WAITS_FOR_CALIBRATION,
    Account,
    Assignment,
    CaseFlag,
    Judgment,
    StudyItem,
)

CALIBRATION_KIND = "calibration"


def feedback_text(gold_answer: str | None, a_on_left: bool) -> str | None:
    """The reference answer of a calibration item in the rater's screen terms."""
    if gold_answer is None:
        return None
    if gold_answer in ("a", "b"):
        shown = "left" if (gold_answer == "a") == a_on_left else "right"
    else:
        shown = gold_answer
    return f"Reference answer for this training case: {PREFERENCES[shown]}."


def _calibration_rows(rater_id: int, study_id: int):  # noqa: ANN202
    return (
        select(Assignment.id, StudyItem.gold_answer, Judgment.winner)
        .join(StudyItem, StudyItem.id == Assignment.item_id)
        .outerjoin(Judgment, and_(Judgment.assignment_id == Assignment.id, is_current()))
        .where(
            Assignment.study_id == study_id,
            Assignment.rater_id == rater_id,
            StudyItem.kind == CALIBRATION_KIND,
            # A training case the rater flagged as one they cannot assess does not count.
            ~exists().where(CaseFlag.assignment_id == Assignment.id, CaseFlag.rater_id == rater_id),
        )
    )


@dataclass(frozen=True)
class CalibrationScore:
    judged: int
    total: int
    correct: int

    @property
    def share(self) -> float:
        return self.correct / self.judged if self.judged else 0.0


def calibration_score(
    connection: Connection | Session, rater_id: int, study_id: int
) -> CalibrationScore:
    rows = connection.execute(_calibration_rows(rater_id, study_id)).all()
    judged = [r for r in rows if r.winner is not None]
    return CalibrationScore(len(judged), len(rows), sum(r.winner == r.gold_answer for r in judged))


def _open_main_study(connection: Connection | Session, rater_id: int, study_id: int) -> None:
    connection.execute(
        update(Assignment.__table__)
        .where(
            Assignment.study_id == study_id,
            Assignment.rater_id == rater_id,
            Assignment.available_at == WAITS_FOR_CALIBRATION,
        )
        .values(available_at=None)
    )


def after_calibration_judgment(
    connection: Connection, rater_id: int, study_id: int, threshold: float
) -> None:
    """Open the main study to the rater once every calibration item is judged and the share
    that matched the reference reaches `threshold` (inside the submit's transaction)."""
    score = calibration_score(connection, rater_id, study_id)
    if score.judged == score.total and score.share >= threshold:
        _open_main_study(connection, rater_id, study_id)


def waiting_message(
    session_or_connection, rater_id: int, study_id: int, threshold: float
) -> str | None:  # noqa: ANN001
    """Why a rater with nothing to rate is still kept from the main study (None: not)."""
    gated = session_or_connection.execute(
        select(func.count()).where(
            Assignment.study_id == study_id,
            Assignment.rater_id == rater_id,
            Assignment.available_at == WAITS_FOR_CALIBRATION,
            ~exists().where(Judgment.assignment_id == Assignment.id),
        )
    ).scalar()
    if not gated:
        return None
    score = calibration_score(session_or_connection, rater_id, study_id)
    return (
        f"Your training answers matched the reference on {score.correct} of {score.judged} "
        f"cases; this study asks for {threshold:.0%} before the main cases. Your study admin "
        "will contact you (they can let you in or ask you to train again)."
    )


def gate_uncalibrated(session: Session, study_id: int) -> None:
    """After a panel change: a rater who has not passed calibration (unjudged calibration
    items, or tasks already waiting) finds every task moved to them waiting too."""
    waiting = select(Assignment.rater_id).where(
        Assignment.study_id == study_id, Assignment.available_at == WAITS_FOR_CALIBRATION
    )
    untrained = (
        select(Assignment.rater_id)
        .join(StudyItem, StudyItem.id == Assignment.item_id)
        .where(
            Assignment.study_id == study_id,
            StudyItem.kind == CALIBRATION_KIND,
            ~exists().where(Judgment.assignment_id == Assignment.id),
        )
    )
    calibration_items = select(StudyItem.id).where(
        StudyItem.study_id == study_id, StudyItem.kind == CALIBRATION_KIND
    )
    session.execute(
        update(Assignment.__table__)
        .where(
            Assignment.study_id == study_id,
            Assignment.available_at.is_(None),
            Assignment.item_id.not_in(calibration_items),
            Assignment.rater_id.in_(waiting.union(untrained)),
            ~exists().where(Judgment.assignment_id == Assignment.id),
        )
        .values(available_at=WAITS_FOR_CALIBRATION)
    )


# --- gold accuracy over time ---------------------------------------------------------------


@dataclass(frozen=True)
class GoldWindow:
    rater: str
    start: datetime
    n: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class DriftReport:
    baseline: float | None  # all raters' gold accuracy in the study
    windows: list[GoldWindow]
    alerts: list[str]


def gold_drift(
    store: Store,
    study: int | str,
    *,
    window: timedelta = timedelta(days=7),
    margin: float = 0.15,
    min_judgments: int = 3,
) -> DriftReport:
    """Gold accuracy per rater per time window (from the study's start), and an alert for
    each rater whose latest window with at least `min_judgments` gold judgments lies more
    than `margin` below the study's baseline."""
    from studies.store.schema import aware

    with store.session() as session:
        row = find_study(session, study)
        start = aware(row.started_at)
        rows = session.execute(
            select(Account.username, Judgment.winner, StudyItem.gold_answer, Judgment.submitted_at)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .join(Account, Account.id == Judgment.rater_id)
            .where(Assignment.study_id == row.id, StudyItem.kind == "gold", is_current())
        ).all()
    if not rows or start is None:
        return DriftReport(None, [], [])
    baseline = sum(r.winner == r.gold_answer for r in rows) / len(rows)
    cells: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for name, winner, answer, at in rows:
        number = max(0, int((aware(at) - start) / window))
        cells[(name, number)].append(winner == answer)
    windows = [
        GoldWindow(name, start + number * window, len(hits), sum(hits))
        for (name, number), hits in sorted(cells.items())
    ]
    alerts = []
    for name in sorted({w.rater for w in windows}):
        enough = [w for w in windows if w.rater == name and w.n >= min_judgments]
        if enough and enough[-1].accuracy < baseline - margin:
            latest = enough[-1]
            alerts.append(
                f"{name}: gold accuracy {latest.accuracy:.0%} ({latest.correct}/{latest.n}) in "
                f"the window from {latest.start:%Y-%m-%d}, below the study's {baseline:.0%}"
            )
    return DriftReport(baseline, windows, alerts)
