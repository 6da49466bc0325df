"""Rating: a rater's next task, submitting a judgment, corrections, and raw exports.

What a rater page receives (`RatingTask`) carries no system name, id, fingerprint, run or
generation id: only an opaque assignment token, the case media and the two report texts
as shown on screen. A judgment is written in one transaction; its unique submission key
makes a double submit (double click, two tabs, a retry) write nothing new.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from studies.accounts import aware, now_utc, session_account
from studies.audit import record
from studies.db import Store
from studies.media import MediaPathError, resolve_media
from studies.rating_form import PREFERENCES, FormError, check_likert, default_form
from studies.reader_study import StudyError, write_lock
from studies.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Judgment,
    Study,
    StudyItem,
    StudyRater,
    System,
)

EXPORT_VERSION = "reader-study-export/1"
NOTE = "Research software, not a medical device."


class RatingError(ValueError):
    """A submission or request that was refused; nothing was written. Safe to show."""


class AccessDenied(RatingError):
    """An expired session, a token that is not the rater's, a page the role may not open."""


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


@dataclass(frozen=True)
class SubmitResult:
    judgment_id: int
    created: bool  # False: an earlier identical submission (or judgment) stands
    winner: str


def _check_session(session: Session, rater_id: int, session_token: str | None) -> None:
    if session_token is None:
        return
    account = session_account(session, session_token)
    if account is None:
        raise AccessDenied("Your session has expired. Log in again; nothing was saved.")
    if account.id != rater_id:
        raise AccessDenied("This session belongs to another account; nothing was saved.")


def _enrolled_study(session: Session, rater_id: int, study_id: int) -> Study:
    study = session.scalar(
        select(Study)
        .join(StudyRater, StudyRater.study_id == Study.id)
        .where(Study.id == study_id, StudyRater.account_id == rater_id)
    )
    if study is None:
        raise AccessDenied("You are not a rater in this study.")
    return study


def _status_message(study: Study) -> str | None:
    if study.status == "paused":
        return f"The study '{study.name}' is paused by its admin; please come back later."
    if study.status == "closed":
        return f"The study '{study.name}' is closed; thank you for your judgments."
    if study.status == "draft":
        return f"The study '{study.name}' has not started yet."
    return None


def rater_studies(store: Store, rater_id: int) -> list[RaterStudy]:
    """The started studies a rater is enrolled in, with their own progress."""
    with store.session() as session:
        studies = session.scalars(
            select(Study)
            .join(StudyRater, StudyRater.study_id == Study.id)
            .where(StudyRater.account_id == rater_id, Study.status != "draft")
            .order_by(Study.id)
        )
        out = []
        for study in studies:
            done, total = _counts(session, rater_id, study.id)
            out.append(
                RaterStudy(study.id, study.name, study.status, done, total, study.guidelines)
            )
        return out


def _counts(session: Session, rater_id: int, study_id: int) -> tuple[int, int]:
    judged = exists().where(Judgment.assignment_id == Assignment.id)
    total, done = session.execute(
        select(func.count(), func.count().filter(judged)).where(
            Assignment.study_id == study_id, Assignment.rater_id == rater_id
        )
    ).one()
    return int(done or 0), int(total or 0)


def _task(session: Session, assignment: Assignment, study: Study, done: int, total: int):  # noqa: ANN202
    generation_a = aliased(Generation)
    generation_b = aliased(Generation)
    # One round trip for everything the page shows.
    row = session.execute(
        select(
            Case.modality,
            Case.media,
            Case.question,
            Benchmark.root,
            generation_a.text,
            generation_b.text,
        )
        .select_from(StudyItem)
        .join(Case, Case.id == StudyItem.case_id)
        .join(Benchmark, Benchmark.id == Case.benchmark_id)
        .join(generation_a, generation_a.id == StudyItem.generation_a_id)
        .join(generation_b, generation_b.id == StudyItem.generation_b_id)
        .where(StudyItem.id == assignment.item_id)
    ).one()
    modality, case_media, question, root, text_a, text_b = row
    media = []
    for entry in case_media or []:
        try:
            path = resolve_media(root, entry["path"])
        except (MediaPathError, KeyError):
            continue
        media.append(TaskMedia(entry.get("kind", modality), path))
    form = (study.config.get("design") or {}).get("form") or default_form()
    return RatingTask(
        token=assignment.token,
        study_name=study.name,
        position=assignment.order_index + 1,
        done=done,
        total=total,
        modality=modality,
        media=media,
        question=question,
        left_text=text_a if assignment.a_on_left else text_b,
        right_text=text_b if assignment.a_on_left else text_a,
        guidelines=study.guidelines,
        form=form,
    )


def next_assignment(
    store: Store, rater_id: int, study: int, *, session_token: str | None = None
) -> RatingTask | None:
    """The rater's first unjudged assignment in their own order (None when all are done).

    Resuming is therefore exact: whatever was submitted last, the rater lands on the next
    one. RatingError with a readable message when the study is paused or closed.
    """
    with store.session() as session:
        _check_session(session, rater_id, session_token)
        row = _enrolled_study(session, rater_id, study)
        message = _status_message(row)
        if message:
            raise RatingError(message)
        judged = exists().where(Judgment.assignment_id == Assignment.id)
        assignment = session.scalar(
            select(Assignment)
            .where(Assignment.study_id == row.id, Assignment.rater_id == rater_id, ~judged)
            .order_by(Assignment.order_index)
            .limit(1)
        )
        if assignment is None:
            return None
        done, total = _counts(session, rater_id, row.id)
        return _task(session, assignment, row, done, total)


def get_task(
    store: Store, rater_id: int, token: str, *, session_token: str | None = None
) -> RatingTask:
    """One assignment by token, only for the rater it belongs to (AccessDenied otherwise)."""
    with store.session() as session:
        _check_session(session, rater_id, session_token)
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        if assignment is None or assignment.rater_id != rater_id:
            raise AccessDenied("This task is not one of yours.")
        row = _enrolled_study(session, rater_id, assignment.study_id)
        done, total = _counts(session, rater_id, row.id)
        return _task(session, assignment, row, done, total)


def _current_judgment(session: Session, assignment_id: int) -> Judgment | None:
    newer = aliased(Judgment)
    return session.scalar(
        select(Judgment)
        .where(
            Judgment.assignment_id == assignment_id,
            ~exists().where(newer.supersedes_id == Judgment.id),
        )
        .order_by(Judgment.id.desc())
        .limit(1)
    )


def _winner(preference_shown: str, a_on_left: bool) -> str:
    if preference_shown == "left":
        return "a" if a_on_left else "b"
    if preference_shown == "right":
        return "b" if a_on_left else "a"
    return preference_shown


def _lock_for_submit(session: Session, assignment: Assignment) -> Study:
    """Serialise submissions of one assignment and re-read the study status.

    SQLite has one writer at a time: take its write lock first, so the reads that follow
    happen inside the write transaction. PostgreSQL: lock the assignment row, and share-lock
    the study row so that a pause or close waits for in-flight submissions (and submissions
    after it see the new status), while raters never wait for each other.
    """
    if session.get_bind().dialect.name == "sqlite":
        write_lock(session, assignment.study_id)
        study = session.get(Study, assignment.study_id)
        session.refresh(study)
        return study
    session.execute(select(Assignment.id).where(Assignment.id == assignment.id).with_for_update())
    return session.scalar(
        select(Study)
        .where(Study.id == assignment.study_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )


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
    if not submission_key or len(submission_key) > 100:
        raise RatingError("The submission key is missing or too long; reload the page.")
    if time_on_task_s is not None and (time_on_task_s < 0 or time_on_task_s != time_on_task_s):
        raise RatingError("Time on task must be a non-negative number of seconds.")
    try:
        with store.session() as session:
            _check_session(session, rater_id, session_token)
            assignment = session.scalar(
                select(Assignment).where(Assignment.token == assignment_token)
            )
            if assignment is None:
                raise AccessDenied("This task link is not valid (changed or unknown); reload.")
            if assignment.rater_id != rater_id:
                raise AccessDenied("This task is not one of yours; nothing was saved.")
            study = _lock_for_submit(session, assignment)
            repeat = session.scalar(
                select(Judgment).where(Judgment.submission_key == submission_key)
            )
            if repeat is not None:
                if repeat.assignment_id != assignment.id or repeat.rater_id != rater_id:
                    raise RatingError("This submission key was used for another task; reload.")
                return SubmitResult(repeat.id, False, repeat.winner)
            message = _status_message(study)
            if message:
                raise RatingError(message + " Nothing was saved.")
            form = (study.config.get("design") or {}).get("form") or default_form()
            try:
                shown = check_likert(form, likert)
            except FormError as exc:
                raise RatingError(str(exc)) from exc
            if preference_shown in form.get("comment_required_for", ["both_bad"]) and not comment:
                raise RatingError(f"'{PREFERENCES[preference_shown]}' needs a comment saying why.")
            current = _current_judgment(session, assignment.id)
            if current is not None and not supersede:
                return SubmitResult(current.id, False, current.winner)
            if current is None and supersede:
                raise RatingError("There is no earlier judgment of this task to correct.")
            a_side, b_side = ("left", "right") if assignment.a_on_left else ("right", "left")
            judgment = Judgment(
                assignment_id=assignment.id,
                rater_id=rater_id,
                submission_key=submission_key,
                preference_shown=preference_shown,
                winner=_winner(preference_shown, assignment.a_on_left),
                likert={"a": shown[a_side], "b": shown[b_side]},
                comment=comment,
                time_on_task_s=time_on_task_s,
                supersedes_id=current.id if current is not None else None,
                submitted_at=now_utc(),
            )
            session.add(judgment)
            session.flush()
            record(
                session,
                rater_id,
                "judgment.correct" if supersede else "judgment.submit",
                "judgment",
                judgment.id,
                {"study_id": study.id, "supersedes_id": judgment.supersedes_id},
            )
            return SubmitResult(judgment.id, True, judgment.winner)
    except IntegrityError:
        # A concurrent twin with the same key won the race: return what it wrote.
        with store.session() as session:
            repeat = session.scalar(
                select(Judgment).where(Judgment.submission_key == submission_key)
            )
            if repeat is None or repeat.rater_id != rater_id:
                raise
            return SubmitResult(repeat.id, False, repeat.winner)


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


def last_judged_task(
    store: Store, rater_id: int, study: int, *, session_token: str | None = None
) -> RatingTask | None:
    """The rater's most recently judged task (to correct it), or None."""
    with store.session() as session:
        _check_session(session, rater_id, session_token)
        row = _enrolled_study(session, rater_id, study)
        assignment = session.scalar(
            select(Assignment)
            .join(Judgment, Judgment.assignment_id == Assignment.id)
            .where(Assignment.study_id == row.id, Assignment.rater_id == rater_id)
            .order_by(Judgment.id.desc())
            .limit(1)
        )
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
        _check_session(session, rater_id, session_token)
        row = _enrolled_study(session, rater_id, study)
        assignment = session.scalar(
            select(Assignment)
            .join(Judgment, Judgment.assignment_id == Assignment.id)
            .where(Assignment.study_id == row.id, Assignment.rater_id == rater_id)
            .order_by(Judgment.id.desc())
            .limit(1)
        )
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


# --- exports ------------------------------------------------------------------------

EXPORT_FIELDS = (
    "study",
    "judgment_id",
    "rater",
    "case",
    "item",
    "item_kind",
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
    "likert_a_accuracy",
    "likert_b_accuracy",
    "likert_a_completeness",
    "likert_b_completeness",
    "likert_a_safety",
    "likert_b_safety",
    "comment",
    "time_on_task_s",
    "assigned_at",
    "submitted_at",
    "supersedes_id",
    "superseded",
    "study_config_hash",
    "study_seed",
    "exported_at",
    "export",
)


def judgment_rows(store: Store, study: int | str) -> list[dict[str, Any]]:
    """Every judgment (corrections and superseded ones included, flagged by `superseded`),
    one row each, with rater, case, both systems, position and timestamps."""
    system_a = aliased(System)
    system_b = aliased(System)
    with store.session() as session:
        row = session.scalar(
            select(Study).where(
                Study.id == study if isinstance(study, int) else Study.name == study
            )
        )
        if row is None:
            raise StudyError(f"no study {study!r}")
        superseded = set(
            session.scalars(
                select(Judgment.supersedes_id).where(Judgment.supersedes_id.is_not(None))
            )
        )
        result = session.execute(
            select(
                Judgment,
                Assignment,
                StudyItem,
                Account.username,
                Case.case_key,
                system_a.name,
                system_b.name,
            )
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .join(Account, Account.id == Judgment.rater_id)
            .join(Case, Case.id == StudyItem.case_id)
            .join(system_a, system_a.id == StudyItem.system_a_id)
            .join(system_b, system_b.id == StudyItem.system_b_id)
            .where(Assignment.study_id == row.id)
            .order_by(Judgment.id)
        ).all()
        exported_at = now_utc().isoformat()
        seed = (row.config.get("design") or {}).get("seed")
        out = []
        for judgment, assignment, item, rater, case_key, name_a, name_b in result:
            winner_system = {"a": name_a, "b": name_b}.get(judgment.winner, "")
            record_ = {
                "study": row.name,
                "judgment_id": judgment.id,
                "rater": rater,
                "case": case_key,
                "item": item.id,
                "item_kind": item.kind,
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
            for criterion in ("accuracy", "completeness", "safety"):
                for side in ("a", "b"):
                    value = (judgment.likert.get(side) or {}).get(criterion)
                    record_[f"likert_{side}_{criterion}"] = value
            record_.update(
                {
                    "comment": judgment.comment,
                    "time_on_task_s": judgment.time_on_task_s,
                    "assigned_at": _iso(assignment.created_at),
                    "submitted_at": _iso(judgment.submitted_at),
                    "supersedes_id": judgment.supersedes_id,
                    "superseded": judgment.id in superseded,
                    "study_config_hash": row.config_hash or "",
                    "study_seed": seed,
                    "exported_at": exported_at,
                    "export": f"{EXPORT_VERSION}; all judgments incl. corrections; {NOTE}",
                }
            )
            out.append(record_)
        return out


def _iso(moment: datetime | None) -> str:
    moment = aware(moment)
    return moment.isoformat() if moment else ""


def export_judgments(store: Store, study: int | str, fmt: str = "csv") -> str:
    """The raw judgments of a study as CSV or JSONL text."""
    rows = judgment_rows(store, study)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if fmt != "csv":
        raise StudyError(f"format {fmt!r}: use csv or jsonl")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_FIELDS))
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buffer.getvalue()
