"""The one SQLAlchemy schema of the workbench. Alembic migrations live in migrations/.

Media never lives in the database: cases hold paths relative to the benchmark root plus
their sha256. Judgments are append-only (a correction supersedes, never updates).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamp:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# --- benchmarks and cases -----------------------------------------------------------


class Benchmark(Timestamp, Base):
    __tablename__ = "benchmarks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    loader: Mapped[str] = mapped_column(String(100))
    # Absolute path of the dataset root; case media paths are relative to it.
    root: Mapped[str] = mapped_column(Text)
    task: Mapped[str] = mapped_column(String(50))  # report | vqa | cxr-report | video-report
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    cases: Mapped[list[Case]] = relationship(back_populates="benchmark")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("benchmark_id", "case_key", name="uq_case_key"),
        Index("ix_cases_benchmark_split", "benchmark_id", "split"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    case_key: Mapped[str] = mapped_column(String(300))
    split: Mapped[str] = mapped_column(String(20))
    modality: Mapped[str] = mapped_column(String(20))  # image | video | frames
    # [{"path": relative path, "sha256": hex, "kind": "image"|"video"|"frames"}]
    media: Mapped[list[Any]] = mapped_column(default=list)
    references: Mapped[list[Any]] = mapped_column(default=list)
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Structured ground-truth findings in the clinical-finding schema (metrics.clinical).
    findings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Hash of everything above: a changed file or text changes it, re-import updates.
    content_hash: Mapped[str] = mapped_column(String(64))

    benchmark: Mapped[Benchmark] = relationship(back_populates="cases")


# --- systems, runs and the generation cache -----------------------------------------


class System(Timestamp, Base):
    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    version: Mapped[str] = mapped_column(String(50), default="1")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text, default="")


class Run(Timestamp, Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    system_id: Mapped[int] = mapped_column(ForeignKey("systems.id", ondelete="CASCADE"))
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    split: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    n_cases: Mapped[int] = mapped_column(Integer, default=0)
    n_done: Mapped[int] = mapped_column(Integer, default=0)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    system: Mapped[System] = relationship()
    benchmark: Mapped[Benchmark] = relationship()


class Generation(Timestamp, Base):
    """One cached report: keyed by (system fingerprint, case, prompt hash, input hash).

    The input hash is the hash of what the generator was handed for the case (media
    hashes, question, reference); a case whose content changed in place misses the cache.
    """

    __tablename__ = "generations"
    __table_args__ = (
        UniqueConstraint(
            "system_fingerprint", "case_id", "prompt_hash", "input_hash", name="uq_generation"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    system_fingerprint: Mapped[str] = mapped_column(String(64))
    system_id: Mapped[int | None] = mapped_column(
        ForeignKey("systems.id", ondelete="SET NULL"), nullable=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    prompt_hash: Mapped[str] = mapped_column(String(64))
    # studies.systems.runs.case_input_hash of the case when this report was made; null on
    # rows written without it (they never count as cached).
    input_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), nullable=True
    )
    text: Mapped[str] = mapped_column(Text)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device: Mapped[str | None] = mapped_column(String(100), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- accounts and access ------------------------------------------------------------


class Account(Timestamp, Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    role: Mapped[str] = mapped_column(String(20))  # admin | rater
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Invite(Timestamp, Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), nullable=True
    )
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    used_by: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )


class AuthSession(Timestamp, Base):
    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- reader studies -----------------------------------------------------------------


class Study(Timestamp, Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")  # draft|active|paused|closed
    # The frozen configuration (benchmark, split, cases, systems, comparisons, overlap, seed,
    # form, guidelines); config_hash is its sha256 once started.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    guidelines: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StudyRater(Timestamp, Base):
    __tablename__ = "study_raters"
    __table_args__ = (UniqueConstraint("study_id", "account_id", name="uq_study_rater"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    # False once deactivated on a running study (migration 0004): judgments kept, no new tasks.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # rater | adjudicator (a senior rater settling disagreements; no regular tasks; 0005).
    role: Mapped[str] = mapped_column(String(20), default="rater", server_default="rater")


class StudyAmendment(Base):
    """One change of a started study's panel (studies.readers.panel): numbered per study and
    hashed over the previous amendment's hash (the first over the study's config hash)."""

    __tablename__ = "study_amendments"
    __table_args__ = (UniqueConstraint("study_id", "number", name="uq_study_amendment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(50))  # rater.add | rater.deactivate | ...
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class StudyItem(Base):
    """One pair to judge: a case and two generations (canonical order: system_a < system_b)."""

    __tablename__ = "study_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    system_a_id: Mapped[int] = mapped_column(ForeignKey("systems.id"))
    system_b_id: Mapped[int] = mapped_column(ForeignKey("systems.id"))
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id"))
    kind: Mapped[str] = mapped_column(String(20), default="regular")  # regular|gold|adjudication
    gold_answer: Mapped[str | None] = mapped_column(String(20), nullable=True)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    # An adjudication item: the item whose disagreeing judgments it settles (migration 0005).
    adjudicates_id: Mapped[int | None] = mapped_column(
        ForeignKey("study_items.id"),
        nullable=True,
    )


class Assignment(Timestamp, Base):
    """One rater's task; `token` is the opaque id a rater page may hold (never the row id)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("rater_id", "item_id", "is_duplicate", name="uq_assignment"),
        Index("ix_assignments_rater_order", "study_id", "rater_id", "order_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("study_items.id", ondelete="CASCADE"))
    order_index: Mapped[int] = mapped_column(Integer)
    # True when system_a's report is shown on the left ("Report A").
    a_on_left: Mapped[bool] = mapped_column(Boolean)
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the task may be shown (null: in order, at once). A duplicate of a study with a
    # washout in days starts at WAITS_FOR_ORIGINAL; its original's judgment sets it (0006);
    # a calibration study's main tasks wait at WAITS_FOR_CALIBRATION until the rater passes.
    available_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# A duplicate that waits for its original to be judged (then: judged at + washout days).
WAITS_FOR_ORIGINAL = datetime(9999, 12, 31, tzinfo=UTC)
# A main-study task of a rater who has not passed the study's calibration yet.
WAITS_FOR_CALIBRATION = datetime(9999, 12, 30, tzinfo=UTC)


class Judgment(Base):
    """Append-only: a correction is a new row whose `supersedes_id` names the old one.

    The database holds the rules too (migration 0003): one first judgment per assignment and
    each judgment superseded at most once (so one current judgment per task), a correction
    supersedes a judgment of the same task, and UPDATE/DELETE are refused by triggers (as on
    the audit log).
    """

    __tablename__ = "judgments"
    __table_args__ = (
        UniqueConstraint("submission_key", name="uq_judgment_submission"),
        Index("ix_judgments_assignment", "assignment_id"),
        Index(
            "uq_judgments_first",
            "assignment_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
        Index("uq_judgments_supersedes", "supersedes_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="RESTRICT"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    # Idempotency key: a double submit carries the same key and writes nothing new.
    submission_key: Mapped[str] = mapped_column(String(100))
    # Preference as seen on screen (left/right) and mapped to systems (a/b/tie/both_bad).
    preference_shown: Mapped[str] = mapped_column(String(20))
    winner: Mapped[str] = mapped_column(String(20))
    likert: Mapped[dict[str, Any]] = mapped_column(default=dict)
    comment: Mapped[str] = mapped_column(Text, default="")
    time_on_task_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("judgments.id", ondelete="RESTRICT"), nullable=True
    )
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Annotation(Base):
    """An expert's annotation of a case in an annotation study (studies.readers.annotation):
    the reference report as written or corrected, and the structured findings (the schema of
    metrics.clinical). Append-only like judgments (migration 0007): a correction is a new row
    whose `supersedes_id` names the old one; one first annotation per assignment."""

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("submission_key", name="uq_annotation_submission"),
        Index("ix_annotations_assignment", "assignment_id"),
        Index(
            "uq_annotations_first",
            "assignment_id",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
        Index("uq_annotations_supersedes", "supersedes_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="RESTRICT"))
    rater_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    submission_key: Mapped[str] = mapped_column(String(100))
    # written (from scratch) | corrected (a model's report edited) | adjudicated
    source: Mapped[str] = mapped_column(String(20))
    report: Mapped[str] = mapped_column(Text, default="")
    findings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    time_on_task_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="RESTRICT"), nullable=True
    )
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseFlag(Base):
    """A rater's "cannot assess" for a task (image quality, media broken, other + text):
    append-only (migration 0007). What happens to the item follows the study's flag policy
    (studies.readers.flags)."""

    __tablename__ = "case_flags"
    __table_args__ = (UniqueConstraint("submission_key", name="uq_case_flag_submission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="RESTRICT"), index=True
    )
    rater_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="RESTRICT"))
    submission_key: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(30))  # image_quality | media_broken | other
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FlaggedReport(Timestamp, Base):
    __tablename__ = "flagged_reports"
    __table_args__ = (UniqueConstraint("study_id", "generation_id", name="uq_flagged"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only: UPDATE and DELETE are refused by triggers (migration 0003)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
    )
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- training -----------------------------------------------------------------------


class TrainingJob(Timestamp, Base):
    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # sft | dpo
    status: Mapped[str] = mapped_column(String(20), default="pending")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_dir: Mapped[str] = mapped_column(Text)
    log: Mapped[list[Any]] = mapped_column(default=list)  # [{"step", "loss", ...}]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    system_id: Mapped[int | None] = mapped_column(
        ForeignKey("systems.id", ondelete="SET NULL"), nullable=True
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
