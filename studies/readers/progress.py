"""Reading a study's state: the list of studies, progress per rater and pair, flagged
reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, union

from studies.readers.design import find_study
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Annotation,
    Assignment,
    Case,
    CaseFlag,
    FlaggedReport,
    Generation,
    Judgment,
    Study,
    StudyItem,
    StudyRater,
    System,
)


@dataclass
class StudySummary:
    id: int
    name: str
    status: str
    config_hash: str | None
    n_raters: int
    n_assignments: int
    n_done: int
    created_at: datetime | None
    started_at: datetime | None


def _done_assignments(study_id: int):  # noqa: ANN202
    """The study's tasks that are done: judged (a comparison) or annotated (an annotation
    study's tasks have annotations, not judgments)."""
    judged = (
        select(Judgment.assignment_id)
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .where(Assignment.study_id == study_id)
    )
    annotated = (
        select(Annotation.assignment_id)
        .join(Assignment, Assignment.id == Annotation.assignment_id)
        .where(Assignment.study_id == study_id)
    )
    return union(judged, annotated)


def list_studies(store: Store) -> list[StudySummary]:
    with store.session() as session:
        out = []
        for row in session.scalars(select(Study).order_by(Study.id)):
            n_raters = session.scalar(
                select(func.count()).select_from(StudyRater).where(StudyRater.study_id == row.id)
            )
            n_assignments = session.scalar(
                select(func.count()).select_from(Assignment).where(Assignment.study_id == row.id)
            )
            n_done = session.scalar(
                select(func.count()).select_from(_done_assignments(row.id).subquery())
            )
            out.append(
                StudySummary(
                    id=row.id,
                    name=row.name,
                    status=row.status,
                    config_hash=row.config_hash,
                    n_raters=n_raters or 0,
                    n_assignments=n_assignments or 0,
                    n_done=n_done or 0,
                    created_at=row.created_at,
                    started_at=row.started_at,
                )
            )
        return out


@dataclass
class RaterProgress:
    username: str
    display_name: str
    assigned: int
    done: int
    last_submitted_at: datetime | None
    # Off the panel since a change of the running study (their judgments stay), or the
    # study's senior rater (adjudicator).
    active: bool = True
    role: str = "rater"
    # Tasks the rater flagged as ones they cannot assess and still holds (excluded, or
    # waiting for another rater): not judged, not left to do.
    flagged: int = 0

    @property
    def remaining(self) -> int:
        return self.assigned - self.done - self.flagged


@dataclass
class PairProgress:
    system_a: str
    system_b: str
    items: int
    needed: int  # items x overlap (regular items only)
    done: int  # judged regular, non-duplicate assignments
    # Copies flagged by their rater and left out ("exclude" policy), or waiting for a rater
    # who has not seen the case ("reassign" with nobody free): not judged, not to come.
    flagged: int = 0


@dataclass
class StudyProgress:
    study: str
    status: str
    raters: list[RaterProgress]
    pairs: list[PairProgress]

    @property
    def assigned(self) -> int:
        return sum(r.assigned for r in self.raters)

    @property
    def done(self) -> int:
        return sum(r.done for r in self.raters)


def study_progress(store: Store, study: int | str) -> StudyProgress:
    """Done / assigned per rater, and judged / needed per pair of systems (admin only)."""
    with store.session() as session:
        row = find_study(session, study)
        done_ids = set(session.scalars(_done_assignments(row.id)))
        last = dict(
            session.execute(
                select(Judgment.rater_id, func.max(Judgment.submitted_at))
                .join(Assignment, Assignment.id == Judgment.assignment_id)
                .where(Assignment.study_id == row.id)
                .group_by(Judgment.rater_id)
            ).all()
        )
        for rater_id, moment in session.execute(
            select(Annotation.rater_id, func.max(Annotation.submitted_at))
            .join(Assignment, Assignment.id == Annotation.assignment_id)
            .where(Assignment.study_id == row.id)
            .group_by(Annotation.rater_id)
        ).all():
            last[rater_id] = max(filter(None, [last.get(rater_id), moment]))
        accounts = {
            a.id: a
            for a in session.scalars(
                select(Account)
                .join(StudyRater, StudyRater.account_id == Account.id)
                .where(StudyRater.study_id == row.id)
            )
        }
        membership = {
            account_id: (active, role)
            for account_id, active, role in session.execute(
                select(StudyRater.account_id, StudyRater.active, StudyRater.role).where(
                    StudyRater.study_id == row.id
                )
            )
        }
        # Flagged by the rater who holds the task (a task handed on is work for its new one).
        flagged_ids = set(
            session.scalars(
                select(CaseFlag.assignment_id)
                .join(Assignment, Assignment.id == CaseFlag.assignment_id)
                .where(Assignment.study_id == row.id, CaseFlag.rater_id == Assignment.rater_id)
            )
        )
        assigned: Counter[int] = Counter()
        done: Counter[int] = Counter()
        flagged: Counter[int] = Counter()
        pair_done: Counter[tuple[int, int]] = Counter()
        pair_flagged: Counter[tuple[int, int]] = Counter()
        rows = session.execute(
            select(
                Assignment.id,
                Assignment.rater_id,
                Assignment.is_duplicate,
                StudyItem.kind,
                StudyItem.system_a_id,
                StudyItem.system_b_id,
            )
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .where(Assignment.study_id == row.id)
        ).all()
        for assignment_id, rater_id, is_duplicate, kind, sa, sb in rows:
            assigned[rater_id] += 1
            if assignment_id in done_ids:
                done[rater_id] += 1
                if kind == "regular" and not is_duplicate:
                    pair_done[(sa, sb)] += 1
            elif assignment_id in flagged_ids:
                flagged[rater_id] += 1
                if kind == "regular" and not is_duplicate:
                    pair_flagged[(sa, sb)] += 1
        names = dict(session.execute(select(System.id, System.name)).all())
        pair_items = session.execute(
            select(
                StudyItem.system_a_id,
                StudyItem.system_b_id,
                func.count(),
                func.sum(StudyItem.overlap),
            )
            .where(StudyItem.study_id == row.id, StudyItem.kind == "regular")
            .group_by(StudyItem.system_a_id, StudyItem.system_b_id)
        ).all()
        raters = [
            RaterProgress(
                username=account.username,
                display_name=account.display_name or "",
                assigned=assigned[account_id],
                done=done[account_id],
                last_submitted_at=last.get(account_id),
                active=bool(membership[account_id][0]),
                role=membership[account_id][1],
                flagged=flagged[account_id],
            )
            for account_id, account in sorted(accounts.items(), key=lambda kv: kv[1].username)
        ]
        pairs = [
            PairProgress(
                system_a=names.get(sa, str(sa)),
                system_b=names.get(sb, str(sb)),
                items=int(n),
                needed=int(needed or 0),
                done=pair_done[(sa, sb)],
                flagged=pair_flagged[(sa, sb)],
            )
            for sa, sb, n, needed in pair_items
        ]
        return StudyProgress(study=row.name, status=row.status, raters=raters, pairs=pairs)


@dataclass
class FlaggedInfo:
    case_key: str
    system: str
    reason: str
    text: str


def flagged_reports(store: Store, study: int | str) -> list[FlaggedInfo]:
    with store.session() as session:
        row = find_study(session, study)
        result = session.execute(
            select(Case.case_key, System.name, FlaggedReport.reason, Generation.text)
            .join(Generation, Generation.id == FlaggedReport.generation_id)
            .join(Case, Case.id == Generation.case_id)
            .outerjoin(System, System.id == Generation.system_id)
            .where(FlaggedReport.study_id == row.id)
            .order_by(Case.case_key)
        ).all()
        return [FlaggedInfo(k, s or "?", r, t) for k, s, r, t in result]
