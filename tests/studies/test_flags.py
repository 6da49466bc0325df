"""Flags ("cannot assess"), on SQLite and PostgreSQL: a rater's flag takes the task out of
their queue and count; under the "reassign" policy the item moves to another active rater
who has not seen it (an amendment; every item still ends at its overlap, none above), under
"exclude" that copy is left out and counted as excluded; bad requests change nothing; the
admin's list says what happened. (9f89c26 had no flag: a rater could only skip unreadable
media for the session.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.reader_world import build_world
from support.started_study import LIKERT, start_with

from studies.readers import accounts
from studies.readers.amendments import verify_amendments
from studies.readers.design import StudyDesign, StudyError
from studies.readers.flags import flag_task, study_flags
from studies.readers.lifecycle import pause_study, resume_study
from studies.readers.panel import add_rater, deactivate_rater
from studies.readers.progress import study_progress
from studies.readers.rating import (
    AccessDenied,
    RatingError,
    next_assignment,
    rater_studies,
    submit_judgment,
)
from studies.store.db import Store
from studies.store.schema import Assignment, CaseFlag, Judgment, Study, StudyAmendment, StudyItem


def _study(
    store: Store,
    tmp_path: Path,
    n_raters: int,
    *,
    policy: str = "reassign",
    duplicates: float = 0.0,
    n_cases: int = 4,
) -> tuple[int, list[accounts.AccountInfo]]:
    world = build_world(store, tmp_path / "bench", n_cases=n_cases)
    raters = [
        accounts.create_account(store, f"rater{i}", "rater", "rater-password-1")
        for i in range(n_raters)
    ]
    design = StudyDesign(
        name="Flags",
        benchmark=world.benchmark,
        systems=world.systems[:2],
        overlap=2,
        seed=5,
        duplicate_fraction=duplicates,
        flag_policy=policy,
    )
    study_id = start_with(store, design, raters)
    return study_id, raters


def _counts(store: Store, rater_id: int) -> tuple[int, int]:
    [study] = rater_studies(store, rater_id)
    return study.done, study.total


def _finish(store: Store, study_id: int, rater_id: int) -> int:
    judged = 0
    while (task := next_assignment(store, rater_id, study_id)) is not None:
        submit_judgment(store, rater_id, task.token, f"{task.token}:k", "left", LIKERT)
        judged += 1
    return judged


def _originals(store: Store, study_id: int) -> dict[int, list[Assignment]]:
    with store.session() as session:
        rows = session.scalars(
            select(Assignment).where(
                Assignment.study_id == study_id, Assignment.is_duplicate.is_(False)
            )
        ).all()
    by_item: dict[int, list[Assignment]] = {}
    for row in rows:
        by_item.setdefault(row.item_id, []).append(row)
    return by_item


def test_a_flagged_case_goes_to_a_rater_who_has_not_seen_it(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path, 3, duplicates=0.5)
    flagger = raters[0]
    task = next_assignment(store, flagger.id, study_id)
    done, total = _counts(store, flagger.id)
    with store.session() as session:
        item_id = session.scalar(select(Assignment.item_id).where(Assignment.token == task.token))
        copies = session.scalar(
            select(func.count()).where(
                Assignment.rater_id == flagger.id, Assignment.item_id == item_id
            )
        )
        before = set(
            session.scalars(select(Assignment.rater_id).where(Assignment.item_id == item_id))
        )
    (newcomer,) = {r.id for r in raters} - before

    result = flag_task(store, flagger.id, task.token, "flag-1", "image_quality", "")
    assert result.created and result.outcome == "reassigned"
    # The task (and the rater's duplicate of it) left their queue and their count.
    assert next_assignment(store, flagger.id, study_id).token != task.token
    assert _counts(store, flagger.id) == (done, total - copies)
    # It moved, never copied: the item keeps its overlap, now with the rater who lacked it.
    holders = {a.rater_id for a in _originals(store, study_id)[item_id]}
    assert len(_originals(store, study_id)[item_id]) == 2
    assert newcomer in holders and flagger.id not in holders
    # The old link is dead: a submit from the flagger's page writes nothing.
    with pytest.raises(AccessDenied, match="handed to another rater"):
        submit_judgment(store, flagger.id, task.token, "late", "left", LIKERT)
    # The same flag again (double click): nothing new.
    again = flag_task(store, flagger.id, task.token, "flag-1", "image_quality", "")
    assert (again.flag_id, again.created, again.outcome) == (result.flag_id, False, "reassigned")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseFlag)) == 1
        [amendment] = session.scalars(select(StudyAmendment)).all()
        assert amendment.action == "task.flag" and amendment.detail["rater"] == "rater0"
        assert verify_amendments(session, session.get(Study, study_id))

    [info] = study_flags(store, study_id)
    assert (info.rater, info.reason, info.outcome) == ("rater0", "image_quality", "reassigned")
    assert info.position == task.position
    assert info.what_happened == f"handed to rater{raters.index(_by_id(raters, newcomer))}"

    # The flagger never gets the case back: the new holder leaves, nobody else can take it.
    holder = _by_id(raters, newcomer)
    change = deactivate_rater(store, study_id, holder.username)
    assert flagger.id not in {a.rater_id for a in _originals(store, study_id)[item_id]}
    assert change.stranded >= 1
    add_rater(store, study_id, holder.username)  # back on the panel: takes it again

    for rater in raters:
        _finish(store, study_id, rater.id)
    # Every item ends at its overlap, none above; the flagged copy has no judgment.
    with store.session() as session:
        judged = Counter(
            session.scalars(
                select(Assignment.item_id)
                .join(Judgment, Judgment.assignment_id == Assignment.id)
                .where(Assignment.is_duplicate.is_(False))
            )
        )
        items = session.scalars(select(StudyItem).where(StudyItem.kind == "regular")).all()
    assert all(judged[item.id] == item.overlap for item in items)
    progress = study_progress(store, study_id)
    assert all(r.remaining == 0 for r in progress.raters)
    assert sum(p.done for p in progress.pairs) == sum(p.needed for p in progress.pairs)


def _by_id(raters: list[accounts.AccountInfo], rater_id: int) -> accounts.AccountInfo:
    return next(r for r in raters if r.id == rater_id)


def test_exclude_policy_leaves_the_copy_out_and_counts_it(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path, 2, policy="exclude")
    task = next_assignment(store, raters[0].id, study_id)
    done, total = _counts(store, raters[0].id)
    result = flag_task(store, raters[0].id, task.token, "k1", "other", "  dark, blurred  ")
    assert result.outcome == "excluded"
    assert next_assignment(store, raters[0].id, study_id).token != task.token
    assert _counts(store, raters[0].id) == (done, total - 1)
    # A second tab that still shows the case cannot judge it.
    with pytest.raises(RatingError, match="flagged this case"):
        submit_judgment(store, raters[0].id, task.token, "k2", "left", LIKERT)
    # A flag with another key of the same task: the first flag stands.
    assert flag_task(store, raters[0].id, task.token, "k3", "image_quality").flag_id == (
        result.flag_id
    )
    [info] = study_flags(store, study_id)
    assert (info.note, info.outcome, info.now_with) == ("dark, blurred", "excluded", "")
    for rater in raters:
        _finish(store, study_id, rater.id)
    progress = study_progress(store, study_id)
    assert {r.username: (r.flagged, r.remaining) for r in progress.raters} == {
        "rater0": (1, 0),
        "rater1": (0, 0),
    }
    [pair] = progress.pairs
    assert (pair.done, pair.flagged, pair.needed) == (pair.needed - 1, 1, pair.needed)
    with store.session() as session:
        # Every copy judged but the excluded one.
        n_tasks = session.scalar(select(func.count()).select_from(Assignment))
        assert session.scalar(select(func.count()).select_from(Judgment)) == n_tasks - 1


def test_reassign_with_nobody_free_waits_for_the_next_rater(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path, 2)
    task = next_assignment(store, raters[0].id, study_id)
    result = flag_task(store, raters[0].id, task.token, "k1", "media_broken")
    assert result.outcome == "waiting"
    assert next_assignment(store, raters[0].id, study_id).token != task.token
    [info] = study_flags(store, study_id)
    assert info.outcome == "waiting" and "add one to the panel" in info.what_happened
    assert study_progress(store, study_id).pairs[0].flagged == 1
    late = accounts.create_account(store, "late", "rater", "rater-password-1")
    change = add_rater(store, study_id, late.username)
    assert change.moved >= 1 and change.stranded == 0
    [info] = study_flags(store, study_id)
    assert (info.outcome, info.now_with) == ("reassigned", "late")
    for rater_id in (raters[0].id, raters[1].id, late.id):
        _finish(store, study_id, rater_id)
    progress = study_progress(store, study_id)
    assert sum(p.done for p in progress.pairs) == sum(p.needed for p in progress.pairs)


def test_bad_flags_say_what_to_fix_and_write_nothing(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(store, tmp_path, 2)
    task = next_assignment(store, raters[0].id, study_id)
    with pytest.raises(RatingError, match="'other': write a short note"):
        flag_task(store, raters[0].id, task.token, "k", "other", "   ")
    with pytest.raises(RatingError, match="image_quality, media_broken, other"):
        flag_task(store, raters[0].id, task.token, "k", "boring")
    with pytest.raises(AccessDenied, match="not one of yours"):
        flag_task(store, raters[1].id, task.token, "k", "image_quality")
    session_token = accounts.open_session(store, raters[0].id)
    accounts.log_out(store, session_token)
    with pytest.raises(AccessDenied, match="expired"):
        flag_task(
            store, raters[0].id, task.token, "k", "image_quality", session_token=session_token
        )
    pause_study(store, study_id)
    with pytest.raises(RatingError, match="paused"):
        flag_task(store, raters[0].id, task.token, "k", "image_quality")
    resume_study(store, study_id)
    submit_judgment(store, raters[0].id, task.token, "answer", "left", LIKERT)
    with pytest.raises(RatingError, match="already answered"):
        flag_task(store, raters[0].id, task.token, "k", "image_quality")
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseFlag)) == 0
        assert session.scalar(select(func.count()).select_from(StudyAmendment)) == 0
    with pytest.raises(StudyError, match="flag_policy: use one of reassign, exclude"):
        StudyDesign(name="x", benchmark="b", systems=["a", "b"], flag_policy="drop").check()


def test_flag_and_go_on_for_unreadable_media_is_a_media_broken_flag(
    store: Store, tmp_path: Path
) -> None:
    from studies.readers.media_problems import flag_unreadable, media_problems, report_media_problem

    study_id, raters = _study(store, tmp_path, 3)
    task = next_assignment(store, raters[0].id, study_id)
    report_media_problem(store, raters[0].id, task.token, OSError("image file is truncated"))
    result = flag_unreadable(store, raters[0].id, task.token, "skip-1")
    assert result.outcome == "reassigned"
    assert next_assignment(store, raters[0].id, study_id).token != task.token
    [info] = study_flags(store, study_id)
    assert (info.reason, info.note) == ("media_broken", "OSError: image file is truncated")
    [problem] = media_problems(store, study_id)
    assert (problem.rater, problem.position) == ("rater0", task.position)


def test_a_flagged_training_case_does_not_hold_the_rater_back(store: Store, tmp_path: Path) -> None:
    from studies.readers.design import GoldSpec
    from studies.readers.rating import calibration_status

    world = build_world(store, tmp_path / "bench", n_cases=5)
    rater = accounts.create_account(store, "trainee", "rater", "rater-password-1")
    alpha, beta = world.systems[:2]
    study_id = start_with(
        store,
        StudyDesign(
            name="Trained",
            benchmark=world.benchmark,
            systems=[alpha, beta],
            overlap=1,
            duplicate_fraction=0.0,
            calibration=[GoldSpec(k, alpha, beta) for k in world.case_keys[:2]],
            calibration_threshold=1.0,
        ),
        [rater],
    )
    first = next_assignment(store, rater.id, study_id)
    flag_task(store, rater.id, first.token, "k1", "media_broken")
    second = next_assignment(store, rater.id, study_id)
    with store.session() as session:
        assignment = session.scalar(select(Assignment).where(Assignment.token == second.token))
        item = session.get(StudyItem, assignment.item_id)
    assert item.kind == "calibration"
    side = "left" if (item.gold_answer == "a") == assignment.a_on_left else "right"
    submit_judgment(store, rater.id, second.token, "k2", side, LIKERT)
    # The one training case answered matched: the main cases open.
    status = calibration_status(store, rater.id, study_id)
    assert (status.judged, status.total, status.passed) == (1, 1, True)
    main = next_assignment(store, rater.id, study_id)
    assert main is not None and main.position > 2
    [info] = study_flags(store, study_id)
    assert (info.kind, info.outcome) == ("calibration", "excluded")


def test_flags_while_others_submit_keep_the_overlap(store: Store, tmp_path: Path) -> None:
    import threading

    study_id, raters = _study(store, tmp_path, 4, n_cases=8)
    errors: list[BaseException] = []
    written: list[int] = []
    flagged: list[int] = []
    lock = threading.Lock()

    def work(rater_id: int, flag_every: int) -> None:
        try:
            count = 0
            while (task := next_assignment(store, rater_id, study_id)) is not None:
                count += 1
                try:
                    if flag_every and count % flag_every == 0:
                        result = flag_task(
                            store, rater_id, task.token, f"{task.token}:f", "other", "x"
                        )
                        with lock:
                            flagged.append(result.flag_id)
                    else:
                        result = submit_judgment(
                            store, rater_id, task.token, f"{task.token}:k", "left", LIKERT
                        )
                        with lock:
                            written.append(result.judgment_id)
                except (AccessDenied, RatingError):
                    continue  # the task moved to this rater's list and on again meanwhile
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(r.id, 2 if n == 0 else 0)) for n, r in enumerate(raters)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for rater in raters[1:]:
        _finish(store, study_id, rater.id)
    assert flagged
    with store.session() as session:
        judgments = set(session.scalars(select(Judgment.id)))
        judged = Counter(
            session.scalars(
                select(Assignment.item_id).join(Judgment, Judgment.assignment_id == Assignment.id)
            )
        )
        items = session.scalars(select(StudyItem).where(StudyItem.kind == "regular")).all()
        copies = Counter(session.scalars(select(Assignment.item_id)))
        assert verify_amendments(session, session.get(Study, study_id))
    assert set(written) <= judgments  # nothing a submit reported is lost
    for item in items:
        assert copies[item.id] == item.overlap and judged[item.id] == item.overlap
