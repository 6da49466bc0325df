"""Washout of duplicates (intra-rater reliability): a duplicate comes at least M tasks after
its case (a stated M is never relaxed; a list too short for it is refused at the start), and,
with a washout in days, it is shown only N days after the rater judged the case, on SQLite
and PostgreSQL. (ebb17df had neither: the gap was a third of the list, relaxed silently, and
a duplicate could follow the case on the same day.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts, rating
from studies.readers.design import StudyDesign, StudyError, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.planning import PlanItem, plan_assignments
from studies.readers.rating import next_assignment, next_available_at, submit_judgment
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment

LIKERT = {side: {"accuracy": 3, "completeness": 3, "safety": 3} for side in ("left", "right")}


def _items(n: int) -> list[PlanItem]:
    return [PlanItem(i, 100 + i, (1, 2), "regular") for i in range(n)]


@pytest.mark.parametrize("washout", [3, 8])
def test_every_duplicate_comes_at_least_washout_cases_after_its_case(washout: int) -> None:
    planned = plan_assignments(
        _items(12), [1, 2], overlap=2, seed=4, duplicate_fraction=0.5, washout_cases=washout
    )
    for rater in (1, 2):
        own = [p for p in planned if p.rater == rater]
        first = {p.item: p.order_index for p in own if not p.is_duplicate}
        duplicates = [p for p in own if p.is_duplicate]
        assert len(duplicates) == 6
        assert all(p.order_index - first[p.item] >= washout for p in duplicates)


def test_a_washout_the_list_cannot_hold_is_refused() -> None:
    with pytest.raises(StudyError, match="washout_cases 20: a rater has 6 tasks.*at most 4"):
        plan_assignments(
            _items(4), [1, 2], overlap=2, seed=4, duplicate_fraction=0.5, washout_cases=20
        )
    with pytest.raises(StudyError, match="washout_days"):
        StudyDesign(name="x", benchmark="b", systems=["a", "b"], washout_days=-1).check()
    with pytest.raises(StudyError, match="washout_cases"):
        StudyDesign(name="x", benchmark="b", systems=["a", "b"], washout_cases=0).check()


def test_a_duplicate_waits_washout_days_after_its_case_is_judged(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=4)
    rater = accounts.create_account(store, "ada", "rater", "rater-password-1")
    other = accounts.create_account(store, "bob", "rater", "rater-password-1")
    study_id = create_study(
        store,
        StudyDesign(
            name="Washout",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=2,
            duplicate_fraction=0.5,
            washout_days=14,
            seed=1,
        ),
    )
    for account in (rater, other):
        enrol_rater(store, study_id, account.username)
    start_study(store, study_id)
    judged_at = {}
    while (task := next_assignment(store, rater.id, study_id)) is not None:
        result = submit_judgment(store, rater.id, task.token, f"{task.token}:k", "tie", LIKERT)
        judged_at[task.token] = result.judgment_id
    with store.session() as session:
        own = list(session.scalars(select(Assignment).where(Assignment.rater_id == rater.id)))
        judged = set(session.scalars(select(Judgment.assignment_id)))
        first_judged = {
            a.item_id: j.submitted_at
            for a in own
            for j in session.scalars(select(Judgment).where(Judgment.assignment_id == a.id))
        }
    duplicates = [a for a in own if a.is_duplicate]
    assert duplicates and all(a.id not in judged for a in duplicates)  # none shown yet
    assert all(a.id in judged for a in own if not a.is_duplicate)
    due = next_available_at(store, rater.id, study_id)
    earliest = min(first_judged[a.item_id] for a in duplicates)
    assert due is not None
    assert abs((due - rating.aware(earliest)) - timedelta(days=14)) < timedelta(seconds=1)

    # Fifteen days later every duplicate is due and shown, each once.
    later = rating.now_utc() + timedelta(days=15)
    monkeypatch.setattr(rating, "now_utc", lambda: later)
    shown = 0
    while (task := next_assignment(store, rater.id, study_id)) is not None:
        submit_judgment(store, rater.id, task.token, f"{task.token}:k", "tie", LIKERT)
        shown += 1
    assert shown == len(duplicates)
    assert next_available_at(store, rater.id, study_id) is None


def test_studies_create_takes_the_washout(tmp_home: Path) -> None:
    from typer.testing import CliRunner

    from studies.readers.design import study_design
    from studies.store.db import get_store
    from workbench.cli import app

    store = get_store()
    world = build_world(store, tmp_home / "data" / "reader", n_cases=4)
    systems = [arg for s in world.systems for arg in ("--system", s)]
    training = tmp_home / "training.txt"
    training.write_text(f"{world.case_keys[0]}, {world.systems[0]}, {world.systems[1]}\n")
    result = CliRunner().invoke(
        app,
        ["studies", "create", "--name", "W", "--benchmark", world.benchmark, *systems,
         "--washout-cases", "3", "--washout-days", "28",
         "--calibration-file", str(training), "--calibration-threshold", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    design = study_design(store, "W")
    assert (design.washout_cases, design.washout_days) == (3, 28.0)
    # The calibration options of the same command (tests/studies/test_calibration.py).
    assert [c.case_key for c in design.calibration] == world.case_keys[:1]
    assert design.calibration_threshold == 0.5
    bad = CliRunner().invoke(
        app,
        ["studies", "create", "--name", "W2", "--benchmark", world.benchmark, *systems,
         "--washout-days", "400"],
    )  # fmt: skip
    assert bad.exit_code == 1 and "washout_days: between 0 and 365" in bad.output
