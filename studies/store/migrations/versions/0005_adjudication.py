"""adjudication: senior raters and the items they settle

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:05:00

Items whose judgments disagree beyond a study's rule go to a senior rater's queue
(studies.readers.adjudication): the senior rater is on the panel with role `adjudicator`
(never given regular tasks), and each queued item is a new study item of kind `adjudication`
whose `adjudicates_id` names the item it settles. Only columns are added: every row is kept,
every existing rater has role `rater`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "study_raters",
        sa.Column("role", sa.String(length=20), nullable=False, server_default="rater"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's ALTER TABLE adds a nullable column with a foreign key and no default in
        # place: no table copy (alembic would insist on one for the constraint).
        op.execute(
            "ALTER TABLE study_items ADD COLUMN adjudicates_id INTEGER REFERENCES study_items (id)"
        )
        return
    op.add_column("study_items", sa.Column("adjudicates_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        None,
        "study_items",
        "study_items",
        ["adjudicates_id"],
        ["id"],
    )


def downgrade() -> None:
    with op.batch_alter_table("study_items", schema=None) as batch_op:
        batch_op.drop_column("adjudicates_id")
    with op.batch_alter_table("study_raters", schema=None) as batch_op:
        batch_op.drop_column("role")
