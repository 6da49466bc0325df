"""A started reader study over a small synthetic benchmark, as the rating page meets it
(tests/security and the fault-injection child process build it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studies.readers import accounts
from studies.readers.accounts import AccountInfo
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.store.db import Store
from support.reader_world import SyntheticWorld, build_world

RATER_PASSWORD = "a long rater password 1"
# A full answer for the default form, in screen terms (left = Report A).
LIKERT = {
    "left": {"accuracy": 4, "completeness": 4, "safety": 4},
    "right": {"accuracy": 2, "completeness": 3, "safety": 2},
}


@dataclass
class StartedStudy:
    store: Store
    study_id: int
    raters: list[AccountInfo]
    world: SyntheticWorld

    def session_token(self, rater: AccountInfo) -> str:
        return accounts.open_session(self.store, rater.id)


def make_started_study(
    store: Store,
    root: Path,
    *,
    n_cases: int = 4,
    n_raters: int = 2,
    name: str = "Sec study",
    start: bool = True,
) -> StartedStudy:
    """A study over a small synthetic benchmark, every rater enrolled, started if `start`."""
    world = build_world(store, root, n_cases=n_cases, systems=("sys-alpha", "sys-beta"))
    raters = [
        accounts.create_account(
            store, f"{name.split()[0].lower()}-rater{i}", "rater", RATER_PASSWORD
        )
        for i in range(n_raters)
    ]
    design = StudyDesign(name=name, benchmark=world.benchmark, systems=world.systems, seed=3)
    study_id = start_with(store, design, raters, start=start)
    return StartedStudy(store, study_id, raters, world)


def start_with(
    store: Store, design: StudyDesign, raters: Iterable[AccountInfo], *, start: bool = True
) -> int:
    """Create the study, enrol each account on its panel, and start it (if `start`)."""
    study_id = create_study(store, design)
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    if start:
        start_study(store, study_id)
    return study_id
