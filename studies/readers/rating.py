"""Rating: a rater's next task, submitting a judgment, corrections, and raw exports.

Which judgment is current, and the join of a study's judgments, come from
`studies.readers.judgments`; the export's Likert columns come from the study's frozen form.

What a rater page receives (`RatingTask`) carries no system name, id, fingerprint, run or
generation id: only an opaque assignment token, the case media and the two report texts
as shown on screen. A judgment is written in one transaction; its unique submission key
makes a double submit (double click, two tabs, a retry) write nothing new. A submit of a task
already answered writes nothing and says whether the answer that stands differs from the one
sent (`SubmitResult.conflict`, `.stored`), so no answer is ever dropped without a word; the
database itself keeps one current judgment per task (migration 0003). A busy database is
`DatabaseBusy`: rolled back, safe to send again.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased

from studies.readers.accounts import (
    SESSION_EXPIRES,
    SESSION_OWNER,
    aware,
    join_session,
    live_session_owner,
    now_utc,
    session_account,
    session_account_id,
    token_hash,
)
from studies.readers.calibration import (
    after_calibration_judgment,
    calibration_score,
    feedback_text,
    waiting_message,
)
from studies.readers.design import ANNOTATION_KIND, StudyError
from studies.readers.form import (
    PREFERENCES,
    FormError,
    check_likert,
    criteria,
    default_form,
    likert_columns,
)
from studies.readers.judgments import case_label, is_current, judgment_query, study_form
from studies.readers.study_export import (
    ANSWER_FIELDS,
    PROVENANCE_FIELDS,
    answer_columns,
    check_format,
    export_text,
    study_provenance,
)
from studies.readers.writes import (
    AccessDenied,
    DatabaseBusy,
    RatingError,
    check_submission_key,
)
from studies.readers.writes import (
    write_transaction as _write_transaction,
)
from studies.store.audit import record
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media
from studies.store.schema import (
    WAITS_FOR_CALIBRATION,
    WAITS_FOR_ORIGINAL,
    Annotation,
    Assignment,
    AuditEvent,
    Benchmark,
    Case,
    CaseFlag,
    Generation,
    Judgment,
    Study,
    StudyItem,
    StudyRater,
)

EXPORT_VERSION = "reader-study-export/1"


@dataclass(frozen=True)
class TaskMedia:
    kind: str  # image | video | frames
    path: Path  # absolute; a page reads the bytes and never shows the path


@dataclass(frozen=True)
class RatingTask:
    """One assignment as a rater page may show it."""

    token: str
    study_name: str
    position: int  # 1-based place of this task in the rater's order
    done: int
    total: int
    modality: str
    media: list[TaskMedia]
    question: str | None
    left_text: str
    right_text: str
    guidelines: str
    form: dict[str, Any] = field(default_factory=default_form)


@dataclass(frozen=True)
class RaterStudy:
    id: int
    name: str
    status: str
    done: int
    total: int
    guidelines: str
    # True when the study's cases are synthetic: the page says so (it names no system).
    synthetic: bool = False


@dataclass(frozen=True)
class StoredAnswer:
    """A stored judgment in the rater's screen terms (left = Report A on their screen)."""

    preference_shown: str
    likert: dict[str, dict[str, int]]  # {"left": {criterion: 1-5}, "right": {...}}
    comment: str
    submitted_at: datetime | None = None

    def same_answer(self, other: StoredAnswer) -> bool:
        """The same preference, ratings and comment (the time it was given aside)."""
        return (self.preference_shown, self.likert, self.comment) == (
            other.preference_shown,
            other.likert,
            other.comment,
        )


@dataclass(frozen=True)
class SubmitResult:
    judgment_id: int
    created: bool  # False: an earlier submission (or judgment) stands and nothing was written
    winner: str
    # True when the task was already answered and the answer that stands is NOT the one just
    # submitted (second tab, retry after a reconnect): the page must show `stored` and the way
    # to correct it, never move on silently.
    conflict: bool = False
    # The answer that stands when `created` is False (None when this call wrote it).
    stored: StoredAnswer | None = None
    # A calibration (training) case: the reference answer, to show after submit.
    feedback: str | None = None


def check_session(session: Session, rater_id: int, session_token: str | None) -> None:
    """AccessDenied when a given session token is not a live session of this rater (read
    through the ORM session; `refuse_session` when the owner is already known)."""
    if session_token is None:
        return
    account = session_account(session, session_token)
    refuse_session(rater_id, session_token, account.id if account is not None else None)


def enrolled_study(session: Session, rater_id: int, study_id: int) -> Study:
    """The study, AccessDenied unless the account is on its panel (active or not)."""
    study = session.scalar(
        select(Study)
        .join(StudyRater, StudyRater.study_id == Study.id)
        .where(Study.id == study_id, StudyRater.account_id == rater_id)
    )
    if study is None:
        raise AccessDenied("You are not a rater in this study.")
    return study


def _status_message(study: Study) -> str | None:
    return status_text(study.name, study.status)


def status_text(name: str, status: str) -> str | None:
    """What a rater is told when the study is not running (None while it runs)."""
    if status == "paused":
        return f"The study '{name}' is paused by its admin; please come back later."
    if status == "closed":
        return f"The study '{name}' is closed; thank you for your judgments."
    if status == "draft":
        return f"The study '{name}' has not started yet."
    return None


def left_panel_text(name: str) -> str:
    """What a rater taken off the panel is told."""
    return (
        f"Your place on the panel of the study '{name}' has ended (its admin changed the "
        "panel); thank you for your judgments, which are kept."
    )


def member_studies(rater_id: int) -> Select:
    """The started studies (not drafts) the account is an active panel member of, by id."""
    return (
        select(Study)
        .join(StudyRater, StudyRater.study_id == Study.id)
        .where(
            StudyRater.account_id == rater_id,
            StudyRater.active.is_(True),
            Study.status != "draft",
        )
        .order_by(Study.id)
    )


def rater_studies(store: Store, rater_id: int) -> list[RaterStudy]:
    """The started studies a rater is an active member of, with their own progress."""
    with store.session() as session:
        studies = session.scalars(member_studies(rater_id))
        out = []
        for study in studies:
            done, total = _counts(session, rater_id, study.id)
            benchmark_id = ((study.config or {}).get("benchmark") or {}).get("id")
            synthetic = bool(
                benchmark_id
                and session.scalar(select(Benchmark.synthetic).where(Benchmark.id == benchmark_id))
            )
            out.append(
                RaterStudy(
                    study.id, study.name, study.status, done, total, study.guidelines, synthetic
                )
            )
        return out


def flagged_by_holder(assignment: Any = Assignment) -> ColumnElement[bool]:
    """The task's rater flagged it as one they cannot assess (studies.readers.flags): it is
    out of their queue and their count. A task handed on after a flag is not flagged for
    its new rater."""
    return (
        exists()
        .where(CaseFlag.assignment_id == assignment.id, CaseFlag.rater_id == assignment.rater_id)
        .correlate(assignment)
    )


def _counts(session: Session, rater_id: int, study_id: int) -> tuple[int, int]:
    # Done: judged, or (a task of an annotation study) annotated.
    judged = or_(
        exists().where(Judgment.assignment_id == Assignment.id),
        exists().where(Annotation.assignment_id == Assignment.id),
    )
    total, done = session.execute(
        select(func.count(), func.count().filter(judged)).where(
            Assignment.study_id == study_id,
            Assignment.rater_id == rater_id,
            ~flagged_by_holder(),
        )
    ).one()
    return int(done or 0), int(total or 0)


# Built once: aliased() copies every column, which is measurable on a hot path.
_GENERATION_A = aliased(Generation)
_GENERATION_B = aliased(Generation)


def _build_task(
    token: str,
    order_index: int,
    a_on_left: bool,
    content: tuple[Any, ...],
    study_name: str,
    guidelines: str,
    form: dict[str, Any],
    done: int,
    total: int,
) -> RatingTask:
    modality, case_media, question, root, text_a, text_b = content
    media = []
    for entry in case_media or []:
        try:
            path = resolve_media(root, entry["path"])
        except (MediaPathError, KeyError):
            continue
        media.append(TaskMedia(entry.get("kind", modality), path))
    return RatingTask(
        token=token,
        study_name=study_name,
        position=order_index + 1,
        done=done,
        total=total,
        modality=modality,
        media=media,
        question=question,
        left_text=text_a if a_on_left else text_b,
        right_text=text_b if a_on_left else text_a,
        guidelines=guidelines,
        form=form,
    )


_CONTENT_COLUMNS = (
    Case.modality.label("modality"),
    Case.media.label("media"),
    Case.question.label("question"),
    Benchmark.root.label("root"),
    _GENERATION_A.text.label("text_a"),
    _GENERATION_B.text.label("text_b"),
)


def _with_content(query):  # noqa: ANN001, ANN202
    return (
        query.join(StudyItem, StudyItem.id == Assignment.item_id)
        .join(Case, Case.id == StudyItem.case_id)
        .join(Benchmark, Benchmark.id == Case.benchmark_id)
        .join(_GENERATION_A, _GENERATION_A.id == StudyItem.generation_a_id)
        .join(_GENERATION_B, _GENERATION_B.id == StudyItem.generation_b_id)
    )


def _task(session: Session, assignment: Assignment, study: Study, done: int, total: int):  # noqa: ANN202
    # One round trip for everything the page shows.
    content = session.execute(
        _with_content(select(*_CONTENT_COLUMNS).select_from(Assignment)).where(
            Assignment.id == assignment.id
        )
    ).one()
    return _build_task(
        assignment.token,
        assignment.order_index,
        assignment.a_on_left,
        tuple(content),
        study.name,
        study.guidelines,
        study_form(study.config),
        done,
        total,
    )


# --- the rating step: Core statements built once, bound per call ----------------------
# next_assignment: (1) study + enrolment + session, (2) the next unjudged assignment with
# the page content and the rater's counts. submit_judgment: (1) assignment + study +
# session (PostgreSQL: locking the assignment row, share-locking the study row), (2) the
# judgments of that assignment or with that submission key, (3) insert the judgment,
# (4) insert the audit event. SQLite adds BEGIN IMMEDIATE: the write lock is taken first.

_OWN = aliased(Assignment)
_OWN_TOTAL = (
    select(func.count())
    .select_from(_OWN)
    .where(
        _OWN.study_id == bindparam("study_id"),
        _OWN.rater_id == bindparam("rater_id"),
        ~flagged_by_holder(_OWN),
    )
    .scalar_subquery()
)
_OWN_DONE = (
    select(func.count())
    .select_from(_OWN)
    .where(
        _OWN.study_id == bindparam("study_id"),
        _OWN.rater_id == bindparam("rater_id"),
        exists().where(Judgment.assignment_id == _OWN.id),
    )
    .scalar_subquery()
)
# The (study_id, rater_id, order_index) index walks the rater's order; the first one
# without a judgment is the next task. Found first, then joined to its content once.
_NEXT_ID = (
    select(Assignment.id)
    .where(
        Assignment.study_id == bindparam("study_id"),
        Assignment.rater_id == bindparam("rater_id"),
        # A rater who set tasks aside (media that cannot be shown) goes on after them.
        Assignment.order_index >= bindparam("from_index"),
        ~exists().where(Judgment.assignment_id == Assignment.id),
        # A case the rater flagged as one they cannot assess has left their queue.
        ~flagged_by_holder(),
        # A duplicate under a washout in days waits until its time (null: at once).
        or_(Assignment.available_at.is_(None), Assignment.available_at <= bindparam("now")),
    )
    .order_by(Assignment.order_index)
    .limit(1)
    .scalar_subquery()
)
_STEP_NEXT = (
    _with_content(
        select(
            Assignment.token,
            Assignment.order_index,
            Assignment.a_on_left,
            *_CONTENT_COLUMNS,
            _OWN_DONE.label("done"),
            _OWN_TOTAL.label("total"),
        ).select_from(Assignment)
    )
    .where(Assignment.id == _NEXT_ID)
    .subquery("next_task")
)
# One statement: the study, the rater's enrolment, the session and the next task (NULL
# columns when every task is judged). It reads one snapshot, so it needs no transaction.
_STEP = (
    select(
        Study.name,
        Study.status,
        Study.guidelines,
        Study.config[("design", "form")].label("form"),
        Study.config[("design", "calibration_threshold")].label("calibration_threshold"),
        Study.config[("design", "kind")].label("study_kind"),
        StudyRater.active.label("panel_active"),
        SESSION_OWNER,
        SESSION_EXPIRES,
        *_STEP_NEXT.c,
    )
    .select_from(
        join_session(
            Study.__table__.join(
                StudyRater.__table__,
                and_(
                    StudyRater.study_id == Study.id,
                    StudyRater.account_id == bindparam("rater_id"),
                ),
            ),
            bindparam("token_hash"),
        ).outerjoin(_STEP_NEXT, true())
    )
    .where(Study.id == bindparam("study_id"))
)

_SUBMIT_CONTEXT = (
    select(
        Assignment.id,
        Assignment.rater_id,
        Assignment.study_id,
        Assignment.a_on_left,
        Assignment.item_id,
        Assignment.is_duplicate,
        Study.name,
        Study.status,
        Study.config[("design", "form")].label("form"),
        Study.config[("design", "washout_days")].label("washout_days"),
        Study.config[("design", "calibration_threshold")].label("calibration_threshold"),
        Study.config[("design", "kind")].label("study_kind"),
        StudyItem.kind.label("item_kind"),
        StudyItem.gold_answer,
        StudyRater.active.label("panel_active"),
        flagged_by_holder().label("flagged"),
        SESSION_OWNER,
        SESSION_EXPIRES,
    )
    .select_from(
        join_session(
            Assignment.__table__.join(Study.__table__, Study.id == Assignment.study_id)
            .join(StudyItem.__table__, StudyItem.id == Assignment.item_id)
            .outerjoin(
                StudyRater.__table__,
                and_(
                    StudyRater.study_id == Assignment.study_id,
                    StudyRater.account_id == Assignment.rater_id,
                ),
            ),
            bindparam("token_hash"),
        )
    )
    .where(Assignment.token == bindparam("token"))
)
# Two tabs submitting one assignment queue on its row; a pause or close waits for
# in-flight submissions, and submissions after it see the new status.
_SUBMIT_CONTEXT_LOCKED = _SUBMIT_CONTEXT.with_for_update(of=Assignment.__table__).suffix_with(
    "FOR SHARE OF studies"
)
_SUBMIT_JUDGMENTS = select(
    Judgment.id,
    Judgment.assignment_id,
    Judgment.rater_id,
    Judgment.submission_key,
    Judgment.winner,
    Judgment.supersedes_id,
    Judgment.preference_shown,
    Judgment.likert,
    Judgment.comment,
    Judgment.submitted_at,
    is_current().label("current"),
).where(
    or_(
        Judgment.assignment_id == bindparam("assignment_id"),
        Judgment.submission_key == bindparam("submission_key"),
    )
)
_INSERT_JUDGMENT = insert(Judgment.__table__)
_INSERT_AUDIT = insert(AuditEvent.__table__)
_JUDGMENT_FIELDS = (
    "assignment_id",
    "rater_id",
    "submission_key",
    "preference_shown",
    "winner",
    "likert",
    "comment",
    "time_on_task_s",
    "supersedes_id",
    "submitted_at",
)
_NEW_JUDGMENT = (
    insert(Judgment.__table__)
    .values(
        {name: bindparam(name, type_=Judgment.__table__.c[name].type) for name in _JUDGMENT_FIELDS}
    )
    .returning(Judgment.id)
    .cte("new_judgment")
)
_AUDIT = AuditEvent.__table__
# PostgreSQL: the judgment and its audit event in one statement (one round trip); SQLite
# has no INSERT inside WITH and runs the two inserts (in-process, no round trips).
_INSERT_JUDGMENT_AUDITED = (
    insert(_AUDIT)
    .from_select(
        ["at", "actor_id", "action", "entity", "entity_id", "detail"],
        select(
            bindparam("at", type_=_AUDIT.c.at.type),
            bindparam("actor_id", type_=_AUDIT.c.actor_id.type),
            bindparam("action", type_=_AUDIT.c.action.type),
            bindparam("entity", type_=_AUDIT.c.entity.type),
            cast(_NEW_JUDGMENT.c.id, String),
            bindparam("detail", type_=_AUDIT.c.detail.type),
        ).select_from(_NEW_JUDGMENT),
    )
    .add_cte(_NEW_JUDGMENT)
    .returning(_AUDIT.c.entity_id)
)
_BY_KEY = select(
    Judgment.id,
    Judgment.rater_id,
    Judgment.winner,
    Judgment.preference_shown,
    Judgment.likert,
    Judgment.comment,
    Judgment.submitted_at,
    Assignment.a_on_left,
).where(
    Judgment.submission_key == bindparam("submission_key"),
    Assignment.id == Judgment.assignment_id,
)


def refuse_session(rater_id: int, session_token: str | None, owner: int | None) -> None:
    """AccessDenied when a given session token is not a live session of this rater."""
    if session_token is None:
        return
    if owner is None:
        raise AccessDenied("Your session has expired. Log in again; nothing was saved.")
    if owner != rater_id:
        raise AccessDenied("This session belongs to another account; nothing was saved.")


def _session_hash(session_token: str | None) -> str | None:
    return token_hash(session_token) if session_token is not None else None


def next_assignment(
    store: Store,
    rater_id: int,
    study: int,
    *,
    session_token: str | None = None,
    after_position: int = 0,
) -> RatingTask | None:
    """The rater's first unjudged assignment in their own order (None when all are done).

    Resuming is therefore exact: whatever was submitted last, the rater lands on the next
    one. RatingError with a readable message when the study is paused or closed.
    `after_position`: only tasks after that position (1-based), to go on past tasks set
    aside for now.
    """
    params = {
        "study_id": study,
        "rater_id": rater_id,
        "token_hash": _session_hash(session_token),
        "from_index": max(0, after_position),
        "now": now_utc(),
    }
    with store.engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            # One statement, one snapshot: no BEGIN and COMMIT round trips. (SQLite's driver
            # starts no transaction for a read anyway.)
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        row = connection.execute(_STEP, params).first()
        if row is None:
            # Not enrolled (or no such study); an expired session is still said first.
            owner = session_account_id(connection, session_token)
            refuse_session(rater_id, session_token, owner)
            raise AccessDenied("You are not a rater in this study.")
    owner = live_session_owner(row.session_account_id, row.session_expires_at)
    refuse_session(rater_id, session_token, owner)
    message = status_text(row.name, row.status)
    if message:
        raise RatingError(message)
    if not row.panel_active:
        raise RatingError(left_panel_text(row.name))
    _refuse_annotation_study(row)
    if row.token is None:
        threshold = _washout_days(row.calibration_threshold)
        if threshold > 0:
            with store.engine.connect() as connection:
                waiting = waiting_message(connection, rater_id, study, threshold)
            if waiting:
                raise RatingError(waiting)
        return None
    return _build_task(
        row.token,
        row.order_index,
        row.a_on_left,
        (row.modality, row.media, row.question, row.root, row.text_a, row.text_b),
        row.name,
        row.guidelines,
        row.form or default_form(),
        int(row.done or 0),
        int(row.total or 0),
    )


def get_task(
    store: Store, rater_id: int, token: str, *, session_token: str | None = None
) -> RatingTask:
    """One assignment by token, only for the rater it belongs to (AccessDenied otherwise)."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        if assignment is None or assignment.rater_id != rater_id:
            raise AccessDenied("This task is not one of yours.")
        row = enrolled_study(session, rater_id, assignment.study_id)
        done, total = _counts(session, rater_id, row.id)
        return _task(session, assignment, row, done, total)


def _current_judgment(session: Session, assignment_id: int) -> Judgment | None:
    return session.scalar(
        select(Judgment)
        .where(Judgment.assignment_id == assignment_id, is_current())
        .order_by(Judgment.id.desc())
        .limit(1)
    )


def _winner(preference_shown: str, a_on_left: bool) -> str:
    if preference_shown == "left":
        return "a" if a_on_left else "b"
    if preference_shown == "right":
        return "b" if a_on_left else "a"
    return preference_shown


def submit_judgment(
    store: Store,
    rater_id: int,
    assignment_token: str,
    submission_key: str,
    preference_shown: str,
    likert: dict[str, Any] | None,
    comment: str = "",
    time_on_task_s: float | None = None,
    *,
    session_token: str | None = None,
    supersede: bool = False,
) -> SubmitResult:
    """Record a judgment in ONE transaction (RatingError and nothing written otherwise).

    `preference_shown` is what the rater clicked (left = Report A, right = Report B, tie,
    both_bad); `likert` is `{"left": {criterion: 1-5}, "right": {...}}`. Both are stored
    mapped to the systems (Judgment.winner in a/b/tie/both_bad, likert as {"a", "b"}).
    Repeating a submission key returns the first judgment; a second judgment of an already
    judged assignment is refused unless `supersede` (a correction, a new row that supersedes).
    """
    if preference_shown not in PREFERENCES:
        raise RatingError(f"Choose a preference: one of {', '.join(PREFERENCES)}.")
    comment = (comment or "").strip()
    check_submission_key(submission_key)
    if time_on_task_s is not None and (time_on_task_s < 0 or time_on_task_s != time_on_task_s):
        raise RatingError("Time on task must be a non-negative number of seconds.")
    # A second try only when the database refused a judgment that another writer (past this
    # process's locks) got in first: the retry reads it and answers as for any answered task.
    for attempt in (1, 2):
        try:
            with _write_transaction(store) as connection:
                return _submit(
                    connection,
                    rater_id,
                    assignment_token,
                    submission_key,
                    preference_shown,
                    likert,
                    comment,
                    time_on_task_s,
                    session_token,
                    supersede,
                )
        except IntegrityError:
            # A concurrent twin with the same key won the race: return what it wrote.
            try:
                with store.engine.connect() as connection:
                    repeat = connection.execute(_BY_KEY, {"submission_key": submission_key}).first()
            except OperationalError as exc:
                raise DatabaseBusy() from exc
            if repeat is None and attempt == 1:
                continue
            if repeat is None or repeat.rater_id != rater_id:
                raise
            stored = _stored_answer(repeat, repeat.a_on_left)
            submitted = StoredAnswer(preference_shown, _screen_likert(likert), comment)
            return SubmitResult(
                repeat.id, False, repeat.winner, not stored.same_answer(submitted), stored
            )
        except OperationalError as exc:
            # SQLite's lock timeout, a PostgreSQL lock timeout or a lost connection: the
            # transaction was rolled back, so nothing is half-written and a retry is safe.
            raise DatabaseBusy() from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _screen_likert(likert: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """Submitted ratings as stored on screen sides, for comparing with a stored answer."""
    likert = likert or {}
    return {
        side: {k: v for k, v in (likert.get(side) or {}).items() if v is not None}
        for side in ("left", "right")
    }


def _stored_answer(row: Any, a_on_left: bool) -> StoredAnswer:
    """A judgment row in its rater's screen terms."""
    a_side, b_side = ("left", "right") if a_on_left else ("right", "left")
    likert = row.likert or {}
    return StoredAnswer(
        preference_shown=row.preference_shown,
        likert={a_side: dict(likert.get("a") or {}), b_side: dict(likert.get("b") or {})},
        comment=row.comment or "",
        submitted_at=aware(row.submitted_at),
    )


def task_for_write(
    connection: Connection, rater_id: int, assignment_token: str, session_token: str | None
) -> Any:
    """The task behind a token, for a write by its rater (locked on PostgreSQL: two tabs
    queue on its row, a pause or close waits): AccessDenied for an expired session, an
    unknown or changed link, or another rater's task. Submits and flags both start here."""
    context = _SUBMIT_CONTEXT if connection.dialect.name == "sqlite" else _SUBMIT_CONTEXT_LOCKED
    row = connection.execute(
        context, {"token": assignment_token, "token_hash": _session_hash(session_token)}
    ).first()
    if row is None:
        refuse_session(rater_id, session_token, session_account_id(connection, session_token))
        raise AccessDenied(
            "This task link is not valid (changed, handed to another rater, or unknown); "
            "nothing was saved. Reload for your next task."
        )
    owner = live_session_owner(row.session_account_id, row.session_expires_at)
    refuse_session(rater_id, session_token, owner)
    if row.rater_id != rater_id:
        raise AccessDenied("This task is not one of yours; nothing was saved.")
    return row


def _refuse_annotation_study(row: Any, then: str = "") -> None:
    """An annotation study's cases are annotated on their own page, never judged as pairs."""
    if row.study_kind == ANNOTATION_KIND:
        raise RatingError(
            f"The study '{row.name}' is an annotation study: open it on the 'Annotate cases' "
            f"page.{then}"
        )


def refuse_closed_task(row: Any) -> None:
    """RatingError when the task's study is not running or its rater left the panel."""
    message = status_text(row.name, row.status)
    if message:
        raise RatingError(message + " Nothing was saved.")
    if row.panel_active is False:
        raise RatingError(left_panel_text(row.name) + " Nothing was saved.")


def _submit(
    connection: Connection,
    rater_id: int,
    assignment_token: str,
    submission_key: str,
    preference_shown: str,
    likert: dict[str, Any] | None,
    comment: str,
    time_on_task_s: float | None,
    session_token: str | None,
    supersede: bool,
) -> SubmitResult:
    row = task_for_write(connection, rater_id, assignment_token, session_token)
    # Read after the lock: the assignment's judgments and any earlier use of this key.
    assignment_id = row.id
    rows = connection.execute(
        _SUBMIT_JUDGMENTS, {"assignment_id": assignment_id, "submission_key": submission_key}
    ).all()
    repeat = next((j for j in rows if j.submission_key == submission_key), None)
    if repeat is not None:
        if repeat.assignment_id != assignment_id or repeat.rater_id != rater_id:
            raise RatingError("This submission key was used for another task; reload.")
        stored = _stored_answer(repeat, row.a_on_left)
        submitted = StoredAnswer(preference_shown, _screen_likert(likert), comment)
        conflict = not stored.same_answer(submitted)
        return SubmitResult(repeat.id, False, repeat.winner, conflict, stored, _feedback(row))
    refuse_closed_task(row)
    _refuse_annotation_study(row, " Nothing was saved.")
    if row.flagged:
        raise RatingError(
            "You flagged this case as one you cannot assess, so it has left your list; "
            "nothing was saved."
        )
    form = row.form or default_form()
    try:
        shown = check_likert(form, likert)
    except FormError as exc:
        raise RatingError(str(exc)) from exc
    if preference_shown in form.get("comment_required_for", ["both_bad"]) and not comment:
        raise RatingError(f"'{PREFERENCES[preference_shown]}' needs a comment saying why.")
    own = [j for j in rows if j.assignment_id == assignment_id and j.current]
    current = max(own, key=lambda j: j.id, default=None)
    if current is None and supersede:
        raise RatingError("There is no earlier judgment of this task to correct.")
    if supersede and row.item_kind == "calibration":
        # The reference answer was shown after the first submit: a correction would not
        # measure the rater any more.
        raise RatingError("A training case's answer stays as given; nothing was saved.")
    if current is not None:
        stored = _stored_answer(current, row.a_on_left)
        same = stored.same_answer(StoredAnswer(preference_shown, shown, comment))
        # Already answered: a plain submit writes nothing and says whether the answer that
        # stands differs; a correction equal to the answer that stands (a second click of
        # "Save correction", whatever its key) writes nothing either.
        if not supersede or same:
            return SubmitResult(current.id, False, current.winner, not same, stored, _feedback(row))
    a_on_left = row.a_on_left
    a_side, b_side = ("left", "right") if a_on_left else ("right", "left")
    winner = _winner(preference_shown, a_on_left)
    supersedes_id = current.id if current is not None else None
    judgment = {
        "assignment_id": assignment_id,
        "rater_id": rater_id,
        "submission_key": submission_key,
        "preference_shown": preference_shown,
        "winner": winner,
        "likert": {"a": shown[a_side], "b": shown[b_side]},
        "comment": comment,
        "time_on_task_s": time_on_task_s,
        "supersedes_id": supersedes_id,
        "submitted_at": now_utc(),
    }
    audit = {
        "actor_id": rater_id,
        "action": "judgment.correct" if supersede else "judgment.submit",
        "entity": "judgment",
        "detail": {"study_id": row.study_id, "supersedes_id": supersedes_id},
    }
    if connection.dialect.name == "postgresql":
        audit["at"] = now_utc()
        entity_id = connection.execute(_INSERT_JUDGMENT_AUDITED, judgment | audit).scalar_one()
        judgment_id = int(entity_id)
    else:
        judgment_id = connection.execute(_INSERT_JUDGMENT, judgment).inserted_primary_key[0]
        connection.execute(_INSERT_AUDIT, audit | {"entity_id": str(judgment_id)})
    washout = _washout_days(row.washout_days)
    if washout and not row.is_duplicate and supersedes_id is None:
        # The first judgment of a case starts its duplicate's washout.
        connection.execute(
            _START_WASHOUT,
            {
                "washout_rater": rater_id,
                "washout_item": row.item_id,
                "waiting": WAITS_FOR_ORIGINAL,
                "due_at": judgment["submitted_at"] + timedelta(days=washout),
            },
        )
    threshold = _washout_days(row.calibration_threshold)
    if row.item_kind == "calibration" and threshold > 0:
        after_calibration_judgment(connection, rater_id, row.study_id, threshold)
    return SubmitResult(judgment_id, True, winner, feedback=_feedback(row))


def _feedback(row: Any) -> str | None:
    if row.item_kind != "calibration":
        return None
    return feedback_text(row.gold_answer, row.a_on_left)


_START_WASHOUT = (
    update(Assignment.__table__)
    .where(
        Assignment.rater_id == bindparam("washout_rater"),
        Assignment.item_id == bindparam("washout_item"),
        Assignment.is_duplicate.is_(True),
        Assignment.available_at == bindparam("waiting"),
    )
    .values(available_at=bindparam("due_at"))
)


def _washout_days(value: Any) -> float:
    """A number from the study's JSON configuration (washout days, calibration threshold;
    0 when absent)."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def next_available_at(store: Store, rater_id: int, study: int) -> datetime | None:
    """When the rater's next waiting duplicate becomes due (None: nothing waits on a date),
    so a page can say 'come back on ...' rather than 'all done'."""
    with store.session() as session:
        moment = session.scalar(
            select(func.min(Assignment.available_at)).where(
                Assignment.study_id == study,
                Assignment.rater_id == rater_id,
                Assignment.available_at.is_not(None),
                Assignment.available_at != WAITS_FOR_ORIGINAL,
                ~exists().where(Judgment.assignment_id == Assignment.id),
            )
        )
        return aware(moment)


def correct_judgment(
    store: Store,
    rater_id: int,
    assignment_token: str,
    submission_key: str,
    preference_shown: str,
    likert: dict[str, Any] | None,
    comment: str = "",
    time_on_task_s: float | None = None,
    *,
    session_token: str | None = None,
) -> SubmitResult:
    """A correction: a new judgment row that supersedes the current one (never an update)."""
    return submit_judgment(
        store,
        rater_id,
        assignment_token,
        submission_key,
        preference_shown,
        likert,
        comment,
        time_on_task_s,
        session_token=session_token,
        supersede=True,
    )


def _last_judged_assignment(session: Session, rater_id: int, study_id: int) -> Assignment | None:
    return session.scalar(
        select(Assignment)
        .join(Judgment, Judgment.assignment_id == Assignment.id)
        .where(Assignment.study_id == study_id, Assignment.rater_id == rater_id)
        .order_by(Judgment.id.desc())
        .limit(1)
    )


def last_judged_task(
    store: Store, rater_id: int, study: int, *, session_token: str | None = None
) -> RatingTask | None:
    """The rater's most recently judged task (to correct it), or None."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        row = enrolled_study(session, rater_id, study)
        assignment = _last_judged_assignment(session, rater_id, row.id)
        if assignment is None:
            return None
        done, total = _counts(session, rater_id, row.id)
        return _task(session, assignment, row, done, total)


@dataclass(frozen=True)
class PreviousAnswer:
    """The rater's last judgment in screen terms (left = Report A), to correct it."""

    task: RatingTask
    preference_shown: str
    likert: dict[str, dict[str, int]]
    comment: str


def previous_answer(
    store: Store, rater_id: int, study: int, *, session_token: str | None = None
) -> PreviousAnswer | None:
    """The current judgment of the rater's most recently judged task, or None."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        row = enrolled_study(session, rater_id, study)
        assignment = _last_judged_assignment(session, rater_id, row.id)
        if assignment is None:
            return None
        current = _current_judgment(session, assignment.id)
        done, total = _counts(session, rater_id, row.id)
        a_side, b_side = ("left", "right") if assignment.a_on_left else ("right", "left")
        likert = {a_side: current.likert.get("a", {}), b_side: current.likert.get("b", {})}
        return PreviousAnswer(
            task=_task(session, assignment, row, done, total),
            preference_shown=current.preference_shown,
            likert=likert,
            comment=current.comment,
        )


@dataclass(frozen=True)
class AnsweredTask:
    """One of the rater's answered tasks as they saw it (the same blinding as RatingTask)
    with the answer that stands, in screen terms (left = Report A), to correct it."""

    position: int
    task: RatingTask
    preference_shown: str
    likert: dict[str, dict[str, int]]
    comment: str
    submitted_at: datetime | None
    # A training case's answer stays as given (its reference answer was shown after it).
    correctable: bool = True


def answered_tasks(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> list[AnsweredTask]:
    """Every task the rater answered in the study, in their order, with its current answer:
    any of them can be corrected with `correct_judgment` (a new judgment that supersedes)."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        study = enrolled_study(session, rater_id, study_id)
        form = study_form(study.config)
        done, total = _counts(session, rater_id, study.id)
        rows = session.execute(
            _with_content(
                select(
                    Assignment.token,
                    Assignment.order_index,
                    Assignment.a_on_left,
                    *_CONTENT_COLUMNS,
                    StudyItem.kind.label("item_kind"),
                    Judgment.preference_shown,
                    Judgment.likert,
                    Judgment.comment,
                    Judgment.submitted_at,
                ).select_from(Assignment)
            )
            .join(Judgment, Judgment.assignment_id == Assignment.id)
            .where(
                Assignment.study_id == study.id,
                Assignment.rater_id == rater_id,
                is_current(),
            )
            .order_by(Assignment.order_index)
        ).all()
        out = []
        for row in rows:
            task = _build_task(
                row.token,
                row.order_index,
                row.a_on_left,
                (row.modality, row.media, row.question, row.root, row.text_a, row.text_b),
                study.name,
                study.guidelines,
                form,
                done,
                total,
            )
            stored = _stored_answer(row, row.a_on_left)
            out.append(
                AnsweredTask(
                    position=task.position,
                    task=task,
                    preference_shown=stored.preference_shown,
                    likert=stored.likert,
                    comment=stored.comment,
                    submitted_at=stored.submitted_at,
                    correctable=row.item_kind != "calibration",
                )
            )
        return out


@dataclass(frozen=True)
class CalibrationStatus:
    """A rater's training (calibration) cases: answered, matching the reference, and
    whether the main study is open to them (passed, or let in by the admin)."""

    judged: int
    total: int
    correct: int
    threshold: float  # 0: no entry threshold
    passed: bool

    def text(self) -> str:
        done = f"Training: {self.judged} of {self.total} cases answered"
        if self.judged:
            done += f", {self.correct} matched the reference"
        if self.passed:
            return done + "; the main cases are open."
        if self.judged < self.total:
            return done + "."
        return done + f"; the study asks for {self.threshold:.0%} before the main cases."


def calibration_status(store: Store, rater_id: int, study_id: int) -> CalibrationStatus | None:
    """The rater's calibration progress in the study; None when it has no training cases.
    Two small queries (cheap after each submit)."""
    with store.session() as session:
        score = calibration_score(session, rater_id, study_id)
        if not score.total:
            return None
        threshold = _washout_days(
            session.scalar(
                select(Study.config[("design", "calibration_threshold")]).where(
                    Study.id == study_id
                )
            )
        )
        gated = session.scalar(
            select(Assignment.id)
            .where(
                Assignment.study_id == study_id,
                Assignment.rater_id == rater_id,
                Assignment.available_at == WAITS_FOR_CALIBRATION,
                ~exists().where(Judgment.assignment_id == Assignment.id),
            )
            .limit(1)
        )
        passed = score.judged == score.total and gated is None
        return CalibrationStatus(score.judged, score.total, score.correct, threshold, passed)


# --- guidelines ---------------------------------------------------------------------

GUIDELINES_ACTION = "guidelines.acknowledge"
# Once acknowledged, always acknowledged: a True answer is kept per store (engine), so the
# page's check per case costs nothing after the first.
_ACKNOWLEDGED: weakref.WeakKeyDictionary[Any, set[tuple[int, int]]] = weakref.WeakKeyDictionary()


def _acknowledged(session: Session, rater_id: int, study_id: int) -> bool:
    return (
        session.scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.actor_id == rater_id,
                AuditEvent.action == GUIDELINES_ACTION,
                AuditEvent.entity == "study",
                AuditEvent.entity_id == str(study_id),
            )
            .limit(1)
        )
        is not None
    )


def acknowledge_guidelines(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> None:
    """Record (once, an audit event) that the rater read the study's guidelines."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        study = enrolled_study(session, rater_id, study_id)
        if not _acknowledged(session, rater_id, study.id):
            digest = hashlib.sha256((study.guidelines or "").encode("utf-8")).hexdigest()
            detail = {"guidelines_sha256": digest}
            record(session, rater_id, GUIDELINES_ACTION, "study", study.id, detail)
    _ACKNOWLEDGED.setdefault(store.engine, set()).add((rater_id, study_id))


def guidelines_acknowledged(store: Store, rater_id: int, study_id: int) -> bool:
    """Whether the rater has acknowledged the study's guidelines (shown first otherwise)."""
    known = _ACKNOWLEDGED.setdefault(store.engine, set())
    if (rater_id, study_id) in known:
        return True
    with store.session() as session:
        if not _acknowledged(session, rater_id, study_id):
            return False
    known.add((rater_id, study_id))
    return True


# --- exports ------------------------------------------------------------------------

# The export's columns: these, with one `likert_a_<key>` / `likert_b_<key>` pair per
# criterion of the study's form after `winner_system` (see `export_fields`).
_FIELDS_BEFORE_LIKERT = (
    "study",
    "judgment_id",
    "rater",
    "case",
    "item",
    "item_kind",
    "adjudicates_item",
    "gold_answer",
    "is_duplicate",
    "system_a",
    "system_b",
    "left",
    "right",
    "a_on_left",
    "preference_shown",
    "winner",
    "winner_system",
)
_FIELDS_AFTER_LIKERT = ("comment", *ANSWER_FIELDS, *PROVENANCE_FIELDS)


def export_fields(form: dict[str, Any] | None = None) -> list[str]:
    """The columns of a study's judgment export, for its rating form (default form: None)."""
    keys = [c.key for c in criteria(form or default_form())]
    return [*_FIELDS_BEFORE_LIKERT, *likert_columns(keys), *_FIELDS_AFTER_LIKERT]


def _study_row(session: Session, study: int | str) -> Study:
    row = session.scalar(
        select(Study).where(Study.id == study if isinstance(study, int) else Study.name == study)
    )
    if row is None:
        raise StudyError(f"no study {study!r}")
    return row


def judgment_rows(store: Store, study: int | str) -> list[dict[str, Any]]:
    """Every judgment (corrections and superseded ones included, flagged by `superseded`),
    one row each, with rater, case, both systems, position, timestamps and one score column
    per side and criterion of the study's form."""
    with store.session() as session:
        row = _study_row(session, study)
        keys = [c.key for c in criteria(study_form(row.config))]
        result = session.execute(judgment_query(row.id, current_only=False)).all()
        provenance = study_provenance(
            session, row, f"{EXPORT_VERSION}; all judgments incl. corrections"
        )
        out = []
        for found in result:
            judgment, assignment, item = found.Judgment, found.Assignment, found.StudyItem
            name_a, name_b = found.system_a, found.system_b
            winner_system = {"a": name_a, "b": name_b}.get(judgment.winner, "")
            record_ = {
                "study": row.name,
                "judgment_id": judgment.id,
                "rater": found.rater,
                "case": found.case_key,
                "item": item.id,
                "item_kind": item.kind,
                "adjudicates_item": item.adjudicates_id or "",
                "gold_answer": item.gold_answer or "",
                "is_duplicate": assignment.is_duplicate,
                "system_a": name_a,
                "system_b": name_b,
                "left": name_a if assignment.a_on_left else name_b,
                "right": name_b if assignment.a_on_left else name_a,
                "a_on_left": assignment.a_on_left,
                "preference_shown": judgment.preference_shown,
                "winner": judgment.winner,
                "winner_system": winner_system,
            }
            for criterion in keys:
                for side in ("a", "b"):
                    value = (judgment.likert.get(side) or {}).get(criterion)
                    record_[f"likert_{side}_{criterion}"] = value
            record_["comment"] = judgment.comment
            record_.update(
                answer_columns(
                    judgment,
                    assignment,
                    superseded=not found.current,
                    synthetic=case_label([found]),
                )
            )
            record_.update(provenance)
            out.append(record_)
        return out


def export_judgments(store: Store, study: int | str, fmt: str = "csv") -> str:
    """The raw judgments of a study as CSV or JSONL text."""
    check_format(fmt)
    rows = judgment_rows(store, study)
    with store.session() as session:
        fields = export_fields(study_form(_study_row(session, study).config))
    return export_text(rows, fields, fmt)
