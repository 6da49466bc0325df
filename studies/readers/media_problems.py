"""Media a rater's page could not show: recorded for the admin, listed per study.

A rater who meets an unreadable image or clip sets the task aside ("flag and go on"); the
audit log keeps who, which task and why, and the study's admin page lists them with the
case, so the admin can fix the file and the rater can come back to the task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from studies.store.audit import events, record
from studies.store.db import Store
from studies.store.schema import Account, Assignment, Case, StudyItem, aware

ACTION = "media.unreadable"


@dataclass(frozen=True)
class MediaProblem:
    at: datetime | None
    rater: str
    case_key: str
    position: int
    error: str


def report_media_problem(
    store: Store, rater_id: int, assignment_token: str, error: BaseException | str
) -> None:
    """Record that the task's media could not be shown to `rater_id` (their own task only)."""
    with store.session() as session:
        assignment = session.scalar(
            select(Assignment).where(
                Assignment.token == assignment_token, Assignment.rater_id == rater_id
            )
        )
        if assignment is None:
            return  # not this rater's task: nothing to record against it
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        record(
            session,
            rater_id,
            ACTION,
            "study",
            assignment.study_id,
            {"assignment_id": assignment.id, "error": text[:500]},
        )


def media_problems(store: Store, study_id: int) -> list[MediaProblem]:
    """The study's recorded media problems, newest first, with the case they belong to."""
    with store.session() as session:
        found = events(session, entity="study", entity_id=study_id, action=ACTION)
        problems = []
        for event in reversed(found):
            detail = event.detail or {}
            row = session.execute(
                select(Case.case_key, Assignment.order_index, Account.username)
                .join(StudyItem, StudyItem.case_id == Case.id)
                .join(Assignment, Assignment.item_id == StudyItem.id)
                .join(Account, Account.id == Assignment.rater_id)
                .where(Assignment.id == detail.get("assignment_id"))
            ).first()
            problems.append(
                MediaProblem(
                    at=aware(event.at),
                    rater=row.username if row else "?",
                    case_key=row.case_key if row else "?",
                    position=(row.order_index + 1) if row else 0,
                    error=str(detail.get("error", "")),
                )
            )
        return problems
