"""Expert annotation studies: clinicians write or correct each case's reference report and its
structured findings; the one home of annotation tasks.

A study of kind `annotation` (StudyDesign.kind) names one system, the model whose report each
annotator corrects (source "corrected"; with `annotation_source="written"` its reports are
not shown and annotators write from scratch). Each case is one item of kind `annotation`,
given to `overlap` annotators (double annotation: 2). An annotation is an append-only row
(studies.store.schema.Annotation, migration 0007): a correction is a new row that supersedes
it. Findings are checked through the one normaliser of findings
(studies.benchmarks.findings.make_lesion / make_findings) and the form is generated from the
one vocabulary (metrics.clinical.vocab).

Cases whose two annotations differ (`annotation_disagreements`) go to a senior annotator
through the adjudication queue of studies.readers.adjudication; the adjudicated annotation
(source "adjudicated") settles the case. `expert_references` are the settled cases (the
adjudicated annotation, else the agreed one; cases still in disagreement are listed as such),
`write_expert_references` copies them into a benchmark of their own, `validate_extractor`
compares the clinical extractor with the experts' findings, and `on_policy_harvest` turns each
correction of a model report into a preference pair (chosen: the correction; rejected: the
model's output) written by the preference harvest's own writer.

Research software, not a medical device.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import exists, func, or_, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from metrics.clinical.extract import FINDINGS_SCHEMA_VERSION, extract_findings
from metrics.clinical.scoring import match_lesions
from metrics.clinical.vocab import (
    DYSPLASIA,
    HISTOLOGIES,
    JNET_CLASSES,
    KUDO_CLASSES,
    LESION_ATTRIBUTES,
    LOCATIONS,
    LST_CLASSES,
    NICE_CLASSES,
    PARIS_BASE,
    RESECTIONS,
)
from model.notice import RESEARCH_NOTICE
from studies.benchmarks.findings import make_findings, make_lesion
from studies.exports.render import csv_cell
from studies.exports.synthetic import synthetic_kind
from studies.readers.accounts import aware, now_utc, session_account_id
from studies.readers.adjudication import ADJUDICATION_KIND, queue_items
from studies.readers.design import ANNOTATION_KIND, StudyError, find_study
from studies.readers.panel import PanelChange
from studies.readers.rating import (
    TaskMedia,
    _check_session,
    _enrolled_study,
    _left_panel_text,
    _refuse_session,
    _status_text,
)
from studies.readers.writes import AccessDenied, DatabaseBusy, RatingError, write_transaction
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media
from studies.store.schema import (
    Account,
    Annotation,
    Assignment,
    AuditEvent,
    Benchmark,
    Case,
    Generation,
    Study,
    StudyItem,
    StudyRater,
    System,
)

SOURCES = ("written", "corrected", "adjudicated")
EXPORT_VERSION = "annotation-study-export/1"

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
# Lesion fields compared between annotations, and with the extractor: the scored attributes
# (the size by its class, the size that decides management) and the dysplasia grade.
COMPARED_LESION_FIELDS = (*LESION_ATTRIBUTES, "dysplasia")
COMPARED_FIELDS = (*CASE_KEYS, "lesions", *COMPARED_LESION_FIELDS)


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


def _study_kind(study: Study) -> str:
    return ((study.config or {}).get("design") or {}).get("kind", "comparison")


def _annotation_source(study: Study) -> str:
    return ((study.config or {}).get("design") or {}).get("annotation_source", "corrected")


def _require_annotation_study(study: Study) -> None:
    if _study_kind(study) != ANNOTATION_KIND:
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


def _current(rows: list[Annotation]) -> list[Annotation]:
    """The annotations no other row supersedes, oldest first."""
    superseded = {row.supersedes_id for row in rows if row.supersedes_id is not None}
    return sorted((row for row in rows if row.id not in superseded), key=lambda r: r.id)


def _annotations_of_items(session: Session, item_ids: list[int]) -> dict[int, list[Annotation]]:
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


def _per_annotator(rows: list[Annotation]) -> list[Annotation]:
    """One current annotation per annotator (their latest), in order of first submission."""
    latest: dict[int, Annotation] = {}
    for row in _current(rows):
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
        rows = _annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
        chosen = _per_annotator(rows)
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


def _open_study(session: Session, rater_id: int, study_id: int) -> Study:
    study = _enrolled_study(session, rater_id, study_id)
    _require_annotation_study(study)
    message = _status_text(study.name, study.status)
    if message:
        raise RatingError(message)
    active = session.scalar(
        select(StudyRater.active).where(
            StudyRater.study_id == study.id, StudyRater.account_id == rater_id
        )
    )
    if active is False:
        raise RatingError(_left_panel_text(study.name))
    return study


def next_annotation(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> AnnotationTask | None:
    """The annotator's first task without an annotation, in their own order (None: all
    done). RatingError with a readable message when the study is paused, closed or not an
    annotation study; AccessDenied for an expired session or a study they are not in."""
    with store.session() as session:
        _check_session(session, rater_id, session_token)
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
        _check_session(session, rater_id, session_token)
        assignment = session.scalar(select(Assignment).where(Assignment.token == token))
        if assignment is None or assignment.rater_id != rater_id:
            raise AccessDenied("This task is not one of yours.")
        study = _enrolled_study(session, rater_id, assignment.study_id)
        _require_annotation_study(study)
        rows = list(
            session.scalars(
                select(Annotation)
                .where(Annotation.assignment_id == assignment.id)
                .order_by(Annotation.id)
            )
        )
        current = _current(rows)
        stored = _stored(current[-1]) if current else None
        return _build_task(session, assignment, study), stored


def last_annotated_task(
    store: Store, rater_id: int, study_id: int, *, session_token: str | None = None
) -> tuple[AnnotationTask, StoredAnnotation] | None:
    """The annotator's most recently annotated task and its current annotation (or None)."""
    with store.session() as session:
        _check_session(session, rater_id, session_token)
        study = _enrolled_study(session, rater_id, study_id)
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
    if not submission_key or len(submission_key) > 100:
        raise RatingError("The submission key is missing or too long; reload the page.")
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
    _refuse_session(rater_id, session_token, session_account_id(connection, session_token))
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
    message = _status_text(study.name, study.status)
    if message:
        raise RatingError(message + " Nothing was saved.")
    active = session.scalar(
        select(StudyRater.active).where(
            StudyRater.study_id == study.id, StudyRater.account_id == rater_id
        )
    )
    if active is False:
        raise RatingError(_left_panel_text(study.name) + " Nothing was saved.")
    own = _current([r for r in rows if r.assignment_id == assignment.id])
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
            for r in _per_annotator(
                _annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
            )
        ]
    session.add(
        AuditEvent(
            actor_id=rater_id,
            action="annotation.correct" if supersede else "annotation.submit",
            entity="annotation",
            entity_id=str(annotation.id),
            detail=detail,
        )
    )
    return AnnotationResult(annotation.id, True)


# --- comparing annotations ----------------------------------------------------------------


def _case_value(findings: dict[str, Any], key: str) -> Any:
    value = findings.get(key)
    if key == "resection":
        return tuple(sorted(value or []))
    if key in ("bbps_total", "polyp_count", "surveillance_years") and value is not None:
        return float(value)
    return value


def findings_differences(
    first: dict[str, Any], second: dict[str, Any], fields: tuple[str, ...] = COMPARED_FIELDS
) -> list[str]:
    """Where two findings differ, one line each ("bbps_total: 6 / 7", "lesion 1, location:
    sigmoid / rectum"); lesions are paired the way the clinical score pairs them."""
    out = []
    for key in CASE_KEYS:
        if key in fields and _case_value(first, key) != _case_value(second, key):
            out.append(f"{key}: {first.get(key)!r} / {second.get(key)!r}")
    a, b = first.get("lesions") or [], second.get("lesions") or []
    pairs = match_lesions(a, b)
    if "lesions" in fields and (len(pairs) != len(a) or len(pairs) != len(b)):
        out.append(f"lesions: {len(a)} / {len(b)}")
    for i, j in pairs:
        for key in COMPARED_LESION_FIELDS:
            if key in fields and a[i].get(key) != b[j].get(key):
                out.append(f"lesion {i + 1}, {key}: {a[i].get(key)!r} / {b[j].get(key)!r}")
    return out


@dataclass(frozen=True)
class AnnotationRule:
    """When the annotations of a case disagree enough to need adjudication: any difference
    in one of `fields` (default: every compared field), or in the report text if `report`."""

    fields: tuple[str, ...] = COMPARED_FIELDS
    report: bool = False

    def check(self) -> None:
        unknown = [f for f in self.fields if f not in COMPARED_FIELDS]
        if unknown:
            raise StudyError(
                f"adjudication rule: no field {unknown[0]!r}; use {', '.join(COMPARED_FIELDS)}"
            )
        if not self.fields and not self.report:
            raise StudyError("adjudication rule: name at least one field, or the report")

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "report": self.report}


def _annotation_items(session: Session, study_id: int) -> list[StudyItem]:
    return list(
        session.scalars(
            select(StudyItem)
            .where(StudyItem.study_id == study_id, StudyItem.kind == ANNOTATION_KIND)
            .order_by(StudyItem.id)
        )
    )


def _reasons(chosen: list[Annotation], rule: AnnotationRule) -> list[str]:
    first, second = chosen[0], chosen[1]
    reasons = findings_differences(first.findings or {}, second.findings or {}, rule.fields)
    if rule.report and " ".join(first.report.split()) != " ".join(second.report.split()):
        reasons.append("report: the texts differ")
    return reasons


def annotation_disagreements(
    session: Session, study: Study, rule: AnnotationRule | None = None
) -> dict[int, list[str]]:
    """Annotation item id -> why its (first two) annotators disagree under `rule`."""
    rule = rule or AnnotationRule()
    rule.check()
    items = _annotation_items(session, study.id)
    by_item = _annotations_of_items(session, [i.id for i in items])
    found = {}
    for item in items:
        chosen = _per_annotator(by_item.get(item.id, []))
        if len(chosen) < 2:
            continue
        reasons = _reasons(chosen, rule)
        if reasons:
            found[item.id] = reasons
    return found


def queue_annotation_adjudication(
    store: Store,
    study: int | str,
    adjudicator: str,
    rule: AnnotationRule | None = None,
    *,
    actor_id: int | None = None,
) -> PanelChange:
    """Send every case whose annotations disagree under `rule` (not queued yet) to the
    senior annotator `adjudicator`: one amendment of the design, with the rule."""
    rule = rule or AnnotationRule()
    rule.check()

    def find(session: Session, row: Study) -> dict[int, list[str]]:
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(
                f"study {row.name!r} is a comparison study; queue its disagreements with "
                "queue_adjudication"
            )
        return annotation_disagreements(session, row, rule)

    return queue_items(store, study, adjudicator, find, rule.to_dict(), actor_id=actor_id)


# --- agreement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldAgreement:
    """Agreement between the two annotators of each case on one field."""

    field: str
    level: str  # case | lesion
    n: int  # cases (case fields) or paired lesions (lesion fields; "lesions": all lesions)
    agreement: float  # share of units both annotators gave the same value
    agreement_low: float  # Wilson
    agreement_high: float
    cohen_kappa: float
    cohen_low: float  # bootstrap over units (seeded)
    cohen_high: float
    fleiss_kappa: float
    fleiss_low: float  # Gwet's linearised interval
    fleiss_high: float
    gwet_ac1: float
    gwet_low: float
    gwet_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NOT_GIVEN = "(not given)"


# One unit of agreement: (annotator id, value) of each of the two annotators.
Unit = tuple[tuple[int, Any], tuple[int, Any]]


def _agreement(
    name: str, level: str, units: list[Unit], *, seed: int, n_resamples: int
) -> FieldAgreement:
    import pandas as pd

    from studies.reader_stats import agreement as stats
    from studies.reader_stats.pairwise import wilson_interval

    nan = float("nan")
    n = len(units)
    values = sorted({repr(value) for unit in units for _, value in unit})
    code = {v: float(i) for i, v in enumerate(values)}
    # Cohen: the first annotator of each case against the second.
    first = np.array([code[repr(a[1])] for a, _ in units])
    second = np.array([code[repr(b[1])] for _, b in units])
    same = int((first == second).sum())
    low, high = wilson_interval(same, n)
    cohen = cohen_low = cohen_high = nan
    fleiss = {"value": nan, "ci_low": nan, "ci_high": nan}
    gwet = dict(fleiss)
    domain = list(code.values())
    if n >= 2 and len(domain) >= 2:
        onehot = stats._pair_onehot(first, second, domain)
        cohen = float(stats._kappa_from_counts(onehot.sum(axis=0)[None, :], len(domain), None)[0])
        boot = stats._kappa_from_counts(
            stats._unit_weights(n, n_resamples, seed) @ onehot, len(domain), None
        )
        cohen_low, cohen_high = stats._interval(boot, 0.95)
        # Fleiss and Gwet: the annotators x units table (annotators random, as rated).
        cells = [
            {"rater": rater, "unit": index, "value": code[repr(value)]}
            for index, unit in enumerate(units)
            for rater, value in unit
        ]
        table = (
            pd.DataFrame(cells)
            .drop_duplicates(["rater", "unit"])
            .pivot(index="rater", columns="unit", values="value")
        )
        counts = stats.category_counts(table, domain)
        weights = stats.agreement_weights(domain)
        ratings = stats.rating_codes(table, domain)
        fleiss = stats.chance_corrected(counts, weights, "fleiss", ratings=ratings)
        gwet = stats.chance_corrected(counts, weights, "gwet", ratings=ratings)
    return FieldAgreement(
        field=name,
        level=level,
        n=n,
        agreement=same / n if n else nan,
        agreement_low=float(low),
        agreement_high=float(high),
        cohen_kappa=cohen,
        cohen_low=cohen_low,
        cohen_high=cohen_high,
        fleiss_kappa=fleiss["value"],
        fleiss_low=fleiss["ci_low"],
        fleiss_high=fleiss["ci_high"],
        gwet_ac1=gwet["value"],
        gwet_low=gwet["ci_low"],
        gwet_high=gwet["ci_high"],
    )


def _given(value: Any) -> Any:
    return _NOT_GIVEN if value is None else value


def annotation_agreement(
    store: Store, study: int | str, *, seed: int = 0, n_resamples: int = 1000
) -> list[FieldAgreement]:
    """Agreement per field between the first two annotators of each doubly annotated case:
    case fields over cases; lesion fields over the lesions the two paired (the clinical
    score's pairing); "lesions" over all lesions (paired or not: whether both described it).
    A value left empty is a value of its own ("not given"). Percent agreement with a Wilson
    interval, Cohen's kappa (bootstrap interval over units), Fleiss' kappa and Gwet's AC1
    (Gwet's linearised intervals), from studies.reader_stats.agreement."""
    with store.session() as session:
        row = find_study(session, study)
        items = _annotation_items(session, row.id)
        by_item = _annotations_of_items(session, [i.id for i in items])
        doubles = []
        for item in items:
            chosen = _per_annotator(by_item.get(item.id, []))
            if len(chosen) >= 2:
                doubles.append(
                    (
                        (chosen[0].rater_id, dict(chosen[0].findings or {})),
                        (chosen[1].rater_id, dict(chosen[1].findings or {})),
                    )
                )
    out = []
    for number, key in enumerate(CASE_KEYS):
        units = [
            ((ra, _given(_case_value(a, key))), (rb, _given(_case_value(b, key))))
            for (ra, a), (rb, b) in doubles
        ]
        out.append(_agreement(key, "case", units, seed=seed + number, n_resamples=n_resamples))
    lesion_units: dict[str, list[Unit]] = defaultdict(list)
    presence: list[Unit] = []
    for (ra, a), (rb, b) in doubles:
        la, lb = a.get("lesions") or [], b.get("lesions") or []
        matched = match_lesions(la, lb)
        presence += [((ra, True), (rb, True))] * len(matched)
        presence += [((ra, True), (rb, False))] * (len(la) - len(matched))
        presence += [((ra, False), (rb, True))] * (len(lb) - len(matched))
        for i, j in matched:
            for key in COMPARED_LESION_FIELDS:
                lesion_units[key].append(
                    ((ra, _given(la[i].get(key))), (rb, _given(lb[j].get(key))))
                )
    base = seed + len(CASE_KEYS)
    out.append(_agreement("lesions", "lesion", presence, seed=base, n_resamples=n_resamples))
    for number, key in enumerate(COMPARED_LESION_FIELDS, start=1):
        out.append(
            _agreement(
                key, "lesion", lesion_units[key], seed=base + number, n_resamples=n_resamples
            )
        )
    return out


# --- expert references --------------------------------------------------------------------

REFERENCE_STATUSES = ("adjudicated", "agreed", "single", "disagreement", "pending")


@dataclass(frozen=True)
class ExpertReference:
    """A case's expert reference, or why it has none yet (`status`)."""

    case_id: int
    case_key: str
    status: str  # adjudicated | agreed | single | disagreement | pending
    report: str | None
    findings: dict[str, Any] | None
    provenance: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # a disagreement's differences

    @property
    def settled(self) -> bool:
        return self.status in ("adjudicated", "agreed", "single")


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Account.id, Account.username)).all())


def _reference_rows(session: Session, row: Study) -> list[ExpertReference]:
    items = _annotation_items(session, row.id)
    adjudications = list(
        session.scalars(
            select(StudyItem).where(
                StudyItem.study_id == row.id, StudyItem.kind == ADJUDICATION_KIND
            )
        )
    )
    by_item = _annotations_of_items(session, [i.id for i in items + adjudications])
    settled_by: dict[int, Annotation] = {}
    for adjudication in adjudications:
        current = _current(by_item.get(adjudication.id, []))
        if current:
            settled_by[adjudication.adjudicates_id] = current[-1]
    names = _names(session)
    case_keys = dict(
        session.execute(
            select(Case.id, Case.case_key).where(Case.id.in_([i.case_id for i in items]))
        ).all()
    )
    rule = AnnotationRule()
    out = []
    for item in items:
        chosen = _per_annotator(by_item.get(item.id, []))
        common = {
            "study": row.name,
            "study_config_hash": row.config_hash,
            "item": item.id,
            "annotations": [a.id for a in chosen],
            "annotators": [names.get(a.rater_id, "?") for a in chosen],
        }
        key = case_keys[item.case_id]
        settled = settled_by.get(item.id)
        if settled is not None:
            provenance = {
                **common,
                "annotation": settled.id,
                "source": "adjudicated",
                "adjudicator": names.get(settled.rater_id, "?"),
                "settles": [a.id for a in chosen if a.id < settled.id],
                "submitted_at": _iso(settled.submitted_at),
            }
            out.append(
                ExpertReference(
                    item.case_id,
                    key,
                    "adjudicated",
                    settled.report,
                    dict(settled.findings),
                    provenance,
                )
            )
            continue
        if len(chosen) < item.overlap:
            out.append(ExpertReference(item.case_id, key, "pending", None, None, common))
            continue
        reasons = _reasons(chosen, rule) if len(chosen) >= 2 else []
        if reasons:
            out.append(
                ExpertReference(item.case_id, key, "disagreement", None, None, common, reasons)
            )
            continue
        first = chosen[0]
        provenance = {
            **common,
            "annotation": first.id,
            "source": first.source,
            "submitted_at": _iso(first.submitted_at),
        }
        status = "agreed" if len(chosen) >= 2 else "single"
        out.append(
            ExpertReference(
                item.case_id, key, status, first.report, dict(first.findings), provenance
            )
        )
    return out


def expert_references(store: Store, study: int | str) -> list[ExpertReference]:
    """Every case of an annotation study with its expert reference: the adjudicated
    annotation, else the agreed one (the first annotator's text, both annotators' findings
    the same on every compared field), else a single annotation where the overlap is 1;
    a case in disagreement or not yet annotated is listed with that status, never dropped."""
    with store.session() as session:
        row = find_study(session, study)
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(f"study {row.name!r} is not an annotation study")
        return _reference_rows(session, row)


@dataclass(frozen=True)
class ReferencesWritten:
    benchmark: str
    split: str
    written: int
    left_out: dict[str, int]  # status -> cases without a settled reference

    def summary(self) -> str:
        left = ", ".join(f"{n} {status}" for status, n in sorted(self.left_out.items()) if n)
        return (
            f"Wrote {self.written} expert references to {self.benchmark}/{self.split}"
            + (f"; left out: {left}" if left else "")
            + "."
        )


EXPERT_LOADER = "expert-references"


def write_expert_references(
    store: Store,
    study: int | str,
    benchmark: str,
    split: str = "test",
    *,
    actor_id: int | None = None,
) -> ReferencesWritten:
    """Copy each settled case into benchmark `benchmark` (created with loader
    'expert-references' on first use), split `split`, with the expert's report as its
    reference and the expert's findings as its ground truth; the study's own benchmark is
    left as it is (its reports' cache keys depend on its references). A case already there
    is updated; one from another source benchmark is refused."""
    from studies.store.audit import record

    name = benchmark.strip()
    if not name:
        raise StudyError("benchmark: name the benchmark the expert references go to")
    with store.session() as session:
        row = find_study(session, study)
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(f"study {row.name!r} is not an annotation study")
        references = _reference_rows(session, row)
        source_id = (row.config.get("benchmark") or {}).get("id")
        source = session.get(Benchmark, source_id)
        if source is not None and source.name == name:
            raise StudyError(
                f"benchmark: {name!r} is the study's own benchmark; write the expert "
                "references to a benchmark of their own (its reports' cache depends on the "
                "references it has)"
            )
        target = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if target is None:
            target = Benchmark(
                name=name,
                loader=EXPERT_LOADER,
                root=source.root,
                task=source.task,
                synthetic=source.synthetic,
                description=f"Expert references from annotation study {row.name!r} "
                f"(cases of {source.name}). {RESEARCH_NOTICE}",
                options={"source_benchmark": source.name, "studies": [row.name]},
            )
            session.add(target)
            session.flush()
        elif target.loader != EXPERT_LOADER or target.root != source.root:
            raise StudyError(
                f"benchmark: {name!r} exists and holds other cases (loader "
                f"{target.loader!r}); choose another name"
            )
        else:
            studies_named = list((target.options or {}).get("studies") or [])
            if row.name not in studies_named:
                target.options = {**(target.options or {}), "studies": [*studies_named, row.name]}
        written = 0
        for reference in references:
            if not reference.settled:
                continue
            case = session.get(Case, reference.case_id)
            meta = {
                **(case.meta or {}),
                "expert_reference": reference.provenance,
                "source_case_id": case.id,
            }
            payload = {
                "split": split,
                "modality": case.modality,
                "media": case.media,
                "references": [reference.report],
                "question": case.question,
                "findings": reference.findings,
                "meta": meta,
            }
            digest = hashlib.sha256(
                json.dumps(payload, sort_keys=True, default=str).encode()
            ).hexdigest()
            copy = session.scalar(
                select(Case).where(Case.benchmark_id == target.id, Case.case_key == case.case_key)
            )
            if copy is None:
                copy = Case(benchmark_id=target.id, case_key=case.case_key)
                session.add(copy)
            copy.split = split
            copy.modality = case.modality
            copy.media = list(case.media or [])
            copy.references = [reference.report]
            copy.question = case.question
            copy.findings = reference.findings
            copy.meta = meta
            copy.content_hash = digest
            written += 1
        left_out = Counter(r.status for r in references if not r.settled)
        record(
            session,
            actor_id,
            "annotation.references",
            "benchmark",
            target.id,
            {"study": row.name, "split": split, "written": written, "left_out": dict(left_out)},
        )
        return ReferencesWritten(name, split, written, dict(left_out))


# --- validating the extractor -------------------------------------------------------------


@dataclass(frozen=True)
class FieldAccuracy:
    field: str
    level: str  # case | lesion
    n: int  # cases, or expert lesions (lesions) / paired lesions stating the field
    n_cases: int
    correct: int
    accuracy: float
    wilson_low: float  # lesion fields: cluster-aware (cases as clusters)
    wilson_high: float
    cp_low: float  # Clopper-Pearson, units independent
    cp_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExtractorValidation:
    study: str
    study_config_hash: str | None
    n_references: int
    left_out: dict[str, int]
    fields: list[FieldAccuracy]
    synthetic: str  # the synthetic label ("" for real cases)

    def footer(self) -> str:
        left = ", ".join(f"{n} {s}" for s, n in sorted(self.left_out.items()) if n) or "none"
        label = " SYNTHETIC cases." if self.synthetic else ""
        return (
            f"Extractor (findings schema {FINDINGS_SCHEMA_VERSION}) against {self.n_references} "
            f"expert references of study {self.study} (config {(self.study_config_hash or '')[:12]}"
            f"); cases without a settled reference left out: {left}. 95% intervals: Wilson "
            "(lesion fields: cases as clusters, effective sample size, t on effective "
            "clusters - 1) and Clopper-Pearson (units independent). Lesions paired as the "
            f"clinical score pairs them; a field the expert left empty is not scored on "
            f"lesions.{label} {RESEARCH_NOTICE}"
        )

    def rows(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.fields]

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "study_config_hash": self.study_config_hash,
            "n_references": self.n_references,
            "left_out": self.left_out,
            "synthetic": self.synthetic,
            "fields": self.rows(),
            "footer": self.footer(),
        }

    def text(self) -> str:
        lines = [f"{'field':<20} {'level':<7} {'n':>5} {'accuracy':>9}  Wilson 95%      CP 95%"]
        for f in self.fields:
            lines.append(
                f"{f.field:<20} {f.level:<7} {f.n:>5} {_pct(f.accuracy):>9}  "
                f"{_span(f.wilson_low, f.wilson_high):<15} {_span(f.cp_low, f.cp_high)}"
            )
        return "\n".join([*lines, "", self.footer()])

    def csv(self) -> str:
        buffer = io.StringIO()
        names = list(FieldAccuracy.__dataclass_fields__)
        writer = csv.DictWriter(buffer, fieldnames=[*names, "footer"])
        writer.writeheader()
        footer = self.footer()
        for row in self.rows():
            writer.writerow({**row, "footer": footer})
        return buffer.getvalue()


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}%"


def _span(low: float, high: float) -> str:
    return "-" if low != low or high != high else f"{_pct(low)}-{_pct(high)}"


def _accuracy(
    name: str, level: str, correct: list[bool], cases: list[int], clustered: bool
) -> FieldAccuracy:
    from studies.reader_stats.pairwise import (
        clopper_pearson_interval,
        design_effect,
        wilson_interval,
    )

    n = len(correct)
    k = int(sum(correct))
    if clustered and n:
        # Cases as clusters: the case term of the two-way sum with each lesion its own
        # "rater" (that term and the cell term cancel).
        deff, df = design_effect(np.asarray(correct, float), np.asarray(cases), np.arange(n))
        deff = deff if deff > 0 and math.isfinite(deff) else 1.0
        low, high = wilson_interval(k / deff, n / deff, df=df)
    else:
        low, high = wilson_interval(k, n)
    cp_low, cp_high = clopper_pearson_interval(k, n)
    return FieldAccuracy(
        field=name,
        level=level,
        n=n,
        n_cases=len(set(cases)),
        correct=k,
        accuracy=k / n if n else float("nan"),
        wilson_low=float(low),
        wilson_high=float(high),
        cp_low=float(cp_low),
        cp_high=float(cp_high),
    )


def compare_with_extractor(
    references: list[tuple[int, str, dict[str, Any]]],
) -> list[FieldAccuracy]:
    """Per-field accuracy of the extractor on (case id, expert report, expert findings):
    case fields over cases (equal values, both empty counts as equal); "lesions" over the
    expert's lesions (found: paired with an extracted lesion); each lesion field over the
    paired lesions for which the expert gave a value."""
    case_hits: dict[str, list[bool]] = defaultdict(list)
    case_ids: list[int] = []
    lesion_hits: dict[str, list[bool]] = defaultdict(list)
    lesion_cases: dict[str, list[int]] = defaultdict(list)
    for case_id, report, expert in references:
        predicted = extract_findings(report)
        case_ids.append(case_id)
        for key in CASE_KEYS:
            case_hits[key].append(_case_value(predicted, key) == _case_value(expert, key))
        gold = expert.get("lesions") or []
        found = predicted.get("lesions") or []
        pairs = match_lesions(found, gold)
        paired = {j: i for i, j in pairs}
        for j in range(len(gold)):
            lesion_hits["lesions"].append(j in paired)
            lesion_cases["lesions"].append(case_id)
        for i, j in pairs:
            for key in COMPARED_LESION_FIELDS:
                if gold[j].get(key) is None:
                    continue
                lesion_hits[key].append(found[i].get(key) == gold[j].get(key))
                lesion_cases[key].append(case_id)
    out = [_accuracy(key, "case", case_hits[key], case_ids, False) for key in CASE_KEYS]
    for key in ("lesions", *COMPARED_LESION_FIELDS):
        out.append(_accuracy(key, "lesion", lesion_hits[key], lesion_cases[key], True))
    return out


def validate_extractor(store: Store, study: int | str) -> ExtractorValidation:
    """The clinical extractor run on each expert reference report, against the expert's
    own structured findings: accuracy per field with Wilson and Clopper-Pearson intervals."""
    with store.session() as session:
        row = find_study(session, study)
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(f"study {row.name!r} is not an annotation study")
        references = _reference_rows(session, row)
        synthetic = _synthetic(session, row)
        name, config_hash = row.name, row.config_hash
    settled = [(r.case_id, r.report, r.findings) for r in references if r.settled]
    if not settled:
        raise StudyError(
            f"study {name!r} has no settled expert reference yet (annotate, then adjudicate "
            "the disagreements)"
        )
    return ExtractorValidation(
        study=name,
        study_config_hash=config_hash,
        n_references=len(settled),
        left_out=dict(Counter(r.status for r in references if not r.settled)),
        fields=compare_with_extractor(settled),
        synthetic=synthetic,
    )


def _synthetic(session: Session, row: Study) -> str:
    flags = session.scalars(
        select(Benchmark.synthetic)
        .join(Case, Case.benchmark_id == Benchmark.id)
        .join(StudyItem, StudyItem.case_id == Case.id)
        .where(StudyItem.study_id == row.id)
        .distinct()
    ).all()
    return synthetic_kind(cases=any(flags), judgments=False)


# --- on-policy preference pairs -----------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    """A clinician's correction of a model report: the raw material of an on-policy pair."""

    annotation_id: int
    case_id: int
    case_key: str
    annotator: str
    system: str
    generation_id: int
    model_report: str
    corrected_report: str


def corrections(store: Store, study: int | str) -> list[Correction]:
    """Every annotator's current correction of the model's report (source "corrected"),
    one per annotator and case, in the order given."""
    with store.session() as session:
        row = find_study(session, study)
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(f"study {row.name!r} is not an annotation study")
        items = _annotation_items(session, row.id)
        by_item = _annotations_of_items(session, [i.id for i in items])
        names = _names(session)
        systems = dict(session.execute(select(System.id, System.name)).all())
        keys = dict(
            session.execute(
                select(Case.id, Case.case_key).where(Case.id.in_([i.case_id for i in items]))
            ).all()
        )
        out = []
        for item in items:
            generation = session.get(Generation, item.generation_a_id)
            for annotation in _per_annotator(by_item.get(item.id, [])):
                if annotation.source != "corrected":
                    continue
                out.append(
                    Correction(
                        annotation_id=annotation.id,
                        case_id=item.case_id,
                        case_key=keys[item.case_id],
                        annotator=names.get(annotation.rater_id, "?"),
                        system=systems.get(item.system_a_id, "?"),
                        generation_id=generation.id,
                        model_report=generation.text,
                        corrected_report=annotation.report,
                    )
                )
        return out


def on_policy_harvest(store: Store, study: int | str, policy: Any = None) -> Any:
    """The corrections of a study as a preference harvest (studies.preferences.harvest's
    HarvestResult: export it with `export_preferences`, train it like harvested pairs)."""
    from studies.preferences.harvest import harvest_corrections

    with store.session() as session:
        name = find_study(session, study).name
    return harvest_corrections(store, name, corrections(store, study), policy)


def on_policy_pairs(store: Store, study: int | str, policy: Any = None) -> list[dict[str, Any]]:
    """Each correction as a preference record in the harvest's format (prompt, chosen,
    rejected, images as absolute paths, provenance), ready for TRL's DPOTrainer."""
    from studies.preferences.harvest import preference_records

    return preference_records(on_policy_harvest(store, study, policy))


# --- export -------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "study",
    "annotation_id",
    "annotator",
    "case",
    "item",
    "item_kind",
    "adjudicates_item",
    "settles",
    "source",
    "system",
    "generation_id",
    "report",
    "findings",
    "time_on_task_s",
    "assigned_at",
    "submitted_at",
    "supersedes_id",
    "superseded",
    "synthetic",
    "study_config_hash",
    "study_seed",
    "study_design_hash",
    "study_amendments",
    "exported_at",
    "export",
)


def _iso(moment: datetime | None) -> str:
    moment = aware(moment)
    return moment.isoformat() if moment else ""


def annotation_rows(store: Store, study: int | str) -> list[dict[str, Any]]:
    """Every annotation of a study (corrections and superseded rows included, flagged by
    `superseded`), with annotator, case, the model's system and generation, what an
    adjudicated annotation settles, and the design as run (config hash and amendments)."""
    from studies.readers.amendments import amendments_summary, study_amendments

    with store.session() as session:
        row = find_study(session, study)
        if _study_kind(row) != ANNOTATION_KIND:
            raise StudyError(f"study {row.name!r} is not an annotation study")
        items = {
            i.id: i for i in session.scalars(select(StudyItem).where(StudyItem.study_id == row.id))
        }
        by_item = _annotations_of_items(session, list(items))
        names = _names(session)
        systems = dict(session.execute(select(System.id, System.name)).all())
        keys = dict(
            session.execute(
                select(Case.id, Case.case_key).where(
                    Case.id.in_({i.case_id for i in items.values()})
                )
            ).all()
        )
        assignments = {
            a.id: a
            for a in session.scalars(select(Assignment).where(Assignment.study_id == row.id))
        }
        amendments = study_amendments(session, row.id)
        design_hash = amendments[-1].hash if amendments else (row.config_hash or "")
        amended = amendments_summary(amendments)
        synthetic = _synthetic(session, row)
        seed = (row.config.get("design") or {}).get("seed")
        exported_at = now_utc().isoformat()
        out = []
        for item_id in sorted(by_item):
            item = items[item_id]
            rows = by_item[item_id]
            superseded = {r.supersedes_id for r in rows if r.supersedes_id is not None}
            settled_from = (
                _annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
                if item.kind == ADJUDICATION_KIND
                else []
            )
            for annotation in rows:
                settles = ""
                if annotation.source == "adjudicated":
                    settles = " ".join(
                        str(a.id)
                        for a in _per_annotator([a for a in settled_from if a.id < annotation.id])
                    )
                out.append(
                    {
                        "study": row.name,
                        "annotation_id": annotation.id,
                        "annotator": names.get(annotation.rater_id, "?"),
                        "case": keys.get(item.case_id, ""),
                        "item": item.id,
                        "item_kind": item.kind,
                        "adjudicates_item": item.adjudicates_id or "",
                        "settles": settles,
                        "source": annotation.source,
                        "system": systems.get(item.system_a_id, ""),
                        "generation_id": item.generation_a_id,
                        "report": annotation.report,
                        "findings": annotation.findings,
                        "time_on_task_s": annotation.time_on_task_s,
                        "assigned_at": _iso(assignments[annotation.assignment_id].created_at),
                        "submitted_at": _iso(annotation.submitted_at),
                        "supersedes_id": annotation.supersedes_id,
                        "superseded": annotation.id in superseded,
                        "synthetic": synthetic,
                        "study_config_hash": row.config_hash or "",
                        "study_seed": seed,
                        "study_design_hash": design_hash,
                        "study_amendments": amended,
                        "exported_at": exported_at,
                        "export": (
                            f"{EXPORT_VERSION}; all annotations incl. corrections; "
                            f"{RESEARCH_NOTICE}"
                        ),
                    }
                )
        return sorted(out, key=lambda r: r["annotation_id"])


def export_annotations(store: Store, study: int | str, fmt: str = "csv") -> str:
    """The annotations of a study as CSV (findings as JSON text) or JSONL (as an object)."""
    if fmt not in ("csv", "jsonl"):
        raise StudyError(f"format {fmt!r}: use csv or jsonl")
    rows = annotation_rows(store, study)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_FIELDS))
    writer.writeheader()
    for r in rows:
        # A report such as =HYPERLINK(...) must open as text in a spreadsheet.
        r = {**r, "findings": json.dumps(r["findings"], sort_keys=True)}
        writer.writerow({k: "" if v is None else csv_cell(v) for k, v in r.items()})
    return buffer.getvalue()


def is_annotation_study(store: Store, study: int | str) -> bool:
    """Whether `study` is an annotation study (pages and commands choose their path by it)."""
    with store.session() as session:
        return _study_kind(find_study(session, study)) == ANNOTATION_KIND


def annotation_studies(store: Store, rater_id: int) -> list[int]:
    """Ids of the started annotation studies the account is an active member of."""
    with store.session() as session:
        rows = session.execute(
            select(Study)
            .join(StudyRater, StudyRater.study_id == Study.id)
            .where(
                StudyRater.account_id == rater_id,
                StudyRater.active.is_(True),
                Study.status != "draft",
            )
            .order_by(Study.id)
        ).scalars()
        return [s.id for s in rows if _study_kind(s) == ANNOTATION_KIND]
