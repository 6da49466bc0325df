"""The design page's workload preview: tasks per rater as the plan makes them, checked
against the plan itself and against a started study (ebb17df had no preview)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import GoldSpec, StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study, workload_preview
from studies.readers.planning import PlanItem, plan_assignments, workload
from studies.store.db import Store
from studies.store.schema import Assignment


@pytest.mark.parametrize(
    ("n_cases", "n_pairs", "overlap", "raters", "fraction"),
    [(10, 3, 2, 4, 0.1), (7, 1, 3, 5, 0.0), (12, 3, 2, 3, 0.3), (5, 2, 1, 4, 0.5)],
)
def test_workload_is_what_the_plan_assigns(
    n_cases: int, n_pairs: int, overlap: int, raters: int, fraction: float
) -> None:
    items = [
        PlanItem(c * n_pairs + p, c, (p, p + 1), "regular")
        for c in range(n_cases)
        for p in range(n_pairs)
    ]
    items.append(PlanItem(len(items), 999, (0, 1), "gold"))
    planned = plan_assignments(
        items, list(range(raters)), overlap=overlap, seed=3, duplicate_fraction=fraction
    )
    loads = Counter(p.rater for p in planned)
    expected = workload(
        n_cases, n_pairs, overlap=overlap, n_raters=raters, n_gold=1, duplicate_fraction=fraction
    )
    assert (min(loads.values()), max(loads.values())) == (expected.fewest, expected.most)


def test_the_preview_of_a_draft_matches_the_started_study(store: Store, tmp_path: Path) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=7)
    alpha, beta = world.systems[:2]
    study_id = create_study(
        store,
        StudyDesign(
            name="Load",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=2,
            gold=[GoldSpec(world.case_keys[0], alpha, beta)],
            calibration=[GoldSpec(world.case_keys[1], alpha, beta)],
        ),
    )
    assert "overlap 2 needs at least 2 raters; 0 enrolled" in workload_preview(store, study_id)
    for i in range(3):
        account = accounts.create_account(store, f"r{i}", "rater", "rater-password-1")
        enrol_rater(store, study_id, account.username)
    preview = workload_preview(store, study_id)
    start_study(store, study_id)
    with store.session() as session:
        loads = Counter(session.scalars(select(Assignment.rater_id)))
    low, high = min(loads.values()), max(loads.values())
    spread = f"{low}" if low == high else f"{low}-{high}"
    assert preview.startswith(f"Each of the 3 raters would judge {spread} tasks (17 items;")


def test_the_reader_studies_page_shows_a_draft_studys_workload(tmp_home: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from studies.store.db import get_store
    from workbench.access import SESSION_KEY

    store = get_store()
    world = build_world(store, tmp_home / "bench", n_cases=4)
    study_id = create_study(
        store,
        StudyDesign(name="Draft", benchmark=world.benchmark, systems=world.systems, overlap=1),
    )
    account = accounts.create_account(store, "solo", "rater", "rater-password-1")
    enrol_rater(store, study_id, account.username)
    admin = accounts.create_account(store, "chief", "admin", "Chief-admin-pass-1")
    views = Path(__file__).resolve().parents[2] / "workbench" / "views"
    page = AppTest.from_file(str(views.parent / "app.py"), default_timeout=120)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    page.run()
    page.switch_page(str(views / "studies_admin.py")).run()
    assert not page.exception, page.exception
    assert any(
        "Workload: Each of the 1 raters would judge 13 tasks (12 items" in c.value
        for c in page.caption
    ), [c.value for c in page.caption]
