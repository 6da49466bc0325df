"""Media a rater's page could not show: recorded for the admin, listed per study.

When a page cannot show a task's image or clip, the problem is recorded at once (the audit
log keeps who, which task and the error) and the study's admin page lists it with the case,
so the admin can fix the file. The rater's "flag and go on" is a flag with reason
`media_broken` (`flag_unreadable`, through `studies.readers.flags`, the one home of setting
a case aside): the task leaves their list and the study's flag policy hands it on or leaves
it out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from studies.readers.flags import FlagResult, flag_task
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
            {
                "assignment_id": assignment.id,
                "position": assignment.order_index + 1,
                "error": text[:500],
            },
        )


def flag_unreadable(
    store: Store,
    rater_id: int,
    assignment_token: str,
    submission_key: str,
    *,
    session_token: str | None = None,
) -> FlagResult:
    """ "Flag and go on": the task whose media could not be shown, flagged `media_broken`
    with the recorded error as its note (the admin's; the rater's page never shows it)."""
    with store.session() as session:
        found = session.execute(
            select(Assignment.id, Assignment.study_id).where(
                Assignment.token == assignment_token, Assignment.rater_id == rater_id
            )
        ).first()
        note = ""
        if found is not None:
            for event in reversed(
                events(session, entity="study", entity_id=found.study_id, action=ACTION)
            ):
                if (event.detail or {}).get("assignment_id") == found.id:
                    note = str(event.detail.get("error", ""))
                    break
    return flag_task(
        store,
        rater_id,
        assignment_token,
        submission_key,
        "media_broken",
        note,
        session_token=session_token,
    )


def media_problems(store: Store, study_id: int) -> list[MediaProblem]:
    """The study's recorded media problems, newest first, with the case they belong to."""
    with store.session() as session:
        found = events(session, entity="study", entity_id=study_id, action=ACTION)
        problems = []
        for event in reversed(found):
            detail = event.detail or {}
            row = session.execute(
                select(Case.case_key, Assignment.order_index)
                .join(StudyItem, StudyItem.case_id == Case.id)
                .join(Assignment, Assignment.item_id == StudyItem.id)
                .where(Assignment.id == detail.get("assignment_id"))
            ).first()
            # The rater who met the problem and the task's place in their order then: a
            # flagged task may have moved on to another rater since.
            rater = session.scalar(select(Account.username).where(Account.id == event.actor_id))
            position = detail.get("position") or ((row.order_index + 1) if row else 0)
            problems.append(
                MediaProblem(
                    at=aware(event.at),
                    rater=rater or "?",
                    case_key=row.case_key if row else "?",
                    position=int(position),
                    error=str(detail.get("error", "")),
                )
            )
        return problems
