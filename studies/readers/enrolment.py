"""Raters join a study: a draft study directly, a running one through a panel amendment."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from studies.readers.design import StudyError, find_study
from studies.store.audit import record
from studies.store.db import Store
from studies.store.schema import (
    Account,
    StudyRater,
)


def enrol_rater_in_session(
    session: Session, study_id: int, account_id: int, *, actor_id: int | None = None
) -> bool:
    """Enrol inside the caller's transaction; False when already enrolled. A running study
    (active or paused) takes the rater through a panel amendment (studies.readers.panel)."""
    study = find_study(session, study_id)
    account = session.get(Account, account_id)
    if account is None:
        raise StudyError(f"no account with id {account_id}")
    if study.status == "closed":
        raise StudyError(f"study {study.name!r} is closed: no rater can join it")
    if study.status != "draft":
        from studies.readers.panel import add_rater_in_session

        return add_rater_in_session(session, study, account, actor_id=actor_id) is not None
    exists = session.scalar(
        select(StudyRater.id).where(
            StudyRater.study_id == study_id, StudyRater.account_id == account_id
        )
    )
    if exists is not None:
        return False
    session.add(StudyRater(study_id=study_id, account_id=account_id))
    record(session, actor_id, "study.enrol", "study", study_id, {"account_id": account_id})
    return True


def enrol_rater(
    store: Store, study: int | str, username: str, *, actor_id: int | None = None
) -> bool:
    with store.session() as session:
        row = find_study(session, study)
        account = session.scalar(
            select(Account).where(Account.username == username.strip().lower())
        )
        if account is None:
            raise StudyError(f"rater: no account named {username!r}")
        if not account.active:
            raise StudyError(f"rater: account {username!r} is deactivated")
        return enrol_rater_in_session(session, row.id, account.id, actor_id=actor_id)


def study_raters(store: Store, study: int | str) -> list[str]:
    with store.session() as session:
        row = find_study(session, study)
        return list(
            session.scalars(
                select(Account.username)
                .join(StudyRater, StudyRater.account_id == Account.id)
                .where(StudyRater.study_id == row.id)
                .order_by(Account.username)
            )
        )
