"""Engine, sessions and migrations for the one workbench store (SQLite or PostgreSQL).

A schema upgrade never happens as a side effect: `Store(url)` creates a fresh, empty
database at the newest revision (there is nothing to lose) and refuses a database at an
older one with "run `medvision db upgrade`". Only `upgrade()` migrates existing data; it is
called by `medvision serve`, `medvision demo` and `medvision db upgrade`, copies the SQLite
file first (a `pg_dump` hint for PostgreSQL) and runs the whole upgrade in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from studies.store.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "medvision db upgrade"


class SchemaError(RuntimeError):
    """The database's schema is not one this workbench can use as it is. Safe to show."""


class SchemaOutOfDate(SchemaError):
    """The database is at an older (or unknown) schema revision; nothing was changed."""


class UpgradeRefused(SchemaError):
    """An upgrade found rows that would break a rule; it was rolled back, nothing changed."""


def _sqlite_pragmas(busy_timeout_s: float, *, migrating: bool = False):  # noqa: ANN202
    def apply(dbapi_connection, _record) -> None:  # noqa: ANN001
        cursor = dbapi_connection.cursor()
        # WAL lets raters read while another writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        # Off while migrating: a batch table copy drops the old table, and with foreign keys
        # on that drop deletes (or refuses because of) every row that points at it. The
        # upgrade checks the keys itself afterwards (PRAGMA foreign_key_check).
        cursor.execute(f"PRAGMA foreign_keys={'OFF' if migrating else 'ON'}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        # FULL: a committed judgment survives a power cut or OS crash too (NORMAL in WAL
        # mode may roll the last transactions back).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
        if migrating:
            # The driver would not start a transaction before DDL; BEGIN is sent by the
            # "begin" listener so that the whole upgrade commits or rolls back as one.
            dbapi_connection.isolation_level = None

    return apply


def _begin(connection) -> None:  # noqa: ANN001
    connection.exec_driver_sql("BEGIN")


def make_engine(
    url: str,
    *,
    pooled: bool = True,
    busy_timeout_s: float | None = None,
    migrating: bool = False,
) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys, synchronous=FULL and a busy timeout,
    PostgreSQL a lock timeout of the same length (MEDVISION_BUSY_TIMEOUT_S)."""
    timeout = get_settings().busy_timeout_s if busy_timeout_s is None else busy_timeout_s
    parsed = make_url(url)
    extra = {} if pooled else {"poolclass": NullPool}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": timeout}, **extra
        )
        event.listen(engine, "connect", _sqlite_pragmas(timeout, migrating=migrating))
        if migrating:
            event.listen(engine, "begin", _begin)
        return engine
    if pooled:
        extra = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}
    if parsed.get_backend_name() == "postgresql":
        extra["connect_args"] = {"options": f"-c lock_timeout={int(timeout * 1000)}"}
    return create_engine(url, **extra)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def alembic_config(url: str, script_location: Path | None = None):  # noqa: ANN201
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@lru_cache(maxsize=8)
def head_revision(script_location: Path = MIGRATIONS_DIR) -> str:
    """The newest schema revision this workbench knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(script_location)).get_current_head()


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: `empty` (no tables at all), or its revision (None: tables
    but no revision, not a workbench database)."""

    empty: bool
    revision: str | None
    head: str

    @property
    def current(self) -> bool:
        return not self.empty and self.revision == self.head


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database}"
    return f"{parsed.get_backend_name()} database {parsed.database!r} on {parsed.host}"


def schema_state(url: str, script_location: Path = MIGRATIONS_DIR) -> SchemaState:
    """Read the database's schema revision (creates nothing but an empty SQLite file)."""
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
            revision = None
            if "alembic_version" in tables:
                revision = connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).scalar()
    finally:
        engine.dispose()
    return SchemaState(not tables, revision, head_revision(script_location))


def out_of_date_message(url: str, state: SchemaState) -> str:
    if state.revision is None:
        return (
            f"The {_where(url)} holds tables but no workbench schema revision: it is not a "
            "workbench database, or it was made by another tool. Point MEDVISION_HOME or "
            "MEDVISION_DATABASE_URL at the workbench's database."
        )
    return (
        f"The {_where(url)} is at schema revision {state.revision}; this workbench needs "
        f"{state.head}. Run `{UPGRADE_COMMAND}` (it copies the SQLite file first; back up a "
        "PostgreSQL database with pg_dump), then start again. Nothing was changed."
    )


def check_schema(url: str, *, create: bool = True) -> SchemaState:
    """The database is at the newest revision (SchemaOutOfDate otherwise). A fresh, empty
    database is created at the newest revision when `create` (there is nothing to lose)."""
    state = schema_state(url)
    if state.empty and create:
        try:
            _run_upgrade(url, "head", MIGRATIONS_DIR)
        except Exception:
            # Another process may have created it at the same moment: fine if it is current.
            if not schema_state(url).current:
                raise
        return SchemaState(False, state.head, state.head)
    if state.empty or not state.current:
        if state.empty:
            raise SchemaOutOfDate(
                f"The {_where(url)} is empty: run `{UPGRADE_COMMAND}` to create its tables."
            )
        raise SchemaOutOfDate(out_of_date_message(url, state))
    return state


@dataclass(frozen=True)
class UpgradeReport:
    before: str | None  # None: a fresh database
    after: str | None
    backup: Path | None  # the copy of the SQLite file made first
    hint: str | None  # what to do first on PostgreSQL (pg_dump)

    def lines(self) -> list[str]:
        if self.before == self.after:
            return [f"Schema already at revision {self.after}."]
        out = []
        if self.backup is not None:
            out.append(f"Copied the database to {self.backup} before upgrading.")
        if self.hint:
            out.append(self.hint)
        start = "a fresh database" if self.before is None else f"revision {self.before}"
        out.append(f"Schema upgraded from {start} to revision {self.after}.")
        return out


def backup_sqlite(database: Path, revision: str | None) -> Path:
    """A consistent copy of a SQLite database (WAL included), named by UTC time and revision."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = database.with_name(f"{database.stem}.backup-{stamp}-rev{revision}{database.suffix}")
    source = sqlite3.connect(str(database))
    try:
        copy = sqlite3.connect(str(target))
        try:
            source.backup(copy)  # the SQLite online backup: a snapshot even while others write
        finally:
            copy.close()
    finally:
        source.close()
    return target


def pg_dump_hint(url: str) -> str:
    parsed = make_url(url)
    target = parsed.set(drivername="postgresql").render_as_string(hide_password=True)
    return (
        "PostgreSQL is not copied by the workbench: back it up first, e.g. "
        f"`pg_dump --format=custom --file=medvision-before-upgrade.dump '{target}'`."
    )


def upgrade(
    url: str,
    revision: str = "head",
    *,
    echo: Callable[[str], None] | None = None,
    script_location: Path | None = None,
) -> UpgradeReport:
    """Bring the schema at `url` up to `revision` in one transaction (idempotent).

    A database with data is copied first (SQLite: a timestamped file next to it; PostgreSQL:
    a pg_dump hint is said); a fresh, empty one is created without a copy. UpgradeRefused,
    and nothing changed, when the migrated rows break a foreign key (SQLite).
    """
    location = script_location or MIGRATIONS_DIR
    state = schema_state(url, location)
    target = head_revision(location) if revision == "head" else revision
    if not state.empty and state.revision == target:
        report = UpgradeReport(state.revision, state.revision, None, None)
    else:
        backup, hint = None, None
        if not state.empty:
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite":
                if parsed.database and parsed.database != ":memory:":
                    backup = backup_sqlite(Path(parsed.database), state.revision)
            else:
                hint = pg_dump_hint(url)
            if echo is not None:
                for line in ([f"Copied the database to {backup}."] if backup else []) + (
                    [hint] if hint else []
                ):
                    echo(line)
        _run_upgrade(url, revision, location)
        report = UpgradeReport(None if state.empty else state.revision, target, backup, hint)
    if echo is not None:
        echo(report.lines()[-1])
    return report


def _run_upgrade(url: str, revision: str, script_location: Path) -> None:
    from alembic import command

    if make_url(url).get_backend_name() == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url, script_location), revision)


class Store:
    """One database: an engine plus a session factory. Cheap to pass around.

    Construction never migrates existing data: a database at an older revision raises
    SchemaOutOfDate ("run `medvision db upgrade`"); a fresh, empty one is created at the
    newest revision unless `create=False`.
    """

    def __init__(
        self, url: str, *, create: bool = True, busy_timeout_s: float | None = None
    ) -> None:
        self.url = url
        check_schema(url, create=create)
        self.busy_timeout_s = (
            get_settings().busy_timeout_s if busy_timeout_s is None else busy_timeout_s
        )
        self.engine = make_engine(url, busy_timeout_s=self.busy_timeout_s)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@lru_cache(maxsize=4)
def _store_for(url: str) -> Store:
    return Store(url)


def get_store(url: str | None = None) -> Store:
    """The process-wide store for `url` (default: the settings' database)."""
    return _store_for(url or get_settings().url)
