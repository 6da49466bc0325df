"""A started reader study on the synthetic world whose raters judged every assignment."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import Store
from studies.store.schema import Benchmark
from support.reader_world import build_world

PREFERENCES = ("left", "right", "tie", "left", "right")


def rated_study(
    store: Store,
    root: Path,
    *,
    synthetic_cases: bool,
    name: str = "Round (A) 1",
    n_cases: int = 3,
) -> str:
    """A started study whose two raters (real accounts) judged every assignment."""
    world = build_world(store, root, n_cases=n_cases, systems=("sys-alpha", "sys-beta"))
    if not synthetic_cases:
        with store.session() as session:
            session.execute(update(Benchmark).values(synthetic=False))
    raters = [
        accounts.create_account(store, f"reader{i}", "rater", "reader-password-1") for i in (1, 2)
    ]
    design = StudyDesign(
        name=name,
        benchmark=world.benchmark,
        systems=world.systems,
        overlap=2,
        seed=1,
        duplicate_fraction=0.0,
    )
    study_id = create_study(store, design)
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    for rater in raters:
        for turn in range(4 * n_cases + 8):
            task = next_assignment(store, rater.id, study_id)
            if task is None:
                break
            # Scores that vary by side and turn, as readers' do.
            likert = {
                side: {
                    "accuracy": 1 + (turn + shift) % 5,
                    "completeness": 1 + (turn + 2 * shift + 1) % 5,
                    "safety": 1 + (2 * turn + shift) % 5,
                }
                for shift, side in enumerate(("left", "right"))
            }
            preference = PREFERENCES[turn % len(PREFERENCES)]
            submit_judgment(
                store, rater.id, task.token, f"{rater.username}-{turn}", preference, likert, "", 3.0
            )
    return name
