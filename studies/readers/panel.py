"""Changing the panel of a running study: add a rater, deactivate or replace one, and hand
on tasks not done in time. Each change is an amendment of the frozen design
(`StudyAmendment`: numbered, hashed over the previous hash; the first over the config hash),
shown in the judgment export and in the reader-table footers.

The overlap guarantee ("never more copies than the overlap; every item reaches the overlap")
holds by construction: a task that has to change hands is MOVED (its assignment row gets the
new rater, a new token and a place at the end of their order), never copied, and only while it
has no judgment. So every item keeps exactly `overlap` regular assignments, and the unique
(rater, item) key keeps two copies from one rater. A move locks the assignment row and reads
its judgments after the lock (PostgreSQL), or runs under SQLite's write lock, so a rater who
submits at the same moment either gets the task in first (it stays theirs) or finds the task
link changed (nothing written). A task that no other active rater can take (they all hold its
item) stays where it is and is reported; the next rater added takes it.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from studies.readers.amendments import (
    AMENDMENT_ACTIONS,
    amendment_hash,
)
from studies.readers.calibration import WAITS_FOR_CALIBRATION, calibration_score, gate_uncalibrated
from studies.readers.design import StudyError, find_study, flag_policy
from studies.readers.writes import write_transaction as _write_transaction
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Annotation,
    Assignment,
    CaseFlag,
    Judgment,
    Study,
    StudyAmendment,
    StudyItem,
    StudyRater,
    aware,
    utcnow,
)

# The item kinds whose tasks change hands: a comparison's regular pairs and an annotation
# study's cases (gold and training items go to every rater; adjudication to the senior).
MOVABLE_KINDS = ("regular", "annotation")

# pg_advisory_xact_lock's first key: panel changes of one study run one at a time.
_PANEL_LOCK = 15_0004


@dataclass
class PanelChange:
    """What one amendment did."""

    study: str
    action: str
    number: int
    hash: str
    moved: int = 0  # tasks that changed hands
    added: int = 0  # new assignments (gold items of an added rater)
    stranded: int = 0  # tasks no active rater could take (they all hold that item)
    detail: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        stranded = (
            f"; {self.stranded} tasks wait for another rater (every active rater already has "
            "their item): add a rater"
            if self.stranded
            else ""
        )
        return (
            f"Amendment {self.number} of study {self.study!r} ({AMENDMENT_ACTIONS[self.action]}): "
            f"{self.moved} tasks moved, {self.added} added{stranded}. Hash {self.hash[:16]}."
        )


def _lock_panel(session: Session, study: Study) -> None:
    """Serialise panel changes of one study without blocking submits: on PostgreSQL an
    advisory lock and a share lock on the study row (submits share-lock it too; pause and
    close wait). SQLite: the caller holds the database write lock already."""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(
        text("SELECT pg_advisory_xact_lock(:key, :study)"),
        {"key": _PANEL_LOCK, "study": study.id},
    )
    session.execute(select(Study.id).where(Study.id == study.id).with_for_update(read=True))
    session.refresh(study)


def _running(session: Session, study: int | str) -> Study:
    row = find_study(session, study)
    _lock_panel(session, row)
    if row.status not in ("active", "paused"):
        raise StudyError(
            f"study {row.name!r} is {row.status}: its panel changes only while it runs "
            "(active or paused)"
            + (
                "; enrol raters in a draft study with `studies enrol`"
                if row.status == "draft"
                else ""
            )
        )
    return row


def _account(session: Session, username: str) -> Account:
    account = session.scalar(select(Account).where(Account.username == username.strip().lower()))
    if account is None:
        raise StudyError(f"rater: no account named {username!r}")
    return account


def _membership(session: Session, study_id: int, account_id: int) -> StudyRater | None:
    return session.scalar(
        select(StudyRater).where(
            StudyRater.study_id == study_id, StudyRater.account_id == account_id
        )
    )


def _amend(
    session: Session, study: Study, action: str, detail: dict[str, Any], actor_id: int | None
) -> StudyAmendment:
    last = session.scalar(
        select(StudyAmendment)
        .where(StudyAmendment.study_id == study.id)
        .order_by(StudyAmendment.number.desc())
        .limit(1)
    )
    # Every panel change ends here: tasks moved to a rater who has not passed the study's
    # calibration wait like the rest of their main study.
    if ((study.config or {}).get("design") or {}).get("calibration_threshold"):
        gate_uncalibrated(session, study.id)
    number = 1 if last is None else last.number + 1
    previous = (study.config_hash or "") if last is None else last.hash
    at = utcnow()
    detail = {**detail, "at": at.isoformat()}
    digest = amendment_hash(previous, number, action, detail)
    amendment = StudyAmendment(
        study_id=study.id,
        number=number,
        action=action,
        detail=detail,
        actor_id=actor_id,
        at=at,
        previous_hash=previous,
        hash=digest,
    )
    session.add(amendment)
    record(
        session,
        actor_id,
        f"study.amend.{action}",
        "study",
        study.id,
        {"number": number, "hash": digest, **detail},
    )
    session.flush()
    return amendment


# --- moving tasks ---------------------------------------------------------------------


def _amended(
    session: Session,
    study: Study,
    action: str,
    detail: dict[str, Any],
    actor_id: int | None,
    *,
    moved: int,
    added: int,
    stranded: int,
) -> PanelChange:
    """Record the amendment and say what it changed."""
    amendment = _amend(session, study, action, detail, actor_id)
    return PanelChange(
        study.name, action, amendment.number, amendment.hash, moved, added, stranded, detail
    )


class _Panel:
    """The study's assignments as a move sees them: who holds which item, who has how much
    left. Judged tasks never move; a task moves together with its not-yet-judged duplicate."""

    def __init__(self, session: Session, study: Study) -> None:
        self.session = session
        self.study = study
        # Done: judged, or (an annotation study's task) annotated.
        judged = or_(
            exists().where(Judgment.assignment_id == Assignment.id),
            exists().where(Annotation.assignment_id == Assignment.id),
        )
        rows = session.execute(
            select(
                Assignment.id,
                Assignment.rater_id,
                Assignment.item_id,
                Assignment.is_duplicate,
                Assignment.order_index,
                judged.label("judged"),
                StudyItem.kind,
                StudyItem.system_a_id,
                StudyItem.system_b_id,
            )
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .where(Assignment.study_id == study.id)
        ).all()
        self.rows = {r.id: r for r in rows}
        self.by_item: dict[int, list[Any]] = {}
        for r in rows:
            self.by_item.setdefault(r.item_id, []).append(r)
        self.holder: dict[int, int] = {r.id: r.rater_id for r in rows}
        self.holds: set[tuple[int, int]] = {(r.rater_id, r.item_id) for r in rows}
        # Cases a rater flagged as ones they cannot assess (studies.readers.flags): the
        # flagger has seen the item, so it never comes back to them; a flagged task they still
        # hold is not work left. Under the "exclude" policy it stays theirs, excluded; under
        # "reassign" it waits for a rater who can take it.
        flags = session.execute(
            select(CaseFlag.assignment_id, CaseFlag.rater_id)
            .join(Assignment, Assignment.id == CaseFlag.assignment_id)
            .where(Assignment.study_id == study.id)
        ).all()
        self.flagged: set[int] = {a for a, r in flags if self.holder.get(a) == r}
        self.holds |= {(r, self.rows[a].item_id) for a, r in flags if a in self.rows}
        self.policy = flag_policy(study)
        self.remaining: Counter[int] = Counter(
            r.rater_id for r in rows if not r.judged and r.id not in self.flagged
        )
        self.pair_load: Counter[tuple[int, tuple[int, int]]] = Counter(
            (r.rater_id, (r.system_a_id, r.system_b_id)) for r in rows if r.kind in MOVABLE_KINDS
        )
        self.last_index: dict[int, int] = {}
        for r in rows:
            self.last_index[r.rater_id] = max(self.last_index.get(r.rater_id, -1), r.order_index)
        self.active = set(
            session.scalars(
                select(StudyRater.account_id).where(
                    StudyRater.study_id == study.id,
                    StudyRater.active.is_(True),
                    # Senior raters settle disagreements; they never take regular tasks.
                    StudyRater.role == "rater",
                )
            )
        )
        self.moved = 0
        self.stranded = 0
        self.twins: list[Assignment] = []

    def movable(self, rater_id: int) -> list[Any]:
        """The rater's unjudged regular tasks (originals), last in their order first."""
        own = [
            r
            for r in self.rows.values()
            if self.holder[r.id] == rater_id
            and r.kind in MOVABLE_KINDS
            and not r.is_duplicate
            and not r.judged
            and not self._twin_judged(r)
            and not (r.id in self.flagged and self.policy == "exclude")
        ]
        return sorted(own, key=lambda r: -r.order_index)

    def waiting(self) -> list[Any]:
        """Flagged tasks that wait, under the "reassign" policy, for a rater who can take
        them (every other active rater held the item when it was flagged)."""
        if self.policy == "exclude":
            return []
        return [
            r
            for r in (self.rows[a] for a in sorted(self.flagged))
            if r.kind == "regular"  # flags are a comparison's (studies.readers.flags)
            and not r.is_duplicate
            and not r.judged
            and not self._twin_judged(r)
        ]

    def _twin(self, row: Any) -> Any | None:
        return next(
            (
                r
                for r in self.by_item[row.item_id]
                if self.holder[r.id] == self.holder[row.id] and r.is_duplicate != row.is_duplicate
            ),
            None,
        )

    def _twin_judged(self, row: Any) -> bool:
        twin = self._twin(row)
        return twin is not None and bool(twin.judged)

    def recipient(self, row: Any, exclude: set[int]) -> int | None:
        pair = (row.system_a_id, row.system_b_id)
        eligible = [r for r in self.active - exclude if (r, row.item_id) not in self.holds]
        if not eligible:
            return None
        return min(eligible, key=lambda r: (self.remaining[r], self.pair_load[(r, pair)], r))

    def move(self, row: Any, to_rater: int) -> bool:
        """Move the task (and its unjudged duplicate) to `to_rater`; False when a submit got
        in first (the task stays with its rater)."""
        twin = self._twin(row)
        ids = [row.id] + ([twin.id] if twin is not None else [])
        # Lock first, then read the judgments in a new statement: on PostgreSQL's read
        # committed each statement sees what committed before it, so a submit that held the
        # row is seen here.
        self.session.execute(
            select(Assignment.id)
            .where(Assignment.id.in_(ids))
            .order_by(Assignment.id)
            .with_for_update()
        )
        if self.session.scalar(
            select(func.count()).where(Judgment.assignment_id.in_(ids))
        ) or self.session.scalar(select(func.count()).where(Annotation.assignment_id.in_(ids))):
            return False
        source = self.holder[row.id]
        pair = (row.system_a_id, row.system_b_id)
        # A rater who flagged the case has seen it: it never comes back to them.
        seen = row.id in self.flagged
        for assignment_id in ids:
            assignment = self.session.get(Assignment, assignment_id)
            assignment.rater_id = to_rater
            if assignment_id == row.id:
                index = self.last_index.get(to_rater, -1) + 1
                self.last_index[to_rater] = index
                assignment.order_index = index
            else:
                # The duplicate goes after everything this change gives the rater (`finish`),
                # as far from its case as the change allows.
                self.twins.append(assignment)
            # The old link stops working: the former holder's page cannot submit it.
            assignment.token = secrets.token_urlsafe(24)
            self.holder[assignment_id] = to_rater
            if assignment_id in self.flagged:
                self.flagged.discard(assignment_id)  # the flag was its former holder's
            else:
                self.remaining[source] -= 1
            self.remaining[to_rater] += 1
        self.session.flush()
        if not seen:
            self.holds.discard((source, row.item_id))
        self.holds.add((to_rater, row.item_id))
        self.pair_load[(source, pair)] -= 1
        self.pair_load[(to_rater, pair)] += 1
        self.moved += 1
        return True

    def finish(self) -> None:
        """Place the moved duplicates at the end of their new rater's order."""
        for assignment in self.twins:
            index = self.last_index.get(assignment.rater_id, -1) + 1
            self.last_index[assignment.rater_id] = index
            assignment.order_index = index
        self.twins = []
        self.session.flush()

    def hand_on(self, rater_id: int, exclude: set[int]) -> None:
        """Every movable task of `rater_id` to the other active raters, least loaded first."""
        for row in self.movable(rater_id):
            to = self.recipient(row, exclude | {rater_id})
            if to is None:
                self.stranded += 1
                continue
            self.move(row, to)

    def take_stranded(self, rater_id: int) -> None:
        """Tasks left with inactive raters, and flagged tasks waiting for another rater, go
        to `rater_id` where they can."""
        for row in self.waiting():
            if (rater_id, row.item_id) not in self.holds:
                self.move(row, rater_id)
        for source in sorted(set(self.holder.values()) - self.active):
            for row in self.movable(source):
                if (rater_id, row.item_id) not in self.holds:
                    self.move(row, rater_id)

    def balance_towards(self, rater_id: int) -> None:
        """Give `rater_id` tasks from the most loaded active raters until their remaining
        work is no more than one task below the others' average."""
        while True:
            others = [r for r in self.active if r != rater_id]
            if not others:
                return
            average = sum(self.remaining[r] for r in others) / len(others)
            if self.remaining[rater_id] + 1 > average:
                return
            donors = sorted(others, key=lambda r: (-self.remaining[r], r))
            for donor in donors:
                row = next(
                    (r for r in self.movable(donor) if (rater_id, r.item_id) not in self.holds),
                    None,
                )
                if row is not None and self.move(row, rater_id):
                    break
            else:
                return

    def still_stranded(self) -> int:
        return sum(len(self.movable(r)) for r in set(self.holder.values()) - self.active) + len(
            self.waiting()
        )


def _give_gold(session: Session, study: Study, rater_id: int, panel: _Panel) -> int:
    """Every gold item to a newly added rater (gold items go to all raters): a new
    assignment each, and the item's overlap grows by one."""
    added = 0
    # Calibration first (it opens the main study), then gold.
    for item in session.scalars(
        select(StudyItem)
        .where(StudyItem.study_id == study.id, StudyItem.kind.in_(("calibration", "gold")))
        .order_by((StudyItem.kind == "gold"), StudyItem.id)
    ):
        if (rater_id, item.id) in panel.holds:
            continue
        index = panel.last_index.get(rater_id, -1) + 1
        panel.last_index[rater_id] = index
        session.add(
            Assignment(
                token=secrets.token_urlsafe(24),
                study_id=study.id,
                rater_id=rater_id,
                item_id=item.id,
                order_index=index,
                a_on_left=added % 2 == 0,
                is_duplicate=False,
            )
        )
        item.overlap += 1
        panel.holds.add((rater_id, item.id))
        panel.remaining[rater_id] += 1
        added += 1
    session.flush()
    return added


def _add(session: Session, study: Study, account: Account, panel: _Panel) -> tuple[int, bool]:
    """Put `account` on the panel (or back on it); (gold tasks added, newly active)."""
    if account.role not in ("rater", "admin"):
        raise StudyError(f"rater: account {account.username!r} cannot rate")
    if not account.active:
        raise StudyError(f"rater: account {account.username!r} is deactivated")
    membership = _membership(session, study.id, account.id)
    if membership is not None and membership.role != "rater":
        raise StudyError(
            f"rater: {account.username!r} adjudicates this study and cannot also rate it"
        )
    if membership is not None and membership.active:
        return 0, False
    if membership is None:
        session.add(StudyRater(study_id=study.id, account_id=account.id))
    else:
        membership.active = True
        membership.left_at = None
    session.flush()
    panel.active.add(account.id)
    added = _give_gold(session, study, account.id, panel)
    panel.take_stranded(account.id)
    panel.balance_towards(account.id)
    return added, True


def _deactivate(session: Session, study: Study, account: Account, panel: _Panel) -> None:
    membership = _membership(session, study.id, account.id)
    if membership is None:
        raise StudyError(f"rater: {account.username!r} is not on the panel of {study.name!r}")
    if not membership.active:
        raise StudyError(f"rater: {account.username!r} is already deactivated in {study.name!r}")
    membership.active = False
    membership.left_at = utcnow()
    session.flush()
    panel.active.discard(account.id)
    panel.hand_on(account.id, exclude=set())


def _change(store: Store, work) -> PanelChange:  # noqa: ANN001
    """Run `work(session)` in one write transaction (SQLite: the database write lock first)."""
    with _write_transaction(store) as connection, Session(bind=connection) as session:
        change = work(session)
        session.flush()
        return change


def add_rater_in_session(
    session: Session, study: Study, account: Account, *, actor_id: int | None = None
) -> PanelChange | None:
    """Add `account` to a running study inside the caller's transaction (an accepted invite,
    `studies enrol`); None when already an active rater."""
    _lock_panel(session, study)
    panel = _Panel(session, study)
    added, new = _add(session, study, account, panel)
    if not new:
        return None
    detail = {
        "rater": account.username,
        "moved": panel.moved,
        "gold_added": added,
        "stranded": panel.still_stranded(),
    }
    panel.finish()
    return _amended(
        session,
        study,
        "rater.add",
        detail,
        actor_id,
        moved=panel.moved,
        added=added,
        stranded=detail["stranded"],
    )


def add_rater(
    store: Store, study: int | str, username: str, *, actor_id: int | None = None
) -> PanelChange | None:
    """Add a rater to a running study: they get every gold item and a fair share of the tasks
    nobody has judged yet (moved from the most loaded raters). None when already active."""

    def work(session: Session) -> PanelChange | None:
        row = _running(session, study)
        return add_rater_in_session(session, row, _account(session, username), actor_id=actor_id)

    return _change(store, work)


def deactivate_rater(
    store: Store, study: int | str, username: str, *, actor_id: int | None = None
) -> PanelChange:
    """Take a rater off a running study: their judgments stay, their unjudged tasks go to the
    other active raters (least loaded first)."""

    def work(session: Session) -> PanelChange:
        row = _running(session, study)
        account = _account(session, username)
        panel = _Panel(session, row)
        _deactivate(session, row, account, panel)
        detail = {"rater": account.username, "moved": panel.moved, "stranded": panel.stranded}
        panel.finish()
        return _amended(
            session,
            row,
            "rater.deactivate",
            detail,
            actor_id,
            moved=panel.moved,
            added=0,
            stranded=panel.stranded,
        )

    return _change(store, work)


def replace_rater(
    store: Store, study: int | str, old: str, new: str, *, actor_id: int | None = None
) -> PanelChange:
    """`new` takes over `old`'s unjudged tasks (and every gold item); `old` is deactivated.
    One amendment."""

    def work_prefer_replacement(session: Session) -> PanelChange:
        # The replacement first takes the leaving rater's tasks, then the rest is spread.
        row = _running(session, study)
        leaving, joining = _account(session, old), _account(session, new)
        if leaving.id == joining.id:
            raise StudyError("replace: name two different raters")
        membership = _membership(session, row.id, joining.id)
        if membership is not None and membership.active:
            raise StudyError(f"replace: {joining.username!r} is already an active rater")
        leaving_membership = _membership(session, row.id, leaving.id)
        if leaving_membership is None or not leaving_membership.active:
            raise StudyError(
                f"replace: {leaving.username!r} is not an active rater of {row.name!r}"
            )
        panel = _Panel(session, row)
        if membership is None:
            session.add(StudyRater(study_id=row.id, account_id=joining.id))
        else:
            membership.active, membership.left_at = True, None
        leaving_membership.active = False
        leaving_membership.left_at = utcnow()
        session.flush()
        panel.active.add(joining.id)
        panel.active.discard(leaving.id)
        added = _give_gold(session, row, joining.id, panel)
        panel.take_stranded(joining.id)
        # What the replacement cannot hold (it had the item already) goes to the others.
        panel.hand_on(leaving.id, exclude=set())
        detail = {
            "rater": leaving.username,
            "replacement": joining.username,
            "moved": panel.moved,
            "gold_added": added,
            "stranded": panel.stranded,
        }
        panel.finish()
        return _amended(
            session,
            row,
            "rater.replace",
            detail,
            actor_id,
            moved=panel.moved,
            added=added,
            stranded=panel.stranded,
        )

    return _change(store, work_prefer_replacement)


def reclaim_overdue(
    store: Store,
    study: int | str,
    after: timedelta,
    *,
    now: datetime | None = None,
    actor_id: int | None = None,
) -> PanelChange:
    """Hand on the unjudged tasks of every active rater who has submitted nothing in this
    study for `after` (counted from their last judgment, else from when they joined or the
    study started); they stay on the panel with what is left."""
    if after <= timedelta(0):
        raise StudyError("reclaim: the time must be positive, e.g. 7 days")

    def work(session: Session) -> PanelChange:
        row = _running(session, study)
        moment = now or utcnow()
        last: dict[int, datetime] = {}
        for table in (Judgment, Annotation):  # the last answer: a judgment or an annotation
            for rater_id, answered_at in session.execute(
                select(table.rater_id, func.max(table.submitted_at))
                .join(Assignment, Assignment.id == table.assignment_id)
                .where(Assignment.study_id == row.id)
                .group_by(table.rater_id)
            ).all():
                last[rater_id] = max(filter(None, [last.get(rater_id), answered_at]))
        panel = _Panel(session, row)
        joined = dict(
            session.execute(
                select(StudyRater.account_id, StudyRater.created_at).where(
                    StudyRater.study_id == row.id
                )
            ).all()
        )
        overdue = []
        for rater_id in sorted(panel.active):
            since = last.get(rater_id) or max(
                filter(None, [aware(row.started_at), aware(joined.get(rater_id))]),
                default=moment,
            )
            if moment - aware(since) >= after and panel.movable(rater_id):
                overdue.append(rater_id)
        for rater_id in overdue:
            panel.hand_on(rater_id, exclude=set(overdue))
        names = dict(session.execute(select(Account.id, Account.username)).all())
        detail = {
            "after_hours": round(after.total_seconds() / 3600, 2),
            "raters": [names[r] for r in overdue],
            "moved": panel.moved,
            "stranded": panel.stranded,
        }
        panel.finish()
        return _amended(
            session,
            row,
            "tasks.reclaim",
            detail,
            actor_id,
            moved=panel.moved,
            added=0,
            stranded=panel.stranded,
        )

    return _change(store, work)


def hand_on_flagged(
    session: Session, study: Study, assignment_id: int, flagger: Account, reason: str
) -> PanelChange | None:
    """Under the "reassign" flag policy, inside the caller's write transaction: the task its
    rater flagged (with their unjudged duplicate) goes to the least loaded active rater who
    has not seen the item, as an amendment. None when it does not move: a gold, training or
    duplicate task, or no active rater can take it (it waits; the next rater added takes
    it). A move, never a copy: the item keeps its overlap."""
    _lock_panel(session, study)
    panel = _Panel(session, study)
    row = panel.rows.get(assignment_id)
    if row is None or row.id not in {w.id for w in panel.waiting()}:
        return None
    to = panel.recipient(row, exclude={flagger.id})
    if to is None or not panel.move(row, to):
        return None
    panel.finish()
    detail = {
        "rater": flagger.username,
        "to": session.scalar(select(Account.username).where(Account.id == to)),
        "item": row.item_id,
        "reason": reason,
        "moved": panel.moved,
    }
    return _amended(
        session, study, "task.flag", detail, flagger.id, moved=panel.moved, added=0, stranded=0
    )


def admit_rater(
    store: Store, study: int | str, username: str, *, actor_id: int | None = None
) -> int:
    """Let a rater below the calibration threshold into the main study (an amendment);
    returns the number of tasks opened."""

    def work(session: Session) -> int:
        row = _running(session, study)
        account = _account(session, username)
        score = calibration_score(session, account.id, row.id)
        result = session.execute(
            update(Assignment.__table__)
            .where(
                Assignment.study_id == row.id,
                Assignment.rater_id == account.id,
                Assignment.available_at == WAITS_FOR_CALIBRATION,
            )
            .values(available_at=None)
        )
        if not result.rowcount:
            raise StudyError(f"rater: {account.username!r} is not waiting on calibration")
        _amend(
            session,
            row,
            "rater.admit",
            {
                "rater": account.username,
                "moved": 0,
                "calibration": f"{score.correct}/{score.judged}",
            },
            actor_id,
        )
        return int(result.rowcount)

    return _change(store, work)


@dataclass(frozen=True)
class PanelMember:
    username: str
    active: bool
    left_at: datetime | None
    role: str = "rater"  # rater | adjudicator


def panel_members(store: Store, study: int | str) -> list[PanelMember]:
    """The study's raters, active ones first, with when a deactivated one left."""
    with store.session() as session:
        row = find_study(session, study)
        rows = session.execute(
            select(Account.username, StudyRater.active, StudyRater.left_at, StudyRater.role)
            .join(StudyRater, StudyRater.account_id == Account.id)
            .where(StudyRater.study_id == row.id)
            .order_by(StudyRater.active.desc(), Account.username)
        ).all()
        return [
            PanelMember(name, bool(active), aware(left), role) for name, active, left, role in rows
        ]
