"""Concurrent raters on SQLite and PostgreSQL: no judgment lost, none duplicated, overlap kept."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment, StudyItem

LIKERT = {
    "left": {"accuracy": 4, "completeness": 4, "safety": 4},
    "right": {"accuracy": 2, "completeness": 3, "safety": 2},
}


def test_concurrent_raters_lose_and_duplicate_nothing(store: Store, tmp_path: Path) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=6)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1") for i in range(4)
    ]
    study_id = create_study(
        store,
        StudyDesign(
            name="Load", benchmark=world.benchmark, systems=world.systems, overlap=2, seed=2
        ),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    errors: list[BaseException] = []
    created: Counter[int] = Counter()
    lock = threading.Lock()

    def tab(rater_id: int, name: str) -> None:
        # Each rater works in two tabs at once; every submit is also retried (same key).
        try:
            while (task := next_assignment(store, rater_id, study_id)) is not None:
                key = f"{task.token}:{name}"
                for _attempt in range(2):
                    result = submit_judgment(
                        store, rater_id, task.token, key, "left", LIKERT, "", 1.0
                    )
                    with lock:
                        created[result.judgment_id] += int(result.created)
                    # Both tabs send the same answer: a repeat is never a conflict.
                    assert not result.conflict
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=tab, args=(r.id, name)) for r in raters for name in ("t1", "t2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not errors, errors
    with store.session() as session:
        assignments = list(session.scalars(select(Assignment)))
        judgments = list(session.scalars(select(Judgment)))
        overlap = dict(session.execute(select(StudyItem.id, StudyItem.overlap)).all())
    per_assignment = Counter(j.assignment_id for j in judgments)
    assert set(per_assignment) == {a.id for a in assignments}  # none lost
    assert set(per_assignment.values()) == {1}  # none duplicated
    assert all(count == 1 for count in created.values()) and len(created) == len(judgments)
    copies = Counter(a.item_id for a in assignments if not a.is_duplicate)
    judged = Counter(
        a.item_id for a in assignments if not a.is_duplicate and a.id in per_assignment
    )
    assert all(copies[item] == overlap[item] for item in overlap)
    assert all(judged[item] <= overlap[item] for item in overlap)


def test_two_admins_starting_at_once_start_the_study_once(store: Store, tmp_path: Path) -> None:
    from studies.readers.design import StudyError

    world = build_world(store, tmp_path / "bench", n_cases=4)
    study_id = create_study(
        store, StudyDesign(name="Race", benchmark=world.benchmark, systems=world.systems)
    )
    for i in range(2):
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1")
        enrol_rater(store, study_id, f"rater{i}")
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            start_study(store, study_id)
            outcomes.append("started")
        except StudyError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 3 and outcomes.count("started") == 1
    assert all("already started" in o for o in outcomes if o != "started")
    with store.session() as session:
        items = list(session.scalars(select(StudyItem)))
        assignments = list(session.scalars(select(Assignment)))
    assert len(items) == 4 * 3
    assert len([a for a in assignments if not a.is_duplicate]) == len(items) * 2
