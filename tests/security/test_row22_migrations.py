"""Review row 22 and defect D1: a schema change cannot lose data, and nothing but an explicit
upgrade (serve, demo, db upgrade) migrates. A real second migration that batch-alters
`accounts` and `assignments` runs on a populated store (judgments and a correction,
enrolments, sessions, invites, audit rows) on SQLite and PostgreSQL through the project's own
env.py, from a copy of the migrations folder with that revision added.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest
from support.started_study import LIKERT, StartedStudy, make_started_study
from typer.testing import CliRunner

from studies.readers import accounts
from studies.readers.rating import correct_judgment, next_assignment, submit_judgment
from studies.store.db import (
    MIGRATIONS_DIR,
    SchemaOutOfDate,
    Store,
    UpgradeRefused,
    head_revision,
    make_engine,
    schema_state,
    upgrade,
)
from studies.store.schema import Base

BATCH_ALTER = '''
"""test only: batch-alter accounts and assignments (SQLite copies both tables)"""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.alter_column("display_name", existing_type=sa.String(200), nullable=True)
    with op.batch_alter_table("assignments") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.alter_column("order_index", existing_type=sa.Integer(), nullable=True)
'''

DANGLING = '''
"""test only: a change that leaves an enrolment pointing at no account"""
import sqlalchemy as sa
from alembic import op

revision = "9002"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.alter_column("display_name", existing_type=sa.String(200), nullable=True)
    op.execute("INSERT INTO study_raters (study_id, account_id, created_at) "
               "SELECT id, 999999, created_at FROM studies")
'''


ORPHAN_ENROLMENT = (
    "INSERT INTO study_raters (study_id, account_id, created_at) VALUES (1, 999999, '2026-01-01')"
)


def _migrations_with(tmp_path: Path, source: str) -> Path:
    """The project's migrations folder (its env.py included) plus one test revision."""
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / "9000_test_revision.py").write_text(
        textwrap.dedent(source).format(head=head_revision())
    )
    return folder


def _populate(store: Store, root: Path) -> StartedStudy:
    """Judgments (one corrected), enrolments, sessions, an invite and audit rows."""
    study = make_started_study(store, root, n_cases=3, n_raters=2, name="Migrated study")
    for rater in study.raters:
        token = study.session_token(rater)
        for step in range(2):
            task = next_assignment(store, rater.id, study.study_id, session_token=token)
            submit_judgment(store, rater.id, task.token, f"{rater.id}-{step}", "left", LIKERT,
                            f"comment {step}", 1.0, session_token=token)  # fmt: skip
        correct_judgment(store, rater.id, task.token, f"{rater.id}-fix", "right", LIKERT, "fixed")
    admin = accounts.create_account(store, "migration-admin", "admin", "an admin password 12")
    accounts.create_invite(store, role="rater", created_by=admin.id)
    return study


def _rows(url: str) -> dict[str, list[dict]]:
    """Every row of every table of the schema, in primary-key order."""
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            out = {}
            for table in Base.metadata.sorted_tables:
                query = sa.select(table).order_by(*table.primary_key.columns)
                out[table.name] = [dict(row._mapping) for row in connection.execute(query)]
            return out
    finally:
        engine.dispose()


def test_row22_a_batch_migration_of_accounts_and_assignments_keeps_every_row(
    db_url: str, tmp_path: Path
) -> None:
    """row 22 (D1): the migration runs on a populated store and every row of every table
    survives, foreign keys and the append-only triggers still hold, and the SQLite file was
    copied first (at ebb17df the same migration failed with FOREIGN KEY constraint failed, or
    with no judgments yet deleted every assignment, enrolment and session)."""
    store = Store(db_url)
    try:
        _populate(store, tmp_path / "bench")
    finally:
        store.dispose()
    before = _rows(db_url)
    assert all(before[t] for t in ("judgments", "study_raters", "auth_sessions", "audit_log"))
    said: list[str] = []
    report = upgrade(
        db_url, script_location=_migrations_with(tmp_path, BATCH_ALTER), echo=said.append
    )
    assert (report.before, report.after) == (head_revision(), "9001")
    after = _rows(db_url)
    for table, rows in before.items():
        assert after[table] == rows, f"{table} changed"
    engine = make_engine(db_url, pooled=False)
    try:
        with engine.connect() as connection:
            notes = connection.execute(sa.text("SELECT count(note) FROM accounts")).scalar()
            assert notes == 0  # the new column is there
            if connection.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        with pytest.raises(sa.exc.IntegrityError):  # still enforced after the table copy
            with engine.begin() as connection:
                connection.execute(sa.text(ORPHAN_ENROLMENT))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(sa.text("DELETE FROM judgments"))
    finally:
        engine.dispose()
    if db_url.startswith("sqlite"):
        assert report.backup is not None and report.backup.exists()
        assert _rows(f"sqlite:///{report.backup}") == before  # the copy holds the old rows
        assert any(str(report.backup) in line for line in said)
    else:
        assert report.backup is None and "pg_dump" in report.hint and report.hint in said


def test_d1_an_upgrade_that_breaks_a_foreign_key_is_refused_and_rolled_back(
    tmp_path: Path,
) -> None:
    """D1: `PRAGMA foreign_key_check` after the migration finds the dangling enrolment; the
    upgrade fails naming it and is rolled back whole (the added column too)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    try:
        _populate(store, tmp_path / "bench")
    finally:
        store.dispose()
    before = _rows(url)
    with pytest.raises(UpgradeRefused, match=r"study_raters row \d+ -> accounts"):
        upgrade(url, script_location=_migrations_with(tmp_path, DANGLING))
    assert schema_state(url).revision == head_revision()
    assert _rows(url) == before
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            columns = [row[1] for row in connection.exec_driver_sql("PRAGMA table_info(accounts)")]
    finally:
        engine.dispose()
    assert "note" not in columns


def test_d1_nothing_but_an_explicit_upgrade_migrates(tmp_home: Path) -> None:
    """D1: on a database at an older revision, a Store, a CLI command and the app refuse with
    "run `medvision db upgrade`" and change nothing (at ebb17df each of them migrated,
    unattended, with no copy); `medvision db upgrade` copies the file, then migrates."""
    from workbench.cli import app

    database = tmp_home / "workbench.db"
    url = f"sqlite:///{database}"
    upgrade(url, "0002")
    with pytest.raises(SchemaOutOfDate, match="medvision db upgrade"):
        Store(url)
    runner = CliRunner()
    listed = runner.invoke(app, ["benchmarks", "list"])
    assert listed.exit_code == 1 and "medvision db upgrade" in listed.output
    page = AppTest.from_file(
        str(Path(__file__).resolve().parents[2] / "workbench" / "app.py"), default_timeout=60
    ).run()
    assert any("medvision db upgrade" in error.value for error in page.error)
    assert schema_state(url).revision == "0002"
    assert list(tmp_home.glob("workbench.backup-*")) == []
    upgraded = runner.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    backups = list(tmp_home.glob("workbench.backup-*-rev0002.db"))
    assert len(backups) == 1 and str(backups[0]) in upgraded.output
    assert schema_state(url).current
    Store(url).dispose()
