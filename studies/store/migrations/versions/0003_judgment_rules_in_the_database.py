"""the database enforces the judgments' rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:30:00

Until now "one current judgment per task" and "judgments and the audit log are append-only"
rested on the lock discipline of studies.readers.rating alone. The database now refuses what
would break them, whoever writes:
- one first judgment per assignment (a unique index on assignment_id where supersedes_id is
  null) and each judgment superseded at most once (unique supersedes_id), and a correction
  supersedes a judgment of the same assignment (a trigger): each task's judgments form one
  chain, whose last row is the current judgment;
- UPDATE and DELETE on `judgments` and `audit_log` are refused by triggers (PostgreSQL also
  refuses TRUNCATE).

Nothing in the workbench updates or deletes those rows (closing a study changes its status,
the demo's reseeding adds what is missing, accounts are deactivated, never deleted). Deleting
an account that has audit events is therefore refused too: its `actor_id` would be set to null.

A later migration that batch-alters `judgments` or `audit_log` on SQLite (a table copy) drops
these triggers with the old table and must create them again (the SQL is below);
tests/test_store.py checks them at head on both backends.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("judgments", "audit_log")

SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"""
        for table in APPEND_ONLY
        for verb in ("UPDATE", "DELETE")
    ),
    """CREATE TRIGGER judgments_supersede_same_task BEFORE INSERT ON judgments
    WHEN NEW.supersedes_id IS NOT NULL AND NEW.assignment_id IS NOT
        (SELECT assignment_id FROM judgments WHERE id = NEW.supersedes_id)
    BEGIN SELECT RAISE(ABORT, 'a correction must supersede a judgment of the same task'); END""",
]

PG_FUNCTIONS = [
    """CREATE FUNCTION medvision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
            USING ERRCODE = 'restrict_violation';
    END $$""",
    """CREATE FUNCTION medvision_supersede_same_task() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.supersedes_id IS NOT NULL AND NEW.assignment_id IS DISTINCT FROM
            (SELECT assignment_id FROM judgments WHERE id = NEW.supersedes_id) THEN
            RAISE EXCEPTION 'a correction must supersede a judgment of the same task'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$""",
]
PG_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION medvision_append_only()"""
        for table in APPEND_ONLY
    ),
    *(
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION medvision_append_only()"""
        for table in APPEND_ONLY
    ),
    """CREATE TRIGGER judgments_supersede_same_task BEFORE INSERT ON judgments
    FOR EACH ROW EXECUTE FUNCTION medvision_supersede_same_task()""",
]

NOT_NULL_SUPERSEDES = sa.text("supersedes_id IS NULL")


def _refuse_if_broken(bind: sa.Connection) -> None:
    """Name the rows that already break a rule (the indexes would fail on them)."""
    from studies.store.db import UpgradeRefused

    roots = bind.execute(
        sa.text(
            "SELECT assignment_id, count(*) FROM judgments WHERE supersedes_id IS NULL "
            "GROUP BY assignment_id HAVING count(*) > 1"
        )
    ).all()
    forks = bind.execute(
        sa.text(
            "SELECT supersedes_id, count(*) FROM judgments WHERE supersedes_id IS NOT NULL "
            "GROUP BY supersedes_id HAVING count(*) > 1"
        )
    ).all()
    if roots or forks:
        said = [f"assignment {a}: {n} first judgments" for a, n in roots[:10]]
        said += [f"judgment {j}: superseded {n} times" for j, n in forks[:10]]
        raise UpgradeRefused(
            "The upgrade was rolled back: these tasks have more than one current judgment ("
            + "; ".join(said)
            + "). Nothing was changed; report this to the workbench maintainers."
        )


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_if_broken(bind)
    op.create_index(
        "uq_judgments_first",
        "judgments",
        ["assignment_id"],
        unique=True,
        sqlite_where=NOT_NULL_SUPERSEDES,
        postgresql_where=NOT_NULL_SUPERSEDES,
    )
    op.create_index("uq_judgments_supersedes", "judgments", ["supersedes_id"], unique=True)
    if bind.dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        for statement in PG_FUNCTIONS + PG_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        names = [f"{t}_no_{v}" for t in APPEND_ONLY for v in ("update", "delete")]
        for name in [*names, "judgments_supersede_same_task"]:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER IF EXISTS judgments_supersede_same_task ON judgments")
        op.execute("DROP FUNCTION IF EXISTS medvision_append_only()")
        op.execute("DROP FUNCTION IF EXISTS medvision_supersede_same_task()")
    op.drop_index("uq_judgments_supersedes", table_name="judgments")
    op.drop_index("uq_judgments_first", table_name="judgments")
