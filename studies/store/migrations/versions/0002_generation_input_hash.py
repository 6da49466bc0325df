"""generations keyed by the case's input hash too

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00

A cached report now belongs to what its case held when it was made (media hashes, question,
reference), not only to the case's key. Existing reports are kept: each gets the input hash of
its case as the case is now, so an upgrade regenerates nothing. The hash is a frozen copy of
`studies.systems.runs.case_input_hash` at this revision (tests/test_store.py checks that a
migrated store's reports are cache hits).
"""

import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _loads(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def _input_hash(modality: str, media: list, references: list, question: str | None) -> str:
    payload = {
        "modality": modality,
        "media": [{"sha256": entry.get("sha256"), "kind": entry.get("kind")} for entry in media],
        "question": question,
        "reference": references[0] if references else None,
    }
    digest = hashlib.sha256()
    digest.update(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(b"\0")
    return digest.hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a unique constraint by copying the table; with foreign keys on, dropping
        # the old copy would delete (or refuse because of) the study items and flags that point at
        # it. The pragma only takes effect outside a transaction, which is where alembic is here.
        op.execute("PRAGMA foreign_keys=OFF")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_hash", sa.String(length=64), nullable=True))
        batch_op.drop_constraint("uq_generation", type_="unique")
        batch_op.create_unique_constraint(
            "uq_generation", ["system_fingerprint", "case_id", "prompt_hash", "input_hash"]
        )
    cases = sa.table(
        "cases",
        sa.column("id", sa.Integer),
        sa.column("modality", sa.String),
        sa.column("media", sa.JSON),
        sa.column("references", sa.JSON),
        sa.column("question", sa.Text),
    )
    generations = sa.table(
        "generations", sa.column("case_id", sa.Integer), sa.column("input_hash", sa.String)
    )
    used = sa.select(generations.c.case_id).distinct().scalar_subquery()
    rows = bind.execute(
        sa.select(
            cases.c.id, cases.c.modality, cases.c.media, cases.c.references, cases.c.question
        ).where(cases.c.id.in_(used))
    ).all()
    for case_id, modality, media, references, question in rows:
        digest = _input_hash(modality, _loads(media) or [], _loads(references) or [], question)
        bind.execute(
            generations.update().where(generations.c.case_id == case_id).values(input_hash=digest)
        )
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")


def downgrade() -> None:
    # The old key allows one report per (system fingerprint, case, prompt hash); a store that
    # holds reports of a case before and after an edit refuses to downgrade (unique violation).
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("PRAGMA foreign_keys=OFF")  # as in upgrade: the table is copied
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_generation", type_="unique")
        batch_op.create_unique_constraint(
            "uq_generation", ["system_fingerprint", "case_id", "prompt_hash"]
        )
        batch_op.drop_column("input_hash")
    if sqlite:
        op.execute("PRAGMA foreign_keys=ON")
