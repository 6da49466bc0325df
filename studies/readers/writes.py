"""The write transaction every rater-facing change runs in, and the refusals a rater may be
shown: the one home of `RatingError`, `AccessDenied`, `DatabaseBusy` and of SQLite's
in-process write queue. Rating, panel changes and calibration all write through here, so
none of them imports another to get a transaction."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from studies.store.db import Store


class RatingError(ValueError):
    """A submission or request that was refused; nothing was written. Safe to show."""


class AccessDenied(RatingError):
    """An expired session, a token that is not the rater's, a page the role may not open."""


BUSY_MESSAGE = "The server is busy; your answer was not saved. Press Submit again."


class DatabaseBusy(RatingError):
    """The database did not answer in time (another writer held its lock, or the connection
    failed): the transaction was rolled back, nothing was saved, the same submit can be repeated."""

    def __init__(self, message: str = BUSY_MESSAGE) -> None:
        super().__init__(message)


def check_submission_key(submission_key: str) -> None:
    """RatingError unless a submit carries its page's submission key (what makes a repeated
    submit idempotent), at most 100 characters."""
    if not submission_key or len(submission_key) > 100:
        raise RatingError("The submission key is missing or too long; reload the page.")


# One process serves many raters: its SQLite writers queue on a lock here, handed over at
# once, instead of polling SQLite's busy handler (which sleeps up to 100 ms per try).
# Other processes still meet SQLite's own lock and busy timeout.
_SQLITE_GATES: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_GATES_LOCK = threading.Lock()


def _sqlite_gate(engine: Engine) -> threading.Lock:
    with _GATES_LOCK:
        gate = _SQLITE_GATES.get(engine)
        if gate is None:
            gate = _SQLITE_GATES[engine] = threading.Lock()
        return gate


@contextmanager
def write_transaction(store: Store) -> Iterator[Connection]:
    """One transaction; on SQLite it holds the database write lock from its first read.

    DatabaseBusy when the lock is not had within the store's busy timeout."""
    engine = store.engine
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    gate = _sqlite_gate(engine)
    # The in-process queue waits no longer than SQLite's own busy timeout would.
    if not gate.acquire(timeout=store.busy_timeout_s):
        raise DatabaseBusy()
    try:
        with engine.begin() as connection:
            # BEGIN IMMEDIATE: no read-then-upgrade (which can fail under contention).
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            yield connection
    finally:
        gate.release()
