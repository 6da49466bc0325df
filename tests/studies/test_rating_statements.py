"""Statements per rating step, on both backends: a regression in round trips is caught here.

The bounds are what the page needs: next_assignment reads the study, enrolment, session and
the next task with its content and counts in one statement; submit_judgment reads the
assignment, study and session (locking on PostgreSQL), then the judgments of that assignment
or key, then inserts the judgment and its audit event (one statement on PostgreSQL, two on
SQLite, which first takes its write lock with BEGIN IMMEDIATE).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import event, func, select, update
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import AccessDenied, next_assignment, submit_judgment
from studies.store.db import Store
from studies.store.schema import Account, AuditEvent, Judgment

PASSWORD = "rater-password-1"
LIKERT = {
    "left": {"accuracy": 4, "completeness": 3, "safety": 5},
    "right": {"accuracy": 2, "completeness": 2, "safety": 1},
}
NEXT_MAX = 1
SUBMIT_MAX = {"sqlite": 4, "postgresql": 3}  # plus BEGIN IMMEDIATE on SQLite
REPEAT_MAX = 2  # a double click: the lookups only, nothing written


class Statements:
    """Every statement the engine sends, as its first word (SELECT, INSERT, BEGIN ...)."""

    def __init__(self, store: Store) -> None:
        self.seen: list[str] = []
        self.engine = store.engine
        event.listen(self.engine, "before_cursor_execute", self._on)

    def _on(self, _conn, _cursor, statement, _params, _context, _many) -> None:  # noqa: ANN001
        self.seen.append(statement.split(None, 1)[0].upper())

    def take(self) -> list[str]:
        out, self.seen = self.seen, []
        return out

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)


@pytest.fixture
def rated(store: Store, tmp_path: Path):
    world = build_world(store, tmp_path / "bench", n_cases=4)
    rater = accounts.create_account(store, "counted", "rater", PASSWORD)
    study_id = create_study(
        store,
        StudyDesign(
            name="Counted", benchmark=world.benchmark, systems=world.systems, overlap=1, seed=2
        ),
    )
    enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    token = accounts.log_in(store, rater.username, PASSWORD)
    statements = Statements(store)
    yield store, study_id, rater.id, token, statements
    statements.close()


def _writes(statements: list[str], sqlite: bool) -> list[str]:
    if sqlite:
        assert statements[0] == "BEGIN", statements  # the write lock before any read
        return statements[1:]
    return statements


def test_statements_per_step_are_bounded(rated) -> None:
    store, study_id, rater_id, token, statements = rated
    sqlite = store.engine.dialect.name == "sqlite"
    for step in range(3):
        statements.take()
        task = next_assignment(store, rater_id, study_id, session_token=token)
        assert task is not None and task.done == step
        seen = statements.take()
        assert len(seen) <= NEXT_MAX and set(seen) == {"SELECT"}, seen

        key = uuid.uuid4().hex
        result = submit_judgment(
            store, rater_id, task.token, key, "left", LIKERT, "", 3.0, session_token=token
        )
        assert result.created
        seen = _writes(statements.take(), sqlite)
        assert len(seen) <= SUBMIT_MAX[store.engine.dialect.name], seen
        assert seen[-1] in ("INSERT", "WITH"), seen  # the judgment and its audit event

        again = submit_judgment(
            store, rater_id, task.token, key, "left", LIKERT, "", 3.0, session_token=token
        )
        assert (again.judgment_id, again.created) == (result.judgment_id, False)
        seen = _writes(statements.take(), sqlite)
        assert len(seen) <= REPEAT_MAX and set(seen) == {"SELECT"}, seen

    with store.session() as session:
        judged = sorted(session.scalars(select(Judgment.id)))
        audited = session.execute(
            select(AuditEvent.entity_id, AuditEvent.actor_id, AuditEvent.detail).where(
                AuditEvent.action == "judgment.submit"
            )
        ).all()
    assert len(judged) == 3
    assert sorted(int(entity) for entity, _, _ in audited) == judged
    assert {(actor, detail["study_id"]) for _, actor, detail in audited} == {(rater_id, study_id)}


def test_the_joined_session_check_refuses_like_the_old_one(rated) -> None:
    """The session is checked inside the step's own statement: a revoked session, an
    inactive account and a forged token are refused before anything else is said."""
    store, study_id, rater_id, token, _ = rated
    task = next_assignment(store, rater_id, study_id, session_token=token)

    def submit(session_token: str | None, assignment_token: str = task.token) -> None:
        key = uuid.uuid4().hex
        submit_judgment(
            store, rater_id, assignment_token, key, "left", LIKERT, session_token=session_token
        )

    with store.session() as session:
        session.execute(update(Account).where(Account.id == rater_id).values(active=False))
    for call in (
        lambda: next_assignment(store, rater_id, study_id, session_token=token),
        lambda: submit(token),
    ):
        with pytest.raises(AccessDenied, match="session has expired"):
            call()
    with store.session() as session:
        session.execute(update(Account).where(Account.id == rater_id).values(active=True))
    assert next_assignment(store, rater_id, study_id, session_token=token).token == task.token

    accounts.log_out(store, token)
    outsider = accounts.create_account(store, "outsider", "rater", PASSWORD)
    for call in (
        lambda: next_assignment(store, rater_id, study_id, session_token=token),
        lambda: submit(token),
        # Said first even for an unknown task link or a study the account is not in.
        lambda: submit(token, "no-such-task"),
        lambda: submit("forged", "no-such-task"),
        lambda: next_assignment(store, outsider.id, study_id, session_token="forged"),
    ):
        with pytest.raises(AccessDenied, match="session has expired"):
            call()
    with pytest.raises(AccessDenied, match="not a rater in this study"):
        next_assignment(store, outsider.id, study_id)
    with pytest.raises(AccessDenied, match="not valid"):
        submit(None, "no-such-task")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Judgment)) == 0
