"""An annotation study on the rating side, on SQLite and PostgreSQL: its tasks count as done
when annotated (the study list, progress per rater, the rater's own count), the pairwise
rating path refuses it instead of serving one report on both sides, and its panel changes
like a comparison's (an annotator taken off hands on the cases not annotated yet, each case
keeps its overlap). (Before: done 0 / N for an annotated study; next_assignment served its
items as pairs; panel changes moved no annotation task.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.reader_world import build_world
from support.started_study import start_with

from studies.readers import accounts
from studies.readers.annotation import next_annotation, submit_annotation
from studies.readers.design import StudyDesign
from studies.readers.progress import list_studies, study_progress
from studies.readers.rating import RatingError, next_assignment, rater_studies, submit_judgment
from studies.store.db import Store

LIKERT = {side: {"accuracy": 3, "completeness": 3, "safety": 3} for side in ("left", "right")}


def test_annotation_tasks_count_when_annotated_and_are_not_rated(
    store: Store, tmp_path: Path
) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=3)
    annotator = accounts.create_account(store, "anna", "rater", "rater-password-1")
    study_id = start_with(
        store,
        StudyDesign(
            name="Expert round",
            benchmark=world.benchmark,
            systems=world.systems[:1],
            kind="annotation",
            overlap=1,
        ),
        [annotator],
    )
    task = next_annotation(store, annotator.id, study_id)
    submit_annotation(
        store, annotator.id, task.token, "a1", "Normal colonoscopy.", {"no_polyps": True}
    )
    [summary] = list_studies(store)
    assert (summary.n_done, summary.n_assignments) == (1, 3)
    [rater] = study_progress(store, study_id).raters
    assert (rater.done, rater.remaining) == (1, 2)
    assert rater.last_submitted_at is not None
    [mine] = rater_studies(store, annotator.id)
    assert (mine.done, mine.total) == (1, 3)
    with pytest.raises(RatingError, match="annotation study: open it on the 'Annotate cases'"):
        next_assignment(store, annotator.id, study_id)
    other = next_annotation(store, annotator.id, study_id)
    with pytest.raises(RatingError, match="annotation study.*Nothing was saved"):
        submit_judgment(store, annotator.id, other.token, "j1", "left", LIKERT)


def test_an_annotation_study_panel_changes_keep_its_overlap(store: Store, tmp_path: Path) -> None:
    from collections import Counter

    from sqlalchemy import select

    from studies.readers.panel import add_rater, deactivate_rater
    from studies.store.schema import Annotation, Assignment

    world = build_world(store, tmp_path / "bench", n_cases=4)
    annotators = [
        accounts.create_account(store, f"anna{i}", "rater", "rater-password-1") for i in range(3)
    ]
    study_id = start_with(
        store,
        StudyDesign(
            name="Expert round",
            benchmark=world.benchmark,
            systems=world.systems[:1],
            kind="annotation",
            overlap=2,
        ),
        annotators,
    )
    leaving = annotators[0]
    done = next_annotation(store, leaving.id, study_id)
    submit_annotation(
        store, leaving.id, done.token, "a1", "Normal colonoscopy.", {"no_polyps": True}
    )
    change = deactivate_rater(store, study_id, leaving.username)
    assert change.moved + change.stranded >= 1

    def check() -> None:
        with store.session() as session:
            rows = session.execute(
                select(Assignment.item_id, Assignment.rater_id, Assignment.token)
            ).all()
            annotated = set(session.scalars(select(Assignment.token).join(Annotation)))
        copies = Counter(item for item, _rater, _token in rows)
        assert set(copies.values()) == {2}
        assert all(len({r for i, r, _t in rows if i == item}) == 2 for item in copies)
        assert done.token in annotated  # the annotated task stayed, under its annotator

    check()
    late = accounts.create_account(store, "late", "rater", "rater-password-1")
    added = add_rater(store, study_id, late.username)
    assert added is not None and added.moved >= 1
    check()
