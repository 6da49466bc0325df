"""Migrations 0004-0006 on a populated store, SQLite and PostgreSQL: every rater, item and
task is kept; existing raters are active raters, no item adjudicates another, every task is
shown at once (no wait), and a running study has no amendment yet."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from studies.store.db import make_engine, upgrade
from studies.store.schema import Account, Study

# Written with the 0003 columns of study_raters (0004 and 0005 add columns to it).
OLD_STUDY_RATERS = sa.table(
    "study_raters", *(sa.column(c) for c in ("id", "study_id", "account_id", "created_at"))
)


def test_0004_to_0006_keep_raters_and_add_safe_defaults(db_url: str) -> None:
    upgrade(db_url, "0003")
    engine = make_engine(db_url, pooled=False)
    try:
        with Session(engine) as session, session.begin():
            account = Account(username="ada", role="rater")
            study = Study(name="s", status="active")
            session.add_all([account, study])
            session.flush()
            session.execute(
                OLD_STUDY_RATERS.insert().values(
                    id=1, study_id=study.id, account_id=account.id, created_at=sa.func.now()
                )
            )
    finally:
        engine.dispose()
    upgrade(db_url)
    engine = make_engine(db_url, pooled=False)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT study_id, account_id, active, left_at, role FROM study_raters")
            ).all()
            columns = {c["name"] for c in sa.inspect(connection).get_columns("assignments")}
            item_columns = {c["name"] for c in sa.inspect(connection).get_columns("study_items")}
            amendments = connection.execute(
                sa.text("SELECT count(*) FROM study_amendments")
            ).scalar()
    finally:
        engine.dispose()
    assert [(r.study_id, r.account_id, bool(r.active), r.left_at, r.role) for r in rows] == [
        (1, 1, True, None, "rater")
    ]
    assert "available_at" in columns and "adjudicates_id" in item_columns
    assert amendments == 0
