"""annotations and case flags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:50:00

Two append-only tables, guarded like `judgments` (migration 0003):
- `annotations`: an expert's reference report and structured findings for a case of an
  annotation study (studies.readers.annotation); one first annotation per assignment, each
  superseded at most once, a correction supersedes an annotation of the same task.
- `case_flags`: a rater's "cannot assess" with its reason (studies.readers.flags).
Only tables are created: every existing row is kept as it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("annotations", "case_flags")
NOT_NULL_SUPERSEDES = sa.text("supersedes_id IS NULL")

SQLITE_TRIGGERS = [
    *(
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"""
        for table in APPEND_ONLY
        for verb in ("UPDATE", "DELETE")
    ),
    """CREATE TRIGGER annotations_supersede_same_task BEFORE INSERT ON annotations
    WHEN NEW.supersedes_id IS NOT NULL AND NEW.assignment_id IS NOT
        (SELECT assignment_id FROM annotations WHERE id = NEW.supersedes_id)
    BEGIN SELECT RAISE(ABORT, 'a correction must supersede an annotation of the same task'); END""",
]
PG_FUNCTIONS = [
    """CREATE FUNCTION medvision_annotation_same_task() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.supersedes_id IS NOT NULL AND NEW.assignment_id IS DISTINCT FROM
            (SELECT assignment_id FROM annotations WHERE id = NEW.supersedes_id) THEN
            RAISE EXCEPTION 'a correction must supersede an annotation of the same task'
                USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$""",
]
# medvision_append_only() is migration 0003's.
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
    """CREATE TRIGGER annotations_supersede_same_task BEFORE INSERT ON annotations
    FOR EACH ROW EXECUTE FUNCTION medvision_annotation_same_task()""",
]


# The statements that undo the triggers, names from the constant tuples above.
SQLITE_DROPS = [
    *(
        f"DROP TRIGGER IF EXISTS {table}_no_{verb}"
        for table in APPEND_ONLY
        for verb in ("update", "delete")
    ),
    "DROP TRIGGER IF EXISTS annotations_supersede_same_task",
]
PG_DROPS = [
    *(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}" for table in APPEND_ONLY),
    *(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}" for table in APPEND_ONLY),
    "DROP TRIGGER IF EXISTS annotations_supersede_same_task ON annotations",
    "DROP FUNCTION IF EXISTS medvision_annotation_same_task()",
]


def upgrade() -> None:
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("submission_key", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("time_on_task_s", sa.Float(), nullable=True),
        sa.Column("supersedes_id", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["rater_id"], ["accounts.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["supersedes_id"], ["annotations.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_key", name="uq_annotation_submission"),
    )
    op.create_index("ix_annotations_assignment", "annotations", ["assignment_id"])
    op.create_index(
        "uq_annotations_first",
        "annotations",
        ["assignment_id"],
        unique=True,
        sqlite_where=NOT_NULL_SUPERSEDES,
        postgresql_where=NOT_NULL_SUPERSEDES,
    )
    op.create_index("uq_annotations_supersedes", "annotations", ["supersedes_id"], unique=True)
    op.create_table(
        "case_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("submission_key", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["rater_id"], ["accounts.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("submission_key", name="uq_case_flag_submission"),
    )
    op.create_index("ix_case_flags_assignment_id", "case_flags", ["assignment_id"])
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    else:
        for statement in PG_FUNCTIONS + PG_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_DROPS if dialect == "sqlite" else PG_DROPS:
        op.execute(statement)
    op.drop_table("case_flags")
    op.drop_index("uq_annotations_supersedes", table_name="annotations")
    op.drop_index("uq_annotations_first", table_name="annotations")
    op.drop_index("ix_annotations_assignment", table_name="annotations")
    op.drop_table("annotations")
