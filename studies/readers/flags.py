"""Flags: a rater's "cannot assess" for a case (image quality, media broken, other + a note),
the one home of setting a case aside.

A flag is a row of `case_flags` (append-only, migration 0007), written in one transaction
with its audit event and whatever the study's flag policy (`StudyDesign.flag_policy`) does:
- "reassign" (default): the task, with the rater's unjudged duplicate of it, MOVES to the
  least loaded active rater who has not seen the item (`panel.hand_on_flagged`), an amendment
  of the design, so the item keeps its overlap; when every other active rater already holds
  the item, it waits and the next rater added to the panel takes it;
- "exclude": that copy stays with its rater, unjudged, is left out of the analysis and is
  counted as excluded in the study's progress.
Either way the flagged task leaves the rater's queue and their done / remaining count, and a
rater's flag never hands the item back to them. Only the rater's own open task can be flagged
(the access checks of a submit: live session, their task, a running study, still on the
panel); a judged task is corrected, not flagged. A submission key makes a repeated flag
(double click, retry) write nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from studies.readers.accounts import session_account_id
from studies.readers.calibration import after_calibration_judgment
from studies.readers.design import find_study, flag_policy
from studies.readers.panel import _lock_panel, hand_on_flagged
from studies.readers.rating import refuse_closed_task, task_for_write
from studies.readers.writes import (
    AccessDenied,
    DatabaseBusy,
    RatingError,
    check_submission_key,
    write_transaction,
)
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Assignment,
    Case,
    CaseFlag,
    Judgment,
    Study,
    StudyItem,
    aware,
    utcnow,
)

# The reasons a rater can give, as the page offers them.
REASONS = {
    "image_quality": "Image quality too poor to judge",
    "media_broken": "Images or clip cannot be shown",
    "other": "Other (say why)",
}
# What became of a flagged task.
OUTCOMES = {
    "reassigned": "handed to another rater",
    "waiting": "waits for a rater who has not seen the case (add one to the panel)",
    "excluded": "excluded from the analysis for this copy",
}
NOTE_LIMIT = 2000
ACTION = "case.flag"


@dataclass(frozen=True)
class FlagResult:
    flag_id: int
    created: bool  # False: this submission key (or an earlier flag of the task) stands
    outcome: str  # a key of OUTCOMES

    @property
    def message(self) -> str:
        """What the rater is told (names no other rater or system)."""
        return "Case set aside: it has left your list. Thank you for saying why."


@dataclass(frozen=True)
class CaseFlagInfo:
    """One flag as the study's admin sees it."""

    at: datetime | None
    case_key: str
    rater: str
    position: int  # its place in the flagging rater's order when flagged
    kind: str  # regular | gold | calibration, "duplicate" for a duplicate copy
    reason: str
    note: str
    outcome: str  # a key of OUTCOMES
    now_with: str  # who holds the task now ('' when it stayed with the flagging rater)
    judged: bool  # the task (where it is now) has a judgment

    @property
    def what_happened(self) -> str:
        text = OUTCOMES[self.outcome]
        if self.outcome == "reassigned":
            text = f"handed to {self.now_with}" + (" (judged)" if self.judged else "")
        return text


def check_flag(reason: str, note: str | None) -> str:
    """The note, stripped; RatingError naming what to fix for a bad reason or note."""
    if reason not in REASONS:
        raise RatingError(f"Flag reason: choose one of {', '.join(REASONS)}.")
    note = (note or "").strip()
    if reason == "other" and not note:
        raise RatingError("Flag reason 'other': write a short note saying why.")
    if len(note) > NOTE_LIMIT:
        raise RatingError(f"Flag note: at most {NOTE_LIMIT} characters.")
    return note


def flag_task(
    store: Store,
    rater_id: int,
    token: str,
    submission_key: str,
    reason: str,
    note: str = "",
    *,
    session_token: str | None = None,
) -> FlagResult:
    """Flag the rater's open task as one they cannot assess (RatingError, nothing written,
    otherwise); the study's flag policy says what happens to it (see the module)."""
    note = check_flag(reason, note)
    check_submission_key(submission_key)
    try:
        with write_transaction(store) as connection, Session(bind=connection) as session:
            result = _flag(session, rater_id, token, submission_key, reason, note, session_token)
            session.flush()
            return result
    except IntegrityError:
        # A concurrent twin with the same key got in first: answer with what it wrote.
        with store.session() as session:
            found = _by_key(session, submission_key)
            if found is None or found.rater_id != rater_id:
                raise
            return FlagResult(found.id, False, _outcome_of(session, found))
    except OperationalError as exc:
        raise DatabaseBusy() from exc


def _by_key(session: Session, submission_key: str) -> CaseFlag | None:
    return session.scalar(select(CaseFlag).where(CaseFlag.submission_key == submission_key))


def _flag(
    session: Session,
    rater_id: int,
    token: str,
    submission_key: str,
    reason: str,
    note: str,
    session_token: str | None,
) -> FlagResult:
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        # Panel changes of the study first, then the task row, as every panel change does
        # (no lock-order deadlock with a concurrent change). SQLite holds its write lock.
        study_id = session.scalar(select(Assignment.study_id).where(Assignment.token == token))
        if study_id is not None:
            _lock_panel(session, session.get(Study, study_id))
    repeat = _by_key(session, submission_key)
    if repeat is not None:
        # Asked before (a double click, a retry): the answer stands, even once the task has
        # moved on to another rater and its link changed.
        if session_token is not None and session_account_id(connection, session_token) is None:
            raise AccessDenied("Your session has expired. Log in again; nothing was saved.")
        if repeat.rater_id != rater_id:
            raise RatingError("This submission key was used for another task; reload.")
        return FlagResult(repeat.id, False, _outcome_of(session, repeat))
    row = task_for_write(connection, rater_id, token, session_token)
    refuse_closed_task(row)
    earlier = session.scalar(
        select(CaseFlag).where(CaseFlag.assignment_id == row.id, CaseFlag.rater_id == rater_id)
    )
    if earlier is not None:
        return FlagResult(earlier.id, False, _outcome_of(session, earlier))
    if session.scalar(select(Judgment.id).where(Judgment.assignment_id == row.id).limit(1)):
        raise RatingError(
            "This case is already answered; change your answer instead of flagging it. "
            "Nothing was saved."
        )
    index = session.scalar(select(Assignment.order_index).where(Assignment.id == row.id))
    flag_id = _insert(session, row.id, rater_id, submission_key, reason, note)
    study = session.get(Study, row.study_id)
    policy = flag_policy(study)
    twin = _unjudged_twin(session, rater_id, row.item_id, row.id)
    outcome = "excluded"
    if policy == "reassign" and row.item_kind == "regular" and not row.is_duplicate:
        flagger = session.get(Account, rater_id)
        change = hand_on_flagged(session, study, row.id, flagger, reason)
        outcome = "reassigned" if change is not None else "waiting"
    threshold = ((study.config or {}).get("design") or {}).get("calibration_threshold") or 0
    if row.item_kind == "calibration" and threshold:
        # The flagged training case no longer counts: the others may open the main study.
        after_calibration_judgment(connection, rater_id, row.study_id, float(threshold))
    if outcome != "reassigned" and twin is not None:
        # The same case with the sides swapped: the rater cannot assess it either.
        _insert(session, twin, rater_id, f"{submission_key[:90]}:twin", reason, note)
    record(
        session,
        rater_id,
        ACTION,
        "study",
        row.study_id,
        {
            "assignment_id": row.id,
            "flag_id": flag_id,
            "position": index + 1,
            "reason": reason,
            "outcome": outcome,
        },
    )
    return FlagResult(flag_id, True, outcome)


def _insert(
    session: Session, assignment_id: int, rater_id: int, key: str, reason: str, note: str
) -> int:
    return session.execute(
        insert(CaseFlag)
        .values(
            assignment_id=assignment_id,
            rater_id=rater_id,
            submission_key=key,
            reason=reason,
            note=note,
            at=utcnow(),
        )
        .returning(CaseFlag.id)
    ).scalar_one()


def _unjudged_twin(session: Session, rater_id: int, item_id: int, assignment_id: int) -> int | None:
    """The rater's other copy of the item (original or duplicate), if not judged yet."""
    return session.scalar(
        select(Assignment.id).where(
            Assignment.rater_id == rater_id,
            Assignment.item_id == item_id,
            Assignment.id != assignment_id,
            ~select(Judgment.id).where(Judgment.assignment_id == Assignment.id).exists(),
        )
    )


def _outcome_of(session: Session, flag: CaseFlag) -> str:
    holder = session.scalar(select(Assignment.rater_id).where(Assignment.id == flag.assignment_id))
    if holder != flag.rater_id:
        return "reassigned"
    return _kept_outcome(session, flag.assignment_id)


def _kept_outcome(session: Session, assignment_id: int) -> str:
    """A flagged task its rater still holds: excluded, or waiting under "reassign"."""
    study = session.scalar(
        select(Study)
        .join(Assignment, Assignment.study_id == Study.id)
        .where(Assignment.id == assignment_id)
    )
    policy = flag_policy(study)
    kind, is_duplicate = session.execute(
        select(StudyItem.kind, Assignment.is_duplicate)
        .join(Assignment, Assignment.item_id == StudyItem.id)
        .where(Assignment.id == assignment_id)
    ).one()
    if policy == "reassign" and kind == "regular" and not is_duplicate:
        return "waiting"
    return "excluded"


def study_flags(store: Store, study: int | str) -> list[CaseFlagInfo]:
    """The study's flags, newest first, with the case, the rater, the reason and note, and
    what became of the task (admin only: it names raters)."""
    with store.session() as session:
        row = find_study(session, study)
        policy = flag_policy(row)
        judged = select(Judgment.id).where(Judgment.assignment_id == Assignment.id).exists()
        holder = Account.__table__.alias("holder")
        flagger = Account.__table__.alias("flagger")
        found = session.execute(
            select(
                CaseFlag,
                Case.case_key,
                flagger.c.username.label("rater"),
                holder.c.username.label("holder"),
                Assignment.rater_id.label("holder_id"),
                Assignment.is_duplicate,
                StudyItem.kind,
                judged.label("judged"),
            )
            .join(Assignment, Assignment.id == CaseFlag.assignment_id)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .join(Case, Case.id == StudyItem.case_id)
            .join(flagger, flagger.c.id == CaseFlag.rater_id)
            .join(holder, holder.c.id == Assignment.rater_id)
            .where(Assignment.study_id == row.id)
            .order_by(CaseFlag.id.desc())
        ).all()
        positions = _positions_when_flagged(session, row.id)
        out = []
        for f in found:
            flag = f.CaseFlag
            moved = f.holder_id != flag.rater_id
            if moved:
                outcome = "reassigned"
            elif policy == "reassign" and f.kind == "regular" and not f.is_duplicate:
                outcome = "waiting"
            else:
                outcome = "excluded"
            out.append(
                CaseFlagInfo(
                    at=aware(flag.at),
                    case_key=f.case_key,
                    rater=f.rater,
                    position=positions.get(flag.id, 0),
                    kind="duplicate" if f.is_duplicate else f.kind,
                    reason=flag.reason,
                    note=flag.note or "",
                    outcome=outcome,
                    now_with=f.holder if moved else "",
                    judged=bool(f.judged),
                )
            )
        return out


def _positions_when_flagged(session: Session, study_id: int) -> dict[int, int]:
    """flag id -> the task's 1-based place in its rater's order (a moved task got a new
    place with its new rater; the audit event keeps where it was)."""
    from studies.store.audit import events

    places: dict[int, int] = {}
    for event in events(session, entity="study", entity_id=study_id, action=ACTION):
        detail = event.detail or {}
        if "flag_id" in detail and "position" in detail:
            places[int(detail["flag_id"])] = int(detail["position"])
    return places
