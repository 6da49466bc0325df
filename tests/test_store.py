"""The store: migrations match the models, on SQLite and PostgreSQL, and upgrade is idempotent."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from studies.store.db import Store, upgrade
from studies.store.schema import Base, Benchmark, Case


def test_migrations_create_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_match_models(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == [], (
        f"schema.py and migrations differ; run studies.store.migrations.autogen: {diff}"
    )


def test_upgrade_is_idempotent(store: Store) -> None:
    upgrade(store.url)
    upgrade(store.url)
    with store.session() as session:
        session.add(Benchmark(name="b", loader="polyp-reports", root="/tmp", task="report"))
    with store.session() as session:
        assert session.scalar(select(Benchmark.name)) == "b"


def test_foreign_keys_are_enforced(store: Store) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with store.session() as session:
            session.add(
                Case(
                    benchmark_id=999,
                    case_key="x",
                    split="test",
                    modality="image",
                    content_hash="0",
                )
            )


def test_sqlite_runs_in_wal_mode(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


def test_a_store_never_creates_or_migrates_when_told_not_to(tmp_path) -> None:  # noqa: ANN001
    """create=False on an empty database says to run `medvision db upgrade`; upgrading a
    fresh database makes no copy (there is nothing to lose) and reports it as fresh."""
    import pytest

    from studies.store.db import SchemaOutOfDate, head_revision

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with pytest.raises(SchemaOutOfDate, match="medvision db upgrade"):
        Store(url, create=False)
    report = upgrade(url)
    assert (report.before, report.after, report.backup) == (None, head_revision(), None)
    assert list(tmp_path.glob("*.backup-*")) == []
    again = upgrade(url)
    assert again.before == again.after and again.backup is None
    Store(url, create=False).dispose()
