"""Migrations 0004-0007 on a populated store, SQLite and PostgreSQL: every rater, item and
task is kept; existing raters are active raters, no item adjudicates another, every task is
shown at once (no wait), and a running study has no amendment yet."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session
from support.rated_study import rated_study

from studies.store.db import Store, alembic_config, make_engine, upgrade
from studies.store.schema import Account, Assignment, Judgment, Study

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


def test_0007_down_and_up_on_a_rated_study_keeps_every_judgment(
    db_url: str, tmp_path: Path
) -> None:
    """0007 adds two tables only: undone and redone on a rated study, every assignment and
    judgment stays, and the new tables are append-only again afterwards."""
    store = Store(db_url)
    try:
        rated_study(store, tmp_path / "bench", synthetic_cases=True)
        with store.session() as session:
            before = (
                session.scalar(sa.select(sa.func.count()).select_from(Assignment)),
                session.scalar(sa.select(sa.func.count()).select_from(Judgment)),
            )
            assignment = session.scalars(sa.select(Assignment)).first()
            flag_row = {"assignment_id": assignment.id, "rater_id": assignment.rater_id}
    finally:
        store.dispose()
    command.downgrade(alembic_config(db_url), "0006")
    engine = make_engine(db_url, pooled=False)
    try:
        with engine.connect() as connection:
            assert "case_flags" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()
    upgrade(db_url)
    engine = make_engine(db_url, pooled=False)
    try:
        with engine.begin() as connection:
            after = (
                connection.execute(sa.text("SELECT count(*) FROM assignments")).scalar(),
                connection.execute(sa.text("SELECT count(*) FROM judgments")).scalar(),
            )
            connection.execute(
                sa.text(
                    "INSERT INTO case_flags (assignment_id, rater_id, submission_key, reason, "
                    "note, at) VALUES (:assignment_id, :rater_id, 'k', 'other', 'x', "
                    "CURRENT_TIMESTAMP)"
                ),
                flag_row,
            )
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text("UPDATE case_flags SET note = 'changed'"))
    finally:
        engine.dispose()
    assert after == before and before[1] > 0
