"""Adjudication: items whose judgments disagree beyond a rule go to a senior rater's queue.

A disagreement is read from an item's current judgments, one per rater (a rater's duplicate
counts once, with the latest answer, as in preference harvesting): the raters chose different
outcomes (`preference_split`), or one report's scores on the form's harm criterion differ by
at least `harm_spread`. Each such item gets one adjudication item (kind `adjudication`,
`adjudicates_id` naming it, the same case and reports) assigned to the senior rater, who is on
the panel with role `adjudicator` and never gets regular tasks. The senior rater works through
the ordinary rating page (`next_assignment` / `submit_judgment`); the adjudicated answer is
that judgment: who, when, which item, under which rule (the queueing is an amendment of the
design, with the rule). Reader statistics leave adjudication judgments out (they are not
another rater's reading); preference harvesting can let them decide (`adjudication="use"`).
"""

from __future__ import annotations

import random
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studies.readers.design import ANNOTATION_KIND, StudyError, study_kind
from studies.readers.form import criteria
from studies.readers.judgments import current_judgments, study_form
from studies.readers.panel import PanelChange, _account, _amended, _change, _membership, _running
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Annotation,
    Assignment,
    Judgment,
    Study,
    StudyItem,
    StudyRater,
)

ADJUDICATION_KIND = "adjudication"


@dataclass(frozen=True)
class AdjudicationRule:
    """When an item's judgments disagree enough to need a senior rater."""

    # The raters chose different outcomes (a / b / tie / both_bad).
    preference_split: bool = True
    # One report's scores on the harm criterion differ by at least this (None: not checked).
    harm_spread: int | None = 2

    def check(self) -> None:
        if self.harm_spread is not None and not 1 <= self.harm_spread <= 4:
            raise StudyError("harm_spread: a difference of 1 to 4 points on the 1-5 scale")
        if not self.preference_split and self.harm_spread is None:
            raise StudyError("adjudication rule: choose a preference split, a harm spread, or both")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _votes(session: Session, study_id: int) -> dict[int, dict[int, Judgment]]:
    """item id -> rater id -> that rater's latest current judgment of the item."""
    rows = sorted(current_judgments(session, study_id), key=lambda r: (r[0].submitted_at, r[0].id))
    by_item: dict[int, dict[int, Judgment]] = defaultdict(dict)
    for judgment, assignment in rows:
        by_item[assignment.item_id][judgment.rater_id] = judgment
    return by_item


def _reasons(judgments: list[Judgment], rule: AdjudicationRule, harm_key: str | None) -> list[str]:
    reasons = []
    if rule.preference_split and len({j.winner for j in judgments}) > 1:
        reasons.append("preference split: " + "/".join(sorted(j.winner for j in judgments)))
    if rule.harm_spread is not None and harm_key is not None:
        for side in ("a", "b"):
            values = [
                (j.likert.get(side) or {}).get(harm_key)
                for j in judgments
                if isinstance((j.likert.get(side) or {}).get(harm_key), int)
            ]
            if len(values) >= 2 and max(values) - min(values) >= rule.harm_spread:
                reasons.append(
                    f"{harm_key} of report {side.upper()}: {min(values)} to {max(values)}"
                )
    return reasons


def disagreements(session: Session, study: Study, rule: AdjudicationRule) -> dict[int, list[str]]:
    """Regular item id -> why its raters disagree beyond `rule` (items with >= 2 raters)."""
    rule.check()
    harm = next((c.key for c in criteria(study_form(study.config)) if c.harm), None)
    kinds = dict(
        session.execute(
            select(StudyItem.id, StudyItem.kind).where(StudyItem.study_id == study.id)
        ).all()
    )
    found = {}
    for item_id, by_rater in _votes(session, study.id).items():
        if kinds.get(item_id) != "regular" or len(by_rater) < 2:
            continue
        reasons = _reasons(list(by_rater.values()), rule, harm)
        if reasons:
            found[item_id] = reasons
    return found


def queue_adjudication(
    store: Store,
    study: int | str,
    adjudicator: str,
    rule: AdjudicationRule | None = None,
    *,
    actor_id: int | None = None,
) -> PanelChange:
    """Send every item that disagrees beyond `rule` (and is not queued yet) to the senior
    rater `adjudicator`, who joins the panel as adjudicator if not on it; one amendment.
    (An annotation study's cases:
    studies.readers.annotation_results.queue_annotation_adjudication.)"""
    rule = rule or AdjudicationRule()
    rule.check()

    def find(session: Session, row: Study) -> dict[int, list[str]]:
        if study_kind(row) == ANNOTATION_KIND:
            raise StudyError(
                f"study {row.name!r} is an annotation study: its disagreements are between "
                "annotations (queue them with `medvision studies annotations --adjudicator`)"
            )
        return disagreements(session, row, rule)

    return queue_items(store, study, adjudicator, find, rule.to_dict(), actor_id=actor_id)


def queue_items(
    store: Store,
    study: int | str,
    adjudicator: str,
    find: Callable[[Session, Study], dict[int, list[str]]],
    rule: dict[str, Any],
    *,
    actor_id: int | None = None,
) -> PanelChange:
    """The queueing itself, for any kind of item: `find(session, study)` names the items
    that need a senior rater (item id -> reasons); each not queued yet gets one
    adjudication item (the same case and reports) assigned to `adjudicator`, who joins the
    panel as adjudicator if not on it; one amendment, with `rule`."""

    def work(session: Session) -> PanelChange:
        row = _running(session, study)
        account = _account(session, adjudicator)
        if not account.active:
            raise StudyError(f"adjudicator: account {account.username!r} is deactivated")
        membership = _membership(session, row.id, account.id)
        if membership is not None and membership.role != "adjudicator":
            raise StudyError(
                f"adjudicator: {account.username!r} rates in this study; choose a senior rater "
                "who is not on its panel"
            )
        if membership is None:
            session.add(StudyRater(study_id=row.id, account_id=account.id, role="adjudicator"))
        elif not membership.active:
            membership.active, membership.left_at = True, None
        queued = set(
            session.scalars(
                select(StudyItem.adjudicates_id).where(
                    StudyItem.study_id == row.id, StudyItem.kind == ADJUDICATION_KIND
                )
            )
        )
        found = {k: v for k, v in find(session, row).items() if k not in queued}
        last = session.scalar(
            select(func.max(Assignment.order_index)).where(
                Assignment.study_id == row.id, Assignment.rater_id == account.id
            )
        )
        index = -1 if last is None else last
        rng = random.Random(f"medvision-adjudication:{row.id}:{len(queued)}")
        for item_id in sorted(found):
            item = session.get(StudyItem, item_id)
            copy = StudyItem(
                study_id=row.id,
                case_id=item.case_id,
                system_a_id=item.system_a_id,
                system_b_id=item.system_b_id,
                generation_a_id=item.generation_a_id,
                generation_b_id=item.generation_b_id,
                kind=ADJUDICATION_KIND,
                overlap=1,
                adjudicates_id=item.id,
            )
            session.add(copy)
            session.flush()
            index += 1
            session.add(
                Assignment(
                    token=secrets.token_urlsafe(24),
                    study_id=row.id,
                    rater_id=account.id,
                    item_id=copy.id,
                    order_index=index,
                    a_on_left=rng.random() < 0.5,
                    is_duplicate=False,
                )
            )
        detail = {
            "rater": account.username,
            "rule": rule,
            "moved": 0,
            "items": {str(k): v for k, v in sorted(found.items())},
        }
        return _amended(
            session,
            row,
            "adjudication.queue",
            detail,
            actor_id,
            moved=0,
            added=len(found),
            stranded=0,
        )

    return _change(store, work)


@dataclass(frozen=True)
class Adjudication:
    """The senior rater's answer for one item, with where it comes from."""

    item_id: int  # the item adjudicated
    winner: str  # a | b | tie | both_bad
    judgment_id: int
    adjudicator: str
    submitted_at: datetime | None
    likert: dict[str, Any]

    def provenance(self) -> dict[str, Any]:
        return {
            "winner": self.winner,
            "judgment_id": self.judgment_id,
            "adjudicator": self.adjudicator,
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
        }


def adjudicated_answers(session: Session, study_id: int) -> dict[int, Adjudication]:
    """Adjudicated item id -> the current judgment of its adjudication item."""
    targets = dict(
        session.execute(
            select(StudyItem.id, StudyItem.adjudicates_id).where(
                StudyItem.study_id == study_id, StudyItem.kind == ADJUDICATION_KIND
            )
        ).all()
    )
    if not targets:
        return {}
    names = dict(session.execute(select(Account.id, Account.username)).all())
    out = {}
    for judgment, assignment in current_judgments(session, study_id):
        target = targets.get(assignment.item_id)
        if target is None:
            continue
        out[target] = Adjudication(
            target,
            judgment.winner,
            judgment.id,
            names.get(judgment.rater_id, "?"),
            judgment.submitted_at,
            dict(judgment.likert or {}),
        )
    return out


@dataclass(frozen=True)
class QueueState:
    adjudicator: str
    queued: int
    done: int


def adjudication_queue(store: Store, study: int | str) -> list[QueueState]:
    """Per senior rater: items queued and adjudicated so far (for the admin page; an
    annotation study's items count as done once annotated)."""
    from studies.readers.design import find_study

    with store.session() as session:
        row = find_study(session, study)
        rows = session.execute(
            select(
                Account.username,
                func.count(func.distinct(Assignment.id)),
                func.count(
                    func.distinct(func.coalesce(Judgment.assignment_id, Annotation.assignment_id))
                ),
            )
            .join(Assignment, Assignment.rater_id == Account.id)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .outerjoin(Judgment, Judgment.assignment_id == Assignment.id)
            .outerjoin(Annotation, Annotation.assignment_id == Assignment.id)
            .where(Assignment.study_id == row.id, StudyItem.kind == ADJUDICATION_KIND)
            .group_by(Account.username)
            .order_by(Account.username)
        ).all()
        return [QueueState(name, int(n), int(done)) for name, n, done in rows]
