"""Alembic environment: one schema (studies.store.schema) for SQLite and PostgreSQL.

Every upgrade runs in ONE transaction (SQLite included: its driver is told to send BEGIN
before the DDL), so a failed upgrade leaves the database as it was. On SQLite, foreign keys
are off while migrating (a batch table copy drops the old table, which with keys on would
delete or refuse every row pointing at it) and `PRAGMA foreign_key_check` runs before the
commit: any row whose reference broke fails the upgrade, which is rolled back.
"""

from alembic import context

from studies.store.db import UpgradeRefused, make_engine
from studies.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def check_foreign_keys(connection) -> None:  # noqa: ANN001
    """UpgradeRefused naming the rows whose foreign keys no longer hold (SQLite)."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        shown = "; ".join(
            f"{table} row {rowid} -> {parent} (key {fkid})"
            for table, rowid, parent, fkid in broken[:20]
        )
        more = f" and {len(broken) - 20} more" if len(broken) > 20 else ""
        raise UpgradeRefused(
            f"The upgrade was rolled back: {len(broken)} rows would point at rows that do "
            f"not exist: {shown}{more}. Nothing was changed; fix or remove those rows first."
        )


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url, pooled=False, migrating=True)
    try:
        with engine.connect() as connection, connection.begin():
            # batch mode lets later migrations alter SQLite tables (copy-and-move).
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                transactional_ddl=True,
            )
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                check_foreign_keys(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
