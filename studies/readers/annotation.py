"""Expert annotation studies: clinicians write or correct each case's reference report and its
structured findings; the one home of the findings form and of annotation tasks and submits.

A study of kind `annotation` (StudyDesign.kind) names one system, the model whose report each
annotator corrects (source "corrected"; with `annotation_source="written"` its reports are
not shown and annotators write from scratch). Each case is one item of kind `annotation`,
given to `overlap` annotators (double annotation: 2). An annotation is an append-only row
(studies.store.schema.Annotation, migration 0007): a correction is a new row that supersedes
it. Findings are checked through the one normaliser of findings
(studies.benchmarks.findings.make_lesion / make_findings) and the form is generated from the
one vocabulary (metrics.clinical.vocab).

What the submitted annotations give (agreement, adjudication, expert references, extractor
validation, on-policy pairs, the export) is studies.readers.annotation_results.

Research software, not a medical device.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from metrics.clinical.extract import extract_findings
from metrics.clinical.vocab import (
    DYSPLASIA,
    HISTOLOGIES,
    JNET_CLASSES,
    KUDO_CLASSES,
    LOCATIONS,
    LST_CLASSES,
    NICE_CLASSES,
    PARIS_BASE,
    RESECTIONS,
)
from studies.benchmarks.findings import make_findings, make_lesion
from studies.readers.accounts import aware, now_utc, session_account_id
from studies.readers.adjudication import ADJUDICATION_KIND
from studies.readers.design import ANNOTATION_KIND, find_study, study_kind
from studies.readers.rating import (
    TaskMedia,
    check_session,
    enrolled_study,
    left_panel_text,
    member_studies,
    refuse_session,
    status_text,
)
from studies.readers.writes import (
    AccessDenied,
    DatabaseBusy,
    RatingError,
    check_submission_key,
    write_transaction,
)
from studies.store.audit import record
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media
from studies.store.schema import (
    Annotation,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Study,
    StudyItem,
    StudyRater,
)

SOURCES = ("written", "corrected", "adjudicated")

# --- the findings form ------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of the findings form; a page renders it from `kind` alone."""

    key: str
    label: str
    kind: str  # choice | multi | number | bool
    choices: tuple[str, ...] = ()
    per_lesion: bool = False
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    step: float | None = None  # a number input's step
    help: str = ""


@dataclass(frozen=True)
class FindingsForm:
    """The findings form generated from the findings schema: per-case fields, then the fields
    of each lesion. A choice may be left empty (None: not stated)."""

    fields: tuple[FormField, ...]

    @property
    def case_fields(self) -> tuple[FormField, ...]:
        return tuple(f for f in self.fields if not f.per_lesion)

    @property
    def lesion_fields(self) -> tuple[FormField, ...]:
        return tuple(f for f in self.fields if f.per_lesion)

    def field(self, key: str) -> FormField:
        return next(f for f in self.fields if f.key == key)


def findings_form() -> FindingsForm:
    """The form of an expert's structured findings, its choices read from the vocabulary."""
    lesion = [
        FormField(
            "size_mm", "Size (mm)", "number", per_lesion=True, minimum=0, maximum=200, step=0.5
        ),
        FormField("location", "Location", "choice", LOCATIONS, per_lesion=True),
        FormField(
            "paris",
            "Paris class",
            "choice",
            PARIS_BASE,
            per_lesion=True,
            help="A combination such as 0-IIa+IIc is accepted too.",
        ),
        FormField("lst", "LST type", "choice", LST_CLASSES, per_lesion=True),
        FormField("nice", "NICE class", "choice", NICE_CLASSES, per_lesion=True),
        FormField("jnet", "JNET class", "choice", JNET_CLASSES, per_lesion=True),
        FormField("kudo", "Kudo pit pattern", "choice", KUDO_CLASSES, per_lesion=True),
        FormField("histology", "Histology", "choice", HISTOLOGIES, per_lesion=True),
        FormField("dysplasia", "Dysplasia", "choice", DYSPLASIA, per_lesion=True),
    ]
    case = [
        FormField(
            "no_polyps",
            "No polyps",
            "bool",
            help="Yes: the examination found no polyp (empty: as the lesions listed say).",
        ),
        FormField(
            "polyp_count", "Polyp count", "number", minimum=0, maximum=100, integer=True, step=1
        ),
        FormField(
            "bbps_total", "BBPS total (0-9)", "number", minimum=0, maximum=9, integer=True, step=1
        ),
        FormField("resection", "Resection", "multi", RESECTIONS),
        FormField(
            "surveillance_years", "Surveillance (years)", "number", minimum=0, maximum=20, step=0.5
        ),
    ]
    return FindingsForm(tuple(case + lesion))


LESION_KEYS = tuple(f.key for f in findings_form().lesion_fields)
CASE_KEYS = tuple(f.key for f in findings_form().case_fields)


class FindingsError(RatingError):
    """Findings that do not fit the schema; `problems` names each field. Nothing is written."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _number(value: Any, *, integer: bool, low: float, high: float) -> float | int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{value!r} is outside {low:g}-{high:g}")
    if integer:
        if not number.is_integer():
            raise ValueError(f"{value!r} is not a whole number")
        return int(number)
    return int(number) if number.is_integer() else number


def check_findings(raw: dict[str, Any], *, problems: list[str] | None = None) -> dict[str, Any]:
    """An expert's findings in the schema (make_lesion / make_findings), or FindingsError
    listing every problem with its field ("lesion 2, location: ..."), after `problems`
    already found (the report's)."""
    problems = list(problems or [])
    if not isinstance(raw, dict):
        raise FindingsError([*problems, f"findings: expected an object, got {type(raw).__name__}"])
    form = findings_form()
    unknown = sorted(set(raw) - {*CASE_KEYS, "lesions", "hedged", "hedged_lesions"})
    if unknown:
        problems.append(f"findings: unknown field {unknown[0]!r}; use {', '.join(CASE_KEYS)}")
    lesions_in = raw.get("lesions") or []
    if not isinstance(lesions_in, list):
        problems.append("lesions: expected a list of lesions")
        lesions_in = []
    lesions: list[dict[str, Any]] = []
    for number, given in enumerate(lesions_in, start=1):
        if not isinstance(given, dict):
            problems.append(f"lesion {number}: expected an object of lesion fields")
            continue
        extra = sorted(set(given) - {*LESION_KEYS, "size_class", "hedged"})
        if extra:
            problems.append(
                f"lesion {number}: unknown field {extra[0]!r}; use {', '.join(LESION_KEYS)}"
            )
        values = {key: given.get(key) for key in LESION_KEYS}
        bad = False
        for key, value in values.items():
            try:
                make_lesion(**{key: value})
            except ValueError as exc:
                bad = True
                detail = str(exc).removeprefix(f"{key}: ")
                problems.append(f"lesion {number}, {key}: {detail}")
        if not bad:
            lesions.append(make_lesion(**values))
    case: dict[str, Any] = {}
    no_polyps = raw.get("no_polyps")
    if no_polyps is not None and not isinstance(no_polyps, bool):
        problems.append(f"no_polyps: {no_polyps!r} is not true or false")
        no_polyps = None
    if no_polyps and lesions_in:
        problems.append(
            f"no_polyps: the case lists {len(lesions_in)} lesion(s); untick 'No polyps' or "
            "remove the lesions"
        )
    for key in ("polyp_count", "bbps_total", "surveillance_years"):
        spec = form.field(key)
        try:
            case[key] = _number(
                raw.get(key), integer=spec.integer, low=spec.minimum, high=spec.maximum
            )
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    count = case.get("polyp_count")
    if count is not None and count < len(lesions_in):
        problems.append(
            f"polyp_count: {count} is fewer than the {len(lesions_in)} lesions described"
        )
    resection = raw.get("resection") or []
    if isinstance(resection, str):
        resection = [resection]
    if not isinstance(resection, list | tuple):
        problems.append("resection: expected a list of resection methods")
        resection = []
    for value in resection:
        if value not in RESECTIONS:
            problems.append(f"resection: {value!r} is not one of {', '.join(RESECTIONS)}")
    if problems:
        raise FindingsError(problems)
    return make_findings(
        lesions,
        no_polyps=no_polyps,
        polyp_count=count,
        bbps_total=case.get("bbps_total"),
        resection=list(dict.fromkeys(resection)),
        surveillance_years=case.get("surveillance_years"),
    )


def form_findings(findings: dict[str, Any] | None) -> dict[str, Any]:
    """Findings (the extractor's, or stored ones) reduced to what the form holds."""
    findings = findings or {}
    return {
        "no_polyps": findings.get("no_polyps"),
        "polyp_count": findings.get("polyp_count"),
        "lesions": [
            {key: lesion.get(key) for key in LESION_KEYS}
            for lesion in findings.get("lesions") or []
        ],
        "bbps_total": findings.get("bbps_total"),
        "resection": list(findings.get("resection") or []),
        "surveillance_years": findings.get("surveillance_years"),
    }


# --- tasks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotationTask:
    """One annotation task as a page may show it: no system name, id or generation id."""

    token: str
    study_id: int
    study_name: str
    position: int  # 1-based place in the annotator's order
    done: int
    total: int
    modality: str
    media: list[TaskMedia]
    question: str | None
    draft_report: str
    draft_findings: dict[str, Any]
    source: str  # written | corrected | adjudicated (what a submit records)
    adjudication: bool
    # The annotations being adjudicated, (report, findings), anonymous, in a random order.
    candidates: list[tuple[str, dict[str, Any]]]
    synthetic: bool
    guidelines: str = ""


@dataclass(frozen=True)
class StoredAnnotation:
    report: str
    findings: dict[str, Any]
    source: str
    submitted_at: datetime | None = None


@dataclass(frozen=True)
class AnnotationResult:
    annotation_id: int
    created: bool  # False: an earlier annotation stands and nothing was written
    # True when the task was already answered with something else: show `stored`.
    conflict: bool = False
    stored: StoredAnnotation | None = None


def _annotation_source(study: Study) -> str:
    return ((study.config or {}).get("design") or {}).get("annotation_source", "corrected")


def _require_annotation_study(study: Study) -> None:
    if study_kind(study) != ANNOTATION_KIND:
        raise RatingError(
            f"The study '{study.name}' is a comparison study, not an annotation study; open "
            "it on the rating page."
        )


_ANNOTATED = exists().where(Annotation.assignment_id == Assignment.id)


def _counts(session: Session, rater_id: int, study_id: int) -> tuple[int, int]:
    total, done = session.execute(
        select(func.count(), func.count().filter(_ANNOTATED)).where(
            Assignment.study_id == study_id, Assignment.rater_id == rater_id
        )
    ).one()
    return int(done or 0), int(total or 0)


def current_annotations(rows: list[Annotation]) -> list[Annotation]:
    """The annotations no other row supersedes, oldest first."""
    superseded = {row.supersedes_id for row in rows if row.supersedes_id is not None}
    return sorted((row for row in rows if row.id not in superseded), key=lambda r: r.id)


def annotations_of_items(session: Session, item_ids: list[int]) -> dict[int, list[Annotation]]:
    """item id -> every annotation of its assignments (all rows, oldest first)."""
    if not item_ids:
        return {}
    rows = session.execute(
        select(Annotation, Assignment.item_id)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .where(Assignment.item_id.in_(item_ids))
        .order_by(Annotation.id)
    ).all()
    found: dict[int, list[Annotation]] = defaultdict(list)
    for annotation, item_id in rows:
        found[item_id].append(annotation)
    return found


def per_annotator(rows: list[Annotation]) -> list[Annotation]:
    """One current annotation per annotator (their latest), in order of first submission."""
    latest: dict[int, Annotation] = {}
    for row in current_annotations(rows):
        latest[row.rater_id] = row
    return sorted(
        latest.values(), key=lambda r: min(x.id for x in rows if x.rater_id == r.rater_id)
    )


def _media(root: str, modality: str, entries: list[Any]) -> list[TaskMedia]:
    media = []
    for entry in entries or []:
        try:
            path = resolve_media(root, entry["path"])
        except (MediaPathError, KeyError):
            continue
        media.append(TaskMedia(entry.get("kind", modality), path))
    return media


def _build_task(session: Session, assignment: Assignment, study: Study) -> AnnotationTask:
    item = session.get(StudyItem, assignment.item_id)
    case = session.get(Case, item.case_id)
    benchmark = session.get(Benchmark, case.benchmark_id)
    generation = session.get(Generation, item.generation_a_id)
    source = _annotation_source(study)
    adjudication = item.kind == ADJUDICATION_KIND
    draft = generation.text if source == "corrected" else ""
    candidates: list[tuple[str, dict[str, Any]]] = []
    if adjudication:
        rows = annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
        chosen = per_annotator(rows)
        # Anonymous and in an order of their own, fixed per task (a reload shows the same).
        order = np.random.default_rng(
            int(hashlib.sha256(assignment.token.encode()).hexdigest()[:8], 16)
        ).permutation(len(chosen))
        candidates = [(chosen[i].report, form_findings(chosen[i].findings)) for i in order.tolist()]
        source = "adjudicated"
    done, total = _counts(session, assignment.rater_id, study.id)
    return AnnotationTask(
        token=assignment.token,
        study_id=study.id,
        study_name=study.name,
        position=assignment.order_index + 1,
        done=done,
        total=total,
        modality=case.modality,
        media=_media(benchmark.root, case.modality, case.media),
        question=case.question,
        draft_report=draft,
        draft_findings=form_findings(extract_findings(draft) if draft else {"lesions": []}),
        source=source,
        adjudication=adjudication,
        candidates=candidates,
        synthetic=bool(benchmark.synthetic),
        guidelines=study.guidelines,
    )


def _refuse_closed(session: Session, study: Study, rater_id: int, then: str = "") -> None:
    """RatingError (its message, then `then`) when the study is not running or the account
    left its panel: the rating page's words (studies.readers.rating)."""
    message = status_text(study.name, study.status)
    if message:
        raise RatingError(message + then)
    active = session.scalar(
        select(StudyRater.active).where(
            StudyRater.study_id == study.id, StudyRater.account_id == rater_id
        )
    )
    if active is False:
        raise RatingError(left_panel_text(study.name) + then)


def _open_study(session: Session, rater_id: int, study_id: int) -> Study:
    study = enrolled_study(session, rater_id, study_id)
    _require_annotation_study(study)
    _refuse_closed(session, study, rater_id)
    return study


def next_annotation(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> AnnotationTask | None:
    """The annotator's first task without an annotation, in their own order (None: all
    done). RatingError with a readable message when the study is paused, closed or not an
    annotation study; AccessDenied for an expired session or a study they are not in."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        study = _open_study(session, rater_id, study_id)
        assignment = session.scalar(
            select(Assignment)
            .where(
                Assignment.study_id == study.id,
                Assignment.rater_id == rater_id,
                ~_ANNOTATED,
                or_(Assignment.available_at.is_(None), Assignment.available_at <= now_utc()),
            )
            .order_by(Assignment.order_index)
            .limit(1)
        )
        if assignment is None:
            return None
        return _build_task(session, assignment, study)


def annotation_task(
    store: Store, rater_id: int, token: str, *, session_token: str | None = None
) -> tuple[AnnotationTask, StoredAnnotation | None]:
    """One of the annotator's tasks by token (to correct it) with its current annotation."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        if assignment is None or assignment.rater_id != rater_id:
            raise AccessDenied("This task is not one of yours.")
        study = enrolled_study(session, rater_id, assignment.study_id)
        _require_annotation_study(study)
        rows = list(
            session.scalars(
                select(Annotation)
                .where(Annotation.assignment_id == assignment.id)
                .order_by(Annotation.id)
            )
        )
        current = current_annotations(rows)
        stored = _stored(current[-1]) if current else None
        return _build_task(session, assignment, study), stored


def last_annotated_task(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> tuple[AnnotationTask, StoredAnnotation] | None:
    """The annotator's most recently annotated task and its current annotation (or None)."""
    with store.session() as session:
        check_session(session, rater_id, session_token)
        study = enrolled_study(session, rater_id, study_id)
        token = session.scalar(
            select(Assignment.token)
            .join(Annotation, Annotation.assignment_id == Assignment.id)
            .where(Assignment.study_id == study.id, Assignment.rater_id == rater_id)
            .order_by(Annotation.id.desc())
            .limit(1)
        )
    if token is None:
        return None
    task, stored = annotation_task(store, rater_id, token, session_token=session_token)
    return task, stored


def _stored(row: Annotation) -> StoredAnnotation:
    return StoredAnnotation(
        row.report, dict(row.findings or {}), row.source, aware(row.submitted_at)
    )


def _same(stored: StoredAnnotation, report: str, findings: dict[str, Any]) -> bool:
    return stored.report.strip() == report.strip() and stored.findings == findings


def submit_annotation(
    store: Store,
    rater_id: int,
    token: str,
    submission_key: str,
    report: str,
    findings: dict[str, Any],
    time_on_task_s: float | None = None,
    *,
    session_token: str | None = None,
    supersede: bool = False,
) -> AnnotationResult:
    """Record an annotation in ONE transaction (RatingError and nothing written otherwise).

    Repeating a submission key returns the first annotation; a task already annotated
    writes nothing and says whether what stands differs (`conflict`), unless `supersede`
    (a correction: a new row that supersedes the current one)."""
    report = (report or "").strip()
    # Every problem at once: the report's first, then each field's.
    missing = [] if report else ["report: write the reference report (it may be short)"]
    checked = check_findings(findings, problems=missing)
    check_submission_key(submission_key)
    if time_on_task_s is not None and not (math.isfinite(time_on_task_s) and time_on_task_s >= 0):
        raise RatingError("Time on task must be a non-negative number of seconds.")
    for attempt in (1, 2):
        try:
            with write_transaction(store) as connection, Session(bind=connection) as session:
                result = _submit(
                    session,
                    rater_id,
                    token,
                    submission_key,
                    report,
                    checked,
                    time_on_task_s,
                    session_token,
                    supersede,
                )
                session.flush()
                return result
        except IntegrityError:
            # A concurrent twin (same key, or the same task from another tab) got in first:
            # the second attempt reads it and answers as for any answered task.
            if attempt == 2:
                raise
        except OperationalError as exc:
            raise DatabaseBusy() from exc
    raise AssertionError("unreachable")  # pragma: no cover


def correct_annotation(
    store: Store,
    rater_id: int,
    token: str,
    submission_key: str,
    report: str,
    findings: dict[str, Any],
    time_on_task_s: float | None = None,
    *,
    session_token: str | None = None,
) -> AnnotationResult:
    """A correction: a new annotation row that supersedes the current one (never an update)."""
    return submit_annotation(
        store,
        rater_id,
        token,
        submission_key,
        report,
        findings,
        time_on_task_s,
        session_token=session_token,
        supersede=True,
    )


def _submit(
    session: Session,
    rater_id: int,
    token: str,
    submission_key: str,
    report: str,
    findings: dict[str, Any],
    time_on_task_s: float | None,
    session_token: str | None,
    supersede: bool,
) -> AnnotationResult:
    query = select(Assignment).where(Assignment.token == token)
    if session.get_bind().dialect.name != "sqlite":
        # Two tabs submitting one task queue on its row.
        query = query.with_for_update()
    assignment = session.scalar(query)
    connection = session.connection()
    refuse_session(rater_id, session_token, session_account_id(connection, session_token))
    if assignment is None:
        raise AccessDenied(
            "This task link is not valid (changed, handed to another annotator, or unknown); "
            "nothing was saved. Reload for your next task."
        )
    if assignment.rater_id != rater_id:
        raise AccessDenied("This task is not one of yours; nothing was saved.")
    study = session.get(Study, assignment.study_id)
    _require_annotation_study(study)
    rows = list(
        session.scalars(
            select(Annotation)
            .where(
                or_(
                    Annotation.assignment_id == assignment.id,
                    Annotation.submission_key == submission_key,
                )
            )
            .order_by(Annotation.id)
        )
    )
    repeat = next((r for r in rows if r.submission_key == submission_key), None)
    if repeat is not None:
        if repeat.assignment_id != assignment.id or repeat.rater_id != rater_id:
            raise RatingError("This submission key was used for another task; reload.")
        stored = _stored(repeat)
        return AnnotationResult(repeat.id, False, not _same(stored, report, findings), stored)
    _refuse_closed(session, study, rater_id, " Nothing was saved.")
    own = current_annotations([r for r in rows if r.assignment_id == assignment.id])
    current = own[-1] if own else None
    if current is None and supersede:
        raise RatingError("There is no earlier annotation of this case to correct.")
    if current is not None:
        stored = _stored(current)
        same = _same(stored, report, findings)
        if not supersede or same:
            return AnnotationResult(current.id, False, not same, stored)
    item = session.get(StudyItem, assignment.item_id)
    source = "adjudicated" if item.kind == ADJUDICATION_KIND else _annotation_source(study)
    annotation = Annotation(
        assignment_id=assignment.id,
        rater_id=rater_id,
        submission_key=submission_key,
        source=source,
        report=report,
        findings=findings,
        time_on_task_s=time_on_task_s,
        supersedes_id=current.id if current is not None else None,
        submitted_at=now_utc(),
    )
    session.add(annotation)
    session.flush()
    detail: dict[str, Any] = {"study_id": study.id, "supersedes_id": annotation.supersedes_id}
    if source == "adjudicated":
        detail["settles"] = [
            r.id
            for r in per_annotator(
                annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
            )
        ]
    action = "annotation.correct" if supersede else "annotation.submit"
    record(session, rater_id, action, "annotation", annotation.id, detail)
    return AnnotationResult(annotation.id, True)


def is_annotation_study(store: Store, study: int | str) -> bool:
    """Whether `study` is an annotation study (pages and commands choose their path by it)."""
    with store.session() as session:
        return study_kind(find_study(session, study)) == ANNOTATION_KIND


def annotation_studies(store: Store, rater_id: int) -> list[int]:
    """Ids of the started annotation studies the account is an active member of."""
    with store.session() as session:
        rows = session.scalars(member_studies(rater_id))
        return [s.id for s in rows if study_kind(s) == ANNOTATION_KIND]
