"""Review rows 18, 20, 23 and 37 and defects D2 (store side), D10, D12, D13 and D14: what the
store does with double, parallel, conflicting and repeated submits, a busy database, and
statements that would change judgments or the audit log. SQLite and PostgreSQL, real threads,
real connections, the functions the rating page calls.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError, InternalError, ProgrammingError
from support.started_study import LIKERT, StartedStudy

from studies.readers.rating import (
    DatabaseBusy,
    RatingError,
    correct_judgment,
    next_assignment,
    submit_judgment,
)
from studies.readers.writes import BUSY_MESSAGE
from studies.store.db import Store
from studies.store.schema import Assignment, AuditEvent, Judgment

OTHER = {
    "left": {"accuracy": 1, "completeness": 2, "safety": 1},
    "right": {"accuracy": 5, "completeness": 5, "safety": 5},
}


def _counts(store: Store) -> tuple[int, int]:
    with store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Judgment)),
            session.scalar(select(func.count()).select_from(AuditEvent)),
        )


def _audit_of(store: Store, action: str) -> int:
    with store.session() as session:
        return session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )


def test_row18_double_submit_writes_one_judgment_and_one_audit_event(
    started_study: StartedStudy,
) -> None:
    """row 18: a double click plus Enter twice (one key, three calls): one judgment, one
    `judgment.submit` event; the repeats say it was saved already, with no conflict."""
    store, rater = started_study.store, started_study.raters[0]
    token = started_study.session_token(rater)
    task = next_assignment(store, rater.id, started_study.study_id, session_token=token)
    results = [
        submit_judgment(store, rater.id, task.token, "key-1", "left", LIKERT, "ok", 2.0,
                        session_token=token)
        for _ in range(3)
    ]  # fmt: skip
    assert [r.created for r in results] == [True, False, False]
    assert len({r.judgment_id for r in results}) == 1
    assert not any(r.conflict for r in results)
    assert results[1].stored.preference_shown == "left" and results[1].stored.comment == "ok"
    assert _counts(store)[0] == 1 and _audit_of(store, "judgment.submit") == 1


def test_row20_parallel_different_answers_one_stands_the_others_are_told(
    started_study: StartedStudy,
) -> None:
    """row 20 (and D2, store side): 8 parallel submits of one task with different keys and
    answers. Exactly one judgment; each of the 7 others gets created=False with conflict=True
    and the answer that stands (at ebb17df: no conflict field, the answers vanished)."""
    store, rater = started_study.store, started_study.raters[0]
    task = next_assignment(store, rater.id, started_study.study_id)
    answers = [("left", LIKERT, f"tab {i}") for i in range(4)]
    answers += [("right", OTHER, f"tab {i}: A misses the 20 mm polyp") for i in range(4, 8)]
    barrier = threading.Barrier(len(answers))
    results: list = [None] * len(answers)

    def tab(index: int) -> None:
        preference, likert, comment = answers[index]
        barrier.wait()
        results[index] = submit_judgment(
            store, rater.id, task.token, f"tab-{index}", preference, likert, comment, 1.0
        )

    threads = [threading.Thread(target=tab, args=(i,)) for i in range(len(answers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in results)
    winners = [i for i, r in enumerate(results) if r.created]
    assert len(winners) == 1 and _counts(store)[0] == 1
    won = answers[winners[0]]
    for index, result in enumerate(results):
        if index == winners[0]:
            continue
        assert not result.created and result.judgment_id == results[winners[0]].judgment_id
        assert result.conflict  # every other answer differs (each comment is its own)
        assert (result.stored.preference_shown, result.stored.comment) == (won[0], won[2])
        assert result.stored.likert == won[1]


def test_d2_retry_after_reconnect_with_the_same_answer_is_no_conflict(
    started_study: StartedStudy,
) -> None:
    """row 20, D2: a retry with a new key but the same answer (a reconnect that lost the
    reply) writes nothing and is no conflict; a second tab's other answer is a conflict."""
    store, rater = started_study.store, started_study.raters[0]
    task = next_assignment(store, rater.id, started_study.study_id)
    first = submit_judgment(store, rater.id, task.token, "k1", "left", LIKERT, " same ", 1.0)
    retry = submit_judgment(store, rater.id, task.token, "k2", "left", LIKERT, "same", 1.5)
    other = submit_judgment(store, rater.id, task.token, "k3", "both_bad", OTHER, "no", 1.0)
    assert first.created and not retry.created and not retry.conflict
    assert not other.created and other.conflict and other.stored.comment == "same"
    assert _counts(store)[0] == 1


def _hold_write_lock(store: Store, hold: threading.Event, release: threading.Event) -> None:
    """Another process's writer: a raw connection of its own holding the write lock."""
    engine = create_engine(store.url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite's one write lock
            else:
                connection.exec_driver_sql("BEGIN")
                connection.exec_driver_sql("LOCK TABLE assignments IN EXCLUSIVE MODE")
            hold.set()
            release.wait(30)
            connection.rollback()
    finally:
        engine.dispose()


def test_row23_busy_database_is_a_rater_facing_error_and_nothing_is_half_written(
    started_study: StartedStudy,
) -> None:
    """row 23 (D10): another writer holds the lock past the busy timeout. The submit ends in
    DatabaseBusy, a RatingError saying "busy, not saved, press Submit again" (at ebb17df: a
    raw OperationalError after 30 s); nothing is written; the same submit then works."""
    quick = Store(started_study.store.url, busy_timeout_s=0.5)
    rater = started_study.raters[0]
    task = next_assignment(quick, rater.id, started_study.study_id)
    hold, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(quick, hold, release))
    holder.start()
    try:
        assert hold.wait(20)
        started = time.monotonic()
        with pytest.raises(DatabaseBusy) as caught:
            submit_judgment(quick, rater.id, task.token, "busy-key", "left", LIKERT, "", 1.0)
        assert time.monotonic() - started < 10
        assert isinstance(caught.value, RatingError) and str(caught.value) == BUSY_MESSAGE
    finally:
        release.set()
        holder.join(30)
    try:
        assert _counts(quick)[0] == 0 and _audit_of(quick, "judgment.submit") == 0
        again = submit_judgment(quick, rater.id, task.token, "busy-key", "left", LIKERT, "", 1.0)
        assert again.created and _counts(quick)[0] == 1
    finally:
        quick.dispose()


def test_row37_save_correction_twice_writes_one_correction(started_study: StartedStudy) -> None:
    """row 37 (D14): "Save correction" clicked twice (the page minted a new key per click):
    one correction row, one `judgment.correct` event (at ebb17df: two rows, 3 -> 4)."""
    store, rater = started_study.store, started_study.raters[0]
    task = next_assignment(store, rater.id, started_study.study_id)
    submit_judgment(store, rater.id, task.token, uuid.uuid4().hex, "left", LIKERT, "", 1.0)
    clicks = [
        correct_judgment(store, rater.id, task.token, uuid.uuid4().hex, "right", OTHER, "fix")
        for _ in range(2)
    ]
    assert [c.created for c in clicks] == [True, False]
    assert clicks[1].judgment_id == clicks[0].judgment_id and not clicks[1].conflict
    assert _counts(store)[0] == 2 and _audit_of(store, "judgment.correct") == 1
    # A real second correction (another answer) is still a new row superseding the first.
    third = correct_judgment(store, rater.id, task.token, uuid.uuid4().hex, "tie", LIKERT, "")
    assert third.created and _counts(store)[0] == 3


def test_d12_sqlite_commits_with_synchronous_full(sqlite_store: Store) -> None:
    """D12: SQLite's synchronous=FULL (2), so a committed judgment survives a power cut
    (at ebb17df: NORMAL, 1)."""
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2


REFUSED = (IntegrityError, InternalError, ProgrammingError)


APPEND_ONLY_STATEMENTS = (
    "UPDATE judgments SET winner = 'b'",
    "DELETE FROM judgments",
    "UPDATE audit_log SET action = 'forged'",
    "DELETE FROM audit_log",
)


def _raw_judgment(connection, assignment_id: int, rater_id: int, key: str, supersedes=None):  # noqa: ANN001, ANN202
    return connection.execute(
        Judgment.__table__.insert().values(
            assignment_id=assignment_id,
            rater_id=rater_id,
            submission_key=key,
            preference_shown="left",
            winner="a",
            likert={},
            comment="",
            supersedes_id=supersedes,
            submitted_at=func.now(),
        )
    ).inserted_primary_key[0]


def test_d13_the_database_enforces_append_only_and_one_current_judgment(
    started_study: StartedStudy,
) -> None:
    """D13: from a raw connection that bypasses the workbench's locks, the database itself
    refuses UPDATE and DELETE on `judgments` and `audit_log`, a second first judgment of a
    task, a second correction of one judgment, and a correction pointing at another task's
    judgment (at ebb17df all of these ran; only the submission key was unique)."""
    store, rater = started_study.store, started_study.raters[0]
    first = next_assignment(store, rater.id, started_study.study_id)
    judged = submit_judgment(store, rater.id, first.token, "k1", "left", LIKERT, "kept", 1.0)
    before = _counts(store)
    for statement in APPEND_ONLY_STATEMENTS:
        with pytest.raises(REFUSED, match="append-only"):
            with store.engine.begin() as connection:
                connection.execute(text(statement))
        assert _counts(store) == before, statement
    with store.session() as session:
        assert session.scalar(select(Judgment.comment)) == "kept"
    second = next_assignment(store, rater.id, started_study.study_id)
    with store.session() as session:
        own = session.get(Judgment, judged.judgment_id).assignment_id
        other = session.scalar(select(Assignment.id).where(Assignment.token == second.token))
    attempts = {
        "second first judgment": lambda c: _raw_judgment(c, own, rater.id, "r2"),
        "fork": lambda c: (
            _raw_judgment(c, own, rater.id, "c1", judged.judgment_id),
            _raw_judgment(c, own, rater.id, "c2", judged.judgment_id),
        ),
        "other task": lambda c: _raw_judgment(c, other, rater.id, "x1", judged.judgment_id),
    }
    for name, attempt in attempts.items():
        with pytest.raises(REFUSED):
            with store.engine.begin() as connection:
                attempt(connection)
        assert _counts(store)[0] == 1, name
