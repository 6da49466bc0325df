"""A study's amendments: the numbered, hash-chained record of every change to the frozen
design of a running study (panel changes, adjudication queues), as the export, the reader
tables' footers and the admin page read it. Reading only; the changes are made in
`studies.readers.panel`. Depends on the store alone, so the judgments join and the rating
code can read amendments without importing the panel code."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studies.readers.design import find_study
from studies.store.db import Store
from studies.store.schema import Study, StudyAmendment, aware

# The kinds of amendment, as recorded and as the export names them.
AMENDMENT_ACTIONS = {
    "rater.add": "rater added",
    "rater.deactivate": "rater deactivated",
    "rater.replace": "rater replaced",
    "tasks.reclaim": "tasks not done in time handed on",
    "adjudication.queue": "disagreements sent to adjudication",
    "rater.admit": "rater let in below the calibration threshold",
    "task.flag": "a case its rater could not assess handed to another rater",
}


def amendment_hash(previous_hash: str, number: int, action: str, detail: dict[str, Any]) -> str:
    canonical = json.dumps(
        {"previous": previous_hash, "number": number, "action": action, "detail": detail},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- reading amendments ----------------------------------------------------------------


@dataclass(frozen=True)
class Amendment:
    number: int
    action: str
    detail: dict[str, Any]
    at: datetime | None
    hash: str

    def line(self) -> str:
        who = self.detail.get("rater")
        replacement = self.detail.get("replacement")
        raters = self.detail.get("raters")
        subject = (
            f"{who} by {replacement}"
            if replacement
            else (who or (", ".join(raters) if raters else "nobody overdue"))
        )
        at = self.at.strftime("%Y-%m-%d %H:%M UTC") if self.at else ""
        did = (
            f"{len(self.detail.get('items') or {})} items queued"
            if self.action == "adjudication.queue"
            else f"{self.detail.get('moved', 0)} tasks moved"
        )
        return (
            f"#{self.number} {AMENDMENT_ACTIONS.get(self.action, self.action)}: {subject} "
            f"({did}; {at}; {self.hash[:12]})"
        )


def study_amendments(session: Session, study_id: int) -> list[Amendment]:
    """A study's amendments, in order."""
    return [
        Amendment(a.number, a.action, dict(a.detail or {}), aware(a.at), a.hash)
        for a in session.scalars(
            select(StudyAmendment)
            .where(StudyAmendment.study_id == study_id)
            .order_by(StudyAmendment.number)
        )
    ]


def amendments_summary(amendments: list[Amendment]) -> str:
    """One line for exports and table footers ('' when the design was never amended)."""
    if not amendments:
        return ""
    return (
        f"Design amended {len(amendments)} times (panel changes; hash chain ends "
        f"{amendments[-1].hash[:16]}): " + "; ".join(a.line() for a in amendments)
    )


def verify_amendments(session: Session, study: Study) -> bool:
    """True when every amendment's hash follows from the one before (the first from the
    study's config hash)."""
    previous = study.config_hash or ""
    for amendment in session.scalars(
        select(StudyAmendment)
        .where(StudyAmendment.study_id == study.id)
        .order_by(StudyAmendment.number)
    ):
        if amendment.previous_hash != previous or amendment.hash != amendment_hash(
            previous, amendment.number, amendment.action, dict(amendment.detail or {})
        ):
            return False
        previous = amendment.hash
    return True


def amendment_lines(store: Store, study: int | str) -> list[str]:
    """Each amendment of a study as one line, in order (for the admin page)."""
    with store.session() as session:
        row = find_study(session, study)
        return [a.line() for a in study_amendments(session, row.id)]
