"""Reader-study design, start and assignment: balance, overlap, sides, gold, duplicates."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select
from support.reader_world import build_world, set_report

from studies.readers import accounts
from studies.readers.design import GoldSpec, StudyDesign, StudyError, create_study, update_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import config_hash, start_study
from studies.readers.planning import PlanItem, plan_assignments
from studies.readers.progress import flagged_reports, study_progress
from studies.store.db import Store
from studies.store.schema import Assignment, AuditEvent, FlaggedReport, Study, StudyItem, System

PASSWORD = "rater-password-1"


def _items(n_cases: int, pairs: list[tuple[int, int]], gold: int = 0) -> list[PlanItem]:
    items = []
    for case in range(n_cases):
        for pair in pairs:
            items.append(PlanItem(len(items), case, pair, "regular"))
    for case in range(gold):
        items.append(PlanItem(len(items), 1000 + case, pairs[0], "gold"))
    return items


def test_plan_balances_and_respects_overlap() -> None:
    pairs = [(1, 2), (1, 3), (2, 3)]
    items = _items(20, pairs)
    raters = [11, 12, 13, 14, 15]
    plan = plan_assignments(items, raters, overlap=2, seed=3, duplicate_fraction=0.0)
    copies = Counter(p.item for p in plan)
    assert set(copies.values()) == {2} and len(copies) == len(items)
    loads = Counter(p.rater for p in plan)
    assert max(loads.values()) - min(loads.values()) <= 1
    for pair in pairs:
        pair_loads = Counter(p.rater for p in plan if items[p.item].pair == pair)
        assert max(pair_loads.values()) - min(pair_loads.values()) <= 1
    # No rater gets the same item twice.
    assert len({(p.rater, p.item) for p in plan}) == len(plan)


def test_plan_orders_sides_and_never_repeats_a_case_in_a_row() -> None:
    items = _items(15, [(1, 2), (1, 3), (2, 3)])
    plan = plan_assignments(items, [1, 2, 3], overlap=2, seed=5, duplicate_fraction=0.2)
    by_rater = defaultdict(list)
    for p in plan:
        by_rater[p.rater].append(p)
    orders = []
    for own in by_rater.values():
        own.sort(key=lambda p: p.order_index)
        assert [p.order_index for p in own] == list(range(len(own)))
        cases = [items[p.item].case_id for p in own]
        assert all(a != b for a, b in zip(cases, cases[1:], strict=False))
        originals = [p for p in own if not p.is_duplicate]
        left = sum(p.a_on_left for p in originals)
        assert abs(left - len(originals) / 2) <= 0.5
        duplicates = [p for p in own if p.is_duplicate]
        assert len(duplicates) == round(0.2 * len(originals))
        for dup in duplicates:
            first = next(p for p in originals if p.item == dup.item)
            assert dup.order_index > first.order_index
            assert dup.a_on_left != first.a_on_left
        orders.append([p.item for p in own])
    # Each rater has their own order.
    assert len({tuple(sorted(o)) for o in orders}) >= 1 and len({tuple(o) for o in orders}) == 3


def test_plan_is_seeded_and_gold_goes_to_everyone() -> None:
    items = _items(6, [(1, 2)], gold=2)
    first = plan_assignments(items, [1, 2, 3], overlap=1, seed=9)
    assert first == plan_assignments(items, [3, 2, 1], overlap=1, seed=9)
    assert first != plan_assignments(items, [1, 2, 3], overlap=1, seed=10)
    gold = [p for p in first if items[p.item].kind == "gold"]
    assert Counter(p.item for p in gold) == {6: 3, 7: 3}
    with pytest.raises(StudyError, match="needs at least 4"):
        plan_assignments(items, [1, 2, 3], overlap=4, seed=1)


def test_design_checks_fields() -> None:
    with pytest.raises(StudyError, match="at least two"):
        StudyDesign(name="s", benchmark="b", systems=["x"]).check()
    with pytest.raises(StudyError, match="comparator"):
        StudyDesign(name="s", benchmark="b", systems=["x", "y"], comparisons="comparator").check()
    with pytest.raises(StudyError, match="overlap"):
        StudyDesign(name="s", benchmark="b", systems=["x", "y"], overlap=0).check()
    design = StudyDesign(
        name="s", benchmark="b", systems=["x", "y", "z"], comparisons="comparator", comparator="x"
    )
    assert design.pairs() == [("x", "y"), ("x", "z")]


def _raters(store: Store, n: int) -> list[accounts.AccountInfo]:
    return [accounts.create_account(store, f"rater{i}", "rater", PASSWORD) for i in range(1, n + 1)]


def _study(store: Store, tmp_path: Path, n_raters: int = 3, **overrides) -> tuple[int, list]:
    world = build_world(store, tmp_path / "bench", n_cases=8)
    raters = _raters(store, n_raters)
    values = dict(
        name="Reading round 1",
        benchmark=world.benchmark,
        systems=world.systems,
        overlap=2,
        seed=1,
        duplicate_fraction=0.15,
    )
    values.update(overrides)
    study_id = create_study(store, StudyDesign(**values))
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    return study_id, raters


def test_start_freezes_hashes_and_assigns(store: Store, tmp_path: Path) -> None:
    study_id, raters = _study(
        store,
        tmp_path,
        gold=[GoldSpec(case_key="case-0007", better="sys-alpha", worse="sys-gamma")],
    )
    report = start_study(store, study_id)
    assert report.n_cases == 7 and report.n_items == 7 * 3 + 1
    with store.session() as session:
        study = session.get(Study, study_id)
        assert study.status == "active" and len(study.config_hash) == 64
        frozen = {k: v for k, v in study.config.items() if k != "config_hash"}
        assert config_hash(frozen) == study.config_hash
        items = list(session.scalars(select(StudyItem).where(StudyItem.study_id == study_id)))
        assert all(i.system_a_id < i.system_b_id for i in items)
        gold = [i for i in items if i.kind == "gold"]
        assert len(gold) == 1
        better = gold[0].system_a_id if gold[0].gold_answer == "a" else gold[0].system_b_id
        assert session.get(System, better).name == "sys-alpha"
        assignments = list(session.scalars(select(Assignment)))
        originals = Counter(a.item_id for a in assignments if not a.is_duplicate)
        for item in items:
            assert originals[item.id] == (len(raters) if item.kind == "gold" else 2)
        assert any(a.is_duplicate for a in assignments)
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"study.create", "study.enrol", "study.start"} <= actions
    with pytest.raises(StudyError, match="has started"):
        update_study(store, study_id, StudyDesign(name="x", benchmark="b", systems=["a", "b"]))
    with pytest.raises(StudyError, match="already started"):
        start_study(store, study_id)
    # A started study takes new raters through a panel amendment (tests/studies/
    # test_panel_changes.py); one already on the panel changes nothing.
    assert enrol_rater(store, study_id, "rater1") is False
    progress = study_progress(store, study_id)
    assert [r.done for r in progress.raters] == [0, 0, 0]
    assert sum(p.needed for p in progress.pairs) == 7 * 3 * 2


def test_start_refuses_missing_generations_and_too_few_raters(store: Store, tmp_path: Path) -> None:
    study_id, _ = _study(store, tmp_path, n_raters=1)
    with pytest.raises(StudyError, match="overlap 2 needs at least 2"):
        start_study(store, study_id)
    with store.session() as session:
        assert session.get(Study, study_id).status == "draft"
        assert session.scalar(select(func.count()).select_from(StudyItem)) == 0


def test_study_text_must_not_name_a_system(store: Store, tmp_path: Path) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=4)
    with pytest.raises(StudyError, match="must not name a system"):
        create_study(
            store,
            StudyDesign(
                name="sys-alpha versus others", benchmark=world.benchmark, systems=world.systems
            ),
        )
    with pytest.raises(StudyError, match="guidelines"):
        create_study(
            store,
            StudyDesign(
                name="ok",
                benchmark=world.benchmark,
                systems=world.systems,
                guidelines="One report comes from GPT-4.",
            ),
        )


def test_reports_naming_a_system_are_flagged_and_their_case_left_out(
    store: Store, tmp_path: Path
) -> None:
    study_id, _ = _study(store, tmp_path)
    set_report(store, "sys-beta", "case-0002", "Report by sys-beta: one 5 mm polyp.")
    set_report(store, "sys-gamma", "case-0005", "As an AI language model I see a polyp.")
    report = start_study(store, study_id)
    assert report.excluded_cases == ["case-0002", "case-0005"] and report.n_flagged == 2
    flagged = flagged_reports(store, study_id)
    assert {f.case_key for f in flagged} == {"case-0002", "case-0005"}
    assert "sys-beta" in flagged[0].reason
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(FlaggedReport)) == 2
        case_ids = set(session.scalars(select(StudyItem.case_id)))
        assert len(case_ids) == 6


def test_start_refuses_when_a_system_lacks_reports(store: Store, tmp_path: Path) -> None:
    from studies.store.schema import Generation

    study_id, _ = _study(store, tmp_path)
    with store.session() as session:
        beta = session.scalar(select(System).where(System.name == "sys-beta"))
        first = session.scalar(select(Generation).where(Generation.system_id == beta.id))
        session.delete(first)
    with pytest.raises(StudyError, match="missing for sys-beta"):
        start_study(store, study_id)


def test_stratified_sample(store: Store, tmp_path: Path) -> None:
    study_id, _ = _study(store, tmp_path, sample_size=4, duplicate_fraction=0.0)
    report = start_study(store, study_id)
    assert report.n_cases == 4
    with store.session() as session:
        frozen = session.get(Study, study_id).config
    assert len(frozen["case_ids"]) == 4


def test_invite_for_a_study_enrols_the_rater(store: Store, tmp_path: Path) -> None:
    study_id, _ = _study(store, tmp_path, n_raters=2)
    token = accounts.create_invite(store, role="rater", study_id=study_id)
    info, _session = accounts.accept_invite(store, token, "newrater", PASSWORD)
    from studies.readers.enrolment import study_raters

    assert "newrater" in study_raters(store, study_id)
    assert info.role == "rater"


def test_seed_demo_study_creates_accounts_and_a_started_study(store: Store, tmp_path: Path) -> None:
    from studies.demo.seed import DEMO_STUDY, seed_demo_study
    from studies.readers.progress import list_studies
    from studies.store.settings import Settings

    settings = Settings(home=tmp_path)
    assert seed_demo_study(store, settings) == []  # no synthetic benchmark yet
    build_world(store, tmp_path / "bench", n_cases=6)
    lines = seed_demo_study(store, settings)
    assert DEMO_STUDY in lines[0] and len(lines) == 4
    username, password = lines[2].split()[-3], lines[2].split()[-1]
    assert accounts.log_in(store, username, password)
    session_token = accounts.log_in(store, username, password)
    again = seed_demo_study(store, settings)
    assert [s.status for s in list_studies(store)] == ["active"]
    # Seeding again keeps passwords and sessions (and prints no password).
    assert password not in "\n".join(again) and "unchanged" in again[2]
    assert accounts.log_in(store, username, password)
    assert accounts.resolve_session(store, session_token).username == username


def test_the_demo_study_compares_the_model_with_the_baselines(store: Store, tmp_path: Path) -> None:
    """ebb17df's demo study held the three systems with the highest ids: two baselines and
    the reference, never the model."""
    from studies.demo.seed import DEMO_STUDY, seed_demo_study
    from studies.readers.design import study_design
    from studies.store.settings import Settings

    world = build_world(
        store,
        tmp_path / "bench",
        n_cases=6,
        systems=("tiny-vlm", "retrieval-baseline", "template-baseline", "reference"),
    )
    kinds = {"tiny-vlm": "vlm", "retrieval-baseline": "retrieval", "reference": "reference"}
    with store.session() as session:
        for system in session.scalars(select(System)):
            system.kind = kinds.get(system.name, "template")
    assert world.systems[0] == "tiny-vlm"
    seed_demo_study(store, Settings(home=tmp_path))
    design = study_design(store, DEMO_STUDY)
    assert design.comparisons == "comparator" and design.comparator == "tiny-vlm"
    assert set(design.systems) == {"tiny-vlm", "retrieval-baseline", "template-baseline"}
    assert all("tiny-vlm" in pair for pair in design.pairs())
