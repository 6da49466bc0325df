"""a running study's panel can change: rater activity and the study's amendments

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:00:00

A started study's panel may now change (a rater added, deactivated or replaced, tasks not
done in time handed to others). Each change is an amendment of the frozen design:
- `study_raters.active` (true for every existing rater) and `left_at`: a deactivated rater
  keeps their judgments but gets no more tasks;
- `study_amendments`: one row per change, numbered per study, each hashed over the previous
  hash (the first over the study's config hash), so the chain shows the design as it was run.

Only columns are added (no table copy on SQLite) and one table is created: every existing row
is kept as it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "study_raters",
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column("study_raters", sa.Column("left_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "study_amendments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "study_id",
            sa.Integer(),
            sa.ForeignKey("studies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column(
            "actor_id",
            sa.Integer(),
            sa.ForeignKey("accounts.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("study_id", "number", name="uq_study_amendment"),
    )


def downgrade() -> None:
    op.drop_table("study_amendments")
    with op.batch_alter_table("study_raters", schema=None) as batch_op:
        batch_op.drop_column("left_at")
        batch_op.drop_column("active")
