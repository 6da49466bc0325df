"""One current judgment: after corrections, rating, the raw export, the stats loader and
preference harvesting agree on which judgment of each assignment counts (both backends)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select
from support.reader_world import build_world

from studies.preferences.harvest import HarvestPolicy, harvest_preferences
from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.judgments import study_judgments
from studies.readers.lifecycle import start_study
from studies.readers.rating import (
    correct_judgment,
    export_judgments,
    last_judged_task,
    next_assignment,
    previous_answer,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, Judgment

LIKERT = {
    "left": {"accuracy": 4, "completeness": 3, "safety": 5},
    "right": {"accuracy": 2, "completeness": 2, "safety": 1},
}


def _shown_for(winner: str, a_on_left: bool) -> str:
    """The on-screen choice that gives `winner` for an assignment shown this way round."""
    return "left" if (winner == "a") == a_on_left else "right"


def test_current_judgment_is_one_answer_everywhere_after_corrections(
    store: Store, tmp_path: Path
) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=4, systems=("sys-a", "sys-b"))
    raters = [accounts.create_account(store, f"rater{i}", "rater", "pw-rater-123") for i in (1, 2)]
    study_id = create_study(
        store,
        StudyDesign(
            name="Corrected",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=2,
            duplicate_fraction=0.0,
        ),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    first, second = raters

    step = 0
    while (task := next_assignment(store, first.id, study_id)) is not None:
        step += 1
        submit_judgment(store, first.id, task.token, f"r1-{step}", "left", LIKERT)
    # Two corrections of the last task: left -> tie -> right; only the last one counts.
    corrected = last_judged_task(store, first.id, study_id)
    tie = correct_judgment(store, first.id, corrected.token, "fix-1", "tie", LIKERT)
    final = correct_judgment(store, first.id, corrected.token, "fix-2", "right", LIKERT)
    with store.session() as session:
        chain = session.execute(
            select(Judgment.id, Judgment.supersedes_id, Assignment.item_id)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .where(Assignment.token == corrected.token)
            .order_by(Judgment.id)
        ).all()
        item_id = chain[0].item_id
        other = session.scalar(
            select(Assignment).where(
                Assignment.item_id == item_id, Assignment.rater_id == second.id
            )
        )
        other_token, other_a_on_left = other.token, other.a_on_left
    assert [row.supersedes_id for row in chain] == [None, chain[0].id, tie.judgment_id]
    # The second rater agrees with the corrected answer on that item.
    step = 0
    while (task := next_assignment(store, second.id, study_id)) is not None:
        step += 1
        shown = _shown_for(final.winner, other_a_on_left) if task.token == other_token else "left"
        submit_judgment(store, second.id, task.token, f"r2-{step}", shown, LIKERT)

    # Rating: the previous answer is the last correction, and a plain resubmit returns it.
    previous = previous_answer(store, first.id, study_id)
    assert previous.preference_shown == "right" and previous.task.token == corrected.token
    again = submit_judgment(store, first.id, corrected.token, "again", "left", LIKERT)
    assert (again.created, again.judgment_id) == (False, final.judgment_id)

    # Export: every judgment, exactly the current ones unflagged.
    exported = list(csv.DictReader(io.StringIO(export_judgments(store, study_id, "csv"))))
    assert len(exported) == 4 + 2 + 4
    current = {int(r["judgment_id"]) for r in exported if r["superseded"] == "False"}
    flagged = {int(r["judgment_id"]) for r in exported if r["superseded"] == "True"}
    assert flagged == {chain[0].id, tie.judgment_id} and final.judgment_id in current
    assert len(current) == 8

    # Stats: the same current judgments.
    frame = study_judgments(store, "Corrected")
    assert set(frame["judgment_id"].astype(int)) == current

    # Harvest: one vote per rater from the current judgments only.
    result = harvest_preferences(store, "Corrected", HarvestPolicy(ties="keep"))
    (pair,) = [p for p in result.pairs if p.item_id == item_id]
    assert pair.votes[final.winner] == 2 and sum(pair.votes.values()) == 2
    assert result.counts["items_judged"] == 4
