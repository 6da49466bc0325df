"""washout: a duplicate task waits until its time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 12:10:00

A study may ask that a rater sees a case again (a duplicate, for intra-rater reliability) only
some days after judging it first (`StudyDesign.washout_days`). `assignments.available_at` is
when a task may be shown: null for every existing task (shown in order, as before); a
duplicate of a washout study waits for its original's judgment, which sets it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "assignments", sa.Column("available_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("available_at")
