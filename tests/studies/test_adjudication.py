"""Adjudication on SQLite and PostgreSQL: items whose raters disagree (a preference split, a
harm rating spread of 2 or more) go to a senior rater's queue, who answers on the ordinary
rating path; the answer is recorded with provenance, left out of the reader statistics, kept
in the export, and decides the item in preference harvesting when the policy says
`adjudication="use"`. (ebb17df had no adjudication: no queue, no policy option.)"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from test_panel_changes import _check_overlap, _study

from studies.preferences.harvest import harvest_preferences
from studies.preferences.policy import HarvestPolicy
from studies.readers import accounts
from studies.readers.adjudication import (
    AdjudicationRule,
    adjudicated_answers,
    adjudication_queue,
    queue_adjudication,
)
from studies.readers.design import StudyError
from studies.readers.judgments import study_judgments
from studies.readers.panel import add_rater
from studies.readers.rating import (
    export_judgments,
    next_assignment,
    rater_studies,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment, StudyItem

# Each rater always clicks the same side, so whether two raters agree depends on where each
# saw system A; rater0 and rater1 also differ by 3 on the harm (safety) criterion.
CLICKS = {"rater0": "left", "rater1": "right", "rater2": "left"}
SAFETY = {"rater0": 1, "rater1": 4, "rater2": 2}


def _rate_all(store: Store, study_id: int, raters: list) -> None:
    for rater in raters:
        safety = SAFETY[rater.username]
        likert = {
            side: {"accuracy": 3, "completeness": 3, "safety": safety} for side in ("left", "right")
        }
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            submit_judgment(
                store, rater.id, task.token, f"{task.token}:k", CLICKS[rater.username], likert
            )


def _expected_disagreements(store: Store, study_id: int, harm_spread: int | None) -> set[int]:
    """Worked out here from the stored judgments, independently of the module."""
    with store.session() as session:
        rows = session.execute(
            select(StudyItem.id, Judgment.rater_id, Judgment.winner, Judgment.likert)
            .join(Assignment, Assignment.item_id == StudyItem.id)
            .join(Judgment, Judgment.assignment_id == Assignment.id)
            .where(StudyItem.study_id == study_id, StudyItem.kind == "regular")
        ).all()
    by_item: dict[int, dict[int, tuple[str, dict]]] = {}
    for item_id, rater_id, winner, likert in rows:
        by_item.setdefault(item_id, {})[rater_id] = (winner, likert)
    found = set()
    for item_id, votes in by_item.items():
        winners = {w for w, _ in votes.values()}
        spread = max(
            max(lk[side]["safety"] for _, lk in votes.values())
            - min(lk[side]["safety"] for _, lk in votes.values())
            for side in ("a", "b")
        )
        if len(votes) >= 2 and (
            len(winners) > 1 or (harm_spread is not None and spread >= harm_spread)
        ):
            found.add(item_id)
    return found


def test_disagreements_go_to_the_senior_rater_and_decide_the_harvest(
    store: Store, tmp_path: Path
) -> None:
    study_id, raters = _study(store, tmp_path, 3, n_cases=3)
    senior = accounts.create_account(store, "senior", "rater", "senior-password-1")
    _rate_all(store, study_id, raters)
    split_only = _expected_disagreements(store, study_id, None)
    expected = _expected_disagreements(store, study_id, 2)
    assert split_only and expected > split_only  # the harm spread adds items

    change = queue_adjudication(
        store, study_id, "senior", AdjudicationRule(preference_split=True, harm_spread=2)
    )
    assert change.added == len(expected) and change.number == 1
    again = queue_adjudication(store, study_id, "senior")
    assert again.added == 0  # nothing is queued twice
    assert [(q.adjudicator, q.queued, q.done) for q in adjudication_queue(store, study_id)] == [
        ("senior", len(expected), 0)
    ]

    # The senior rater works through the ordinary rating path, blinded like any rater.
    assert [s.id for s in rater_studies(store, senior.id)] == [study_id]
    likert = {side: {"accuracy": 4, "completeness": 4, "safety": 4} for side in ("left", "right")}
    answered = 0
    while (task := next_assignment(store, senior.id, study_id)) is not None:
        submit_judgment(store, senior.id, task.token, f"{task.token}:s", "left", likert)
        answered += 1
    assert answered == len(expected)
    with store.session() as session:
        answers = adjudicated_answers(session, study_id)
        a_on_left = {
            item: side
            for item, side in session.execute(
                select(StudyItem.adjudicates_id, Assignment.a_on_left)
                .join(Assignment, Assignment.item_id == StudyItem.id)
                .where(StudyItem.kind == "adjudication")
            ).all()
        }
    assert set(answers) == expected
    for item_id, answer in answers.items():
        assert answer.adjudicator == "senior"
        assert answer.winner == ("a" if a_on_left[item_id] else "b")
    _check_overlap(store, study_id, all_judged=True)

    # Harvest: with "use", every adjudicated item becomes a pair on the senior's side.
    used = harvest_preferences(store, "Panel", HarvestPolicy(adjudication="use"))
    by_item = {p.item_id: p for p in used.pairs}
    for item_id, answer in answers.items():
        pair = by_item[item_id]
        assert pair.detail["adjudication"]["judgment_id"] == answer.judgment_id
        assert pair.detail["adjudication"]["adjudicator"] == "senior"
    ignored = harvest_preferences(store, "Panel", HarvestPolicy())
    assert ignored.counts["dropped"].get("no_majority", 0) > 0
    assert not any("adjudication" in p.detail for p in ignored.pairs)
    assert len(used.pairs) > len(ignored.pairs)

    # Statistics leave the senior out; the export keeps the answer and says what it settles.
    frame = study_judgments(store, "Panel")
    assert "senior" not in set(frame["rater"])
    rows = list(csv.DictReader(io.StringIO(export_judgments(store, study_id))))
    settled = [r for r in rows if r["item_kind"] == "adjudication"]
    assert len(settled) == len(expected)
    assert {int(r["adjudicates_item"]) for r in settled} == expected
    assert "disagreements sent to adjudication: senior" in rows[0]["study_amendments"]


def test_adjudication_refuses_bad_requests_and_stays_off_the_panel(
    store: Store, tmp_path: Path
) -> None:
    study_id, raters = _study(store, tmp_path, 3, n_cases=2)
    accounts.create_account(store, "senior", "rater", "senior-password-1")
    late = accounts.create_account(store, "late", "rater", "rater-password-1")
    with pytest.raises(StudyError, match="harm_spread"):
        queue_adjudication(store, study_id, "senior", AdjudicationRule(harm_spread=7))
    with pytest.raises(StudyError, match="not on its panel"):
        queue_adjudication(store, study_id, "rater0")
    assert queue_adjudication(store, study_id, "senior").added == 0  # nothing judged yet
    with pytest.raises(StudyError, match="adjudicates this study"):
        add_rater(store, study_id, "senior")
    # A rater added later takes tasks from the raters, never from or to the senior rater.
    change = add_rater(store, study_id, "late")
    assert change is not None and change.moved > 0
    with store.session() as session:
        senior_tasks = session.scalars(
            select(Assignment)
            .join(StudyItem, StudyItem.id == Assignment.item_id)
            .where(StudyItem.kind == "regular", Assignment.rater_id != late.id)
            .where(Assignment.rater_id.notin_([r.id for r in raters]))
        ).all()
    assert senior_tasks == []
    _check_overlap(store, study_id, all_judged=False)
