"""Real browser, real server: raters work the rating form by keyboard only, and the database
holds exactly what they entered; the page never shows a system name.

One app server and one chromium serve the whole module (each test its own rater and browser
context, so drafts in localStorage do not mix). Covered: rating with preference and every
Likert criterion, resume after a reload (and the README screenshot, regenerated every run),
"cannot assess" with a reason, a draft that survives a reload, the correction of an older
answer (ratings included: the superseding chain in the database), and the confirmations that
closing a study and deactivating an account need. Needs Debian's chromium (`make browser`)
and pip's playwright.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.browser import ADMIN_PASSWORD, app_server, chromium, log_in
from support.reader_world import build_world

from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.form import criteria, default_form
from studies.readers.lifecycle import start_study
from studies.readers.rating import guidelines_acknowledged, next_assignment
from studies.store.db import Store
from studies.store.schema import Assignment, CaseFlag, Judgment, Study, System

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "rater-password-1"
SCREENSHOT = ROOT / "docs" / "rating-page.png"
KEYS = [c.key for c in criteria(default_form())]
PREF_KEYS = {"left": "a", "right": "b", "tie": "t", "both_bad": "x"}
# Everything the page holds, shadow roots included (the form is one component in one).
DEEP_HTML = """() => {
  const parts = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) {
      parts.push(el.shadowRoot.innerHTML); walk(el.shadowRoot); }
  };
  parts.push(document.documentElement.outerHTML); walk(document);
  return parts.join('\\n');
}"""


@dataclass
class World:
    home: Path
    store: Store
    raters: dict[str, accounts.Account]
    studies: dict[str, int]
    secrets: list[str]


def _study(store: Store, world: Any, name: str, raters: list[str], **design: Any) -> int:
    study_id = create_study(
        store,
        StudyDesign(
            name=name,
            benchmark=world.benchmark,
            systems=world.systems,
            seed=11,
            duplicate_fraction=0.0,
            **design,
        ),
    )
    for username in raters:
        enrol_rater(store, study_id, username)
    start_study(store, study_id)
    return study_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Three SYNTHETIC studies over one benchmark: 'Browser round' (every rater rates every
    item), 'Flag round' (two raters share the items: a flagged one can be handed on) and
    'Closing round' (for the admin)."""
    home = tmp_path_factory.mktemp("rating-browser") / "home"
    store = Store(f"sqlite:///{home / 'workbench.db'}")
    synthetic = build_world(store, home / "data" / "benchmarks" / "reader", n_cases=5)
    raters = {
        name: accounts.create_account(store, name, "rater", PASSWORD, display_name=f"Dr {name}")
        for name in ("rater1", "drafter", "corrector", "flagger", "spare", "closer")
    }
    studies = {
        "browser": _study(
            store, synthetic, "Browser round", ["rater1", "drafter", "corrector"], overlap=3
        ),
        "flag": _study(store, synthetic, "Flag round", ["flagger", "spare"], overlap=1),
        "closing": _study(store, synthetic, "Closing round", ["closer"], overlap=1),
    }
    with store.session() as session:
        secrets = list(session.scalars(select(System.name)))
        secrets += list(session.scalars(select(System.fingerprint)))
    yield World(home, store, raters, studies, secrets)
    store.dispose()


@pytest.fixture(scope="module")
def server(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    with app_server(world.home, log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as shared:
        yield shared


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (its own cookies and localStorage) at 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def _open_form(page: Any, base: str, username: str) -> None:
    """Log in, land on the form, acknowledge the guidelines of the first visit (Enter)."""
    from playwright.sync_api import expect

    log_in(page, base, username, PASSWORD)
    expect(page.get_by_test_id("case-counter")).to_be_visible()
    panel = page.get_by_test_id("guidelines-panel")
    expect(panel).to_be_visible()
    page.keyboard.press("Enter")
    expect(panel).to_be_hidden()


def _eventually(check: Any, timeout_s: float = 15) -> Any:
    """`check()` once it is true (the page sends its events to the server in the background)."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def _expect_case(page: Any, position: int, total: int) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("case-counter")).to_have_text(f"Case {position} of {total}")
    expect(page.get_by_test_id("rate-form")).to_have_attribute("data-state", "ready")


def _type_ratings(page: Any, likert: dict[str, dict[str, int]]) -> None:
    """One digit per criterion row, Report A's rows then Report B's (the form moves on)."""
    for side in ("left", "right"):
        for key in KEYS:
            page.keyboard.press(str(likert[side][key]))


def _likert(values: list[int]) -> dict[str, dict[str, int]]:
    return {
        "left": dict(zip(KEYS, values[:3], strict=True)),
        "right": dict(zip(KEYS, values[3:], strict=True)),
    }


def _judgments(store: Store, rater_id: int, study_id: int) -> list[Any]:
    with store.session() as session:
        return session.execute(
            select(
                Judgment.id,
                Judgment.preference_shown,
                Judgment.likert,
                Judgment.supersedes_id,
                Assignment.order_index,
                Assignment.a_on_left,
            )
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .where(Judgment.rater_id == rater_id, Assignment.study_id == study_id)
            .order_by(Judgment.id)
        ).all()


def _shown(row: Any) -> dict[str, dict[str, int]]:
    """A stored judgment's ratings by screen side (the store keeps them by system)."""
    left, right = ("a", "b") if row.a_on_left else ("b", "a")
    return {"left": row.likert[left], "right": row.likert[right]}


def test_rater_rates_with_the_keyboard_and_resumes(
    world: World, server: str, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    rater = world.raters["rater1"]
    study_id = world.studies["browser"]
    total = next_assignment(world.store, rater.id, study_id).total
    answers = [
        ("left", _likert([4, 4, 5, 3, 3, 2])),
        ("right", _likert([2, 3, 1, 5, 4, 5])),
        ("tie", _likert([1, 2, 3, 4, 5, 1])),
    ]
    seen: list[str] = []

    _open_form(page, server, "rater1")
    assert _eventually(lambda: guidelines_acknowledged(world.store, rater.id, study_id))
    for n, (choice, likert) in enumerate(answers):
        _expect_case(page, n + 1, total)
        seen.append(page.evaluate(DEEP_HTML))
        # Keyboard only: six digits, the preference letter, Enter (8 keys).
        _type_ratings(page, likert)
        page.keyboard.press(PREF_KEYS[choice])
        for side in ("left", "right"):
            for key in KEYS:
                expect(page.get_by_test_id(f"row-{side}-{key}")).to_have_attribute(
                    "data-value", str(likert[side][key])
                )
        expect(page.get_by_test_id(f"pref-{choice}")).to_have_attribute("aria-pressed", "true")
        page.keyboard.press("Enter")
    _expect_case(page, 4, total)
    # The third answer saved (the next case is shown ahead of that): resume lands on case 4.
    expect(page.get_by_test_id("rate-form")).to_have_attribute("data-pending", "false")

    page.reload()
    _expect_case(page, 4, total)  # exact resume, and the guidelines are not asked again
    expect(page.get_by_test_id("guidelines-panel")).to_be_hidden()
    seen.append(page.evaluate(DEEP_HTML))
    assert "token" not in page.url and page.url.rstrip("/").endswith("/rate")
    # One screen at 1280x800: the media and both reports inside the viewport.
    for name in ("media", "report-left", "report-right"):
        box = page.get_by_test_id(name).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 800, (name, box)
    page.keyboard.press("4")  # a half-rated case, as a rater sees it mid-way
    expect(page.get_by_test_id(f"row-left-{KEYS[0]}")).to_have_attribute("data-value", "4")
    shot = tmp_path / "rating-page.png"
    page.screenshot(path=str(shot))
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)

    for text in seen:
        for secret in world.secrets:
            assert secret not in text, f"{secret!r} appeared on the rating page"
    rows = _judgments(world.store, rater.id, study_id)
    assert [(r.preference_shown, r.order_index, r.supersedes_id) for r in rows] == [
        ("left", 0, None),
        ("right", 1, None),
        ("tie", 2, None),
    ]
    assert [_shown(r) for r in rows] == [likert for _, likert in answers]
    assert next_assignment(world.store, rater.id, study_id).position == 4


def test_a_case_that_cannot_be_assessed_is_flagged_with_a_reason(
    world: World, server: str, page: Any
) -> None:
    from playwright.sync_api import expect

    rater = world.raters["flagger"]
    study_id = world.studies["flag"]
    first = next_assignment(world.store, rater.id, study_id)
    with world.store.session() as session:
        item = session.scalar(select(Assignment.item_id).where(Assignment.token == first.token))

    _open_form(page, server, "flagger")
    _expect_case(page, 1, first.total)
    page.keyboard.press("f")
    expect(page.get_by_test_id("flag-panel")).to_be_visible()
    page.keyboard.press("1")  # the first reason: image quality
    expect(page.get_by_test_id("flag-reason-image_quality")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("flag-panel")).to_be_hidden()

    def flags() -> list[Any]:
        with world.store.session() as session:
            return session.execute(
                select(CaseFlag.reason, Assignment.item_id)
                .join(Assignment, Assignment.id == CaseFlag.assignment_id)
                .where(CaseFlag.rater_id == rater.id)
            ).all()

    _eventually(flags)
    # (The flag policy may hand the task itself on to another rater: compare the item.)
    assert [tuple(f) for f in flags()] == [("image_quality", item)]
    # The case left the rater's queue: the form shows another case, and nothing was judged.
    after = next_assignment(world.store, rater.id, study_id)
    assert after.token != first.token
    expect(page.get_by_test_id("case-counter")).to_have_text(
        f"Case {after.done + 1} of {after.total}"
    )
    assert _judgments(world.store, rater.id, study_id) == []


def test_a_draft_survives_a_reload(world: World, server: str, page: Any) -> None:
    from playwright.sync_api import expect

    rater = world.raters["drafter"]
    study_id = world.studies["browser"]
    total = next_assignment(world.store, rater.id, study_id).total
    likert = _likert([5, 4, 3, 2, 1, 2])

    _open_form(page, server, "drafter")
    _expect_case(page, 1, total)
    for key in KEYS:  # half an answer: Report A's rows and the preference
        page.keyboard.press(str(likert["left"][key]))
    page.keyboard.press("b")
    expect(page.get_by_test_id("pref-right")).to_have_attribute("aria-pressed", "true")

    page.reload()
    _expect_case(page, 1, total)
    expect(page.get_by_test_id("draft-note")).to_be_visible()
    for key in KEYS:
        expect(page.get_by_test_id(f"row-left-{key}")).to_have_attribute(
            "data-value", str(likert["left"][key])
        )
    expect(page.get_by_test_id("pref-right")).to_have_attribute("aria-pressed", "true")
    # The first unscored row is active again: the rest of the digits complete the answer.
    for key in KEYS:
        page.keyboard.press(str(likert["right"][key]))
    page.keyboard.press("Enter")
    _expect_case(page, 2, total)

    rows = _eventually(lambda: _judgments(world.store, rater.id, study_id))
    assert [(r.preference_shown, r.order_index) for r in rows] == [("right", 0)]
    assert _shown(rows[0]) == likert


def test_an_older_answer_is_corrected_ratings_included(
    world: World, server: str, page: Any
) -> None:
    from playwright.sync_api import expect

    rater = world.raters["corrector"]
    study_id = world.studies["browser"]
    total = next_assignment(world.store, rater.id, study_id).total
    first = _likert([3, 3, 3, 3, 3, 3])
    fixed = _likert([5, 1, 2, 4, 4, 4])

    _open_form(page, server, "corrector")
    for n in range(3):
        _expect_case(page, n + 1, total)
        _type_ratings(page, first)
        page.keyboard.press("a")
        page.keyboard.press("Enter")
    _expect_case(page, 4, total)

    # Case 1 of the three, opened in the form for a correction, by keyboard: P lists the
    # earlier answers (once the answer just given is saved), the arrows choose case 1, Enter
    # opens it.
    page.keyboard.press("p")
    expect(page.get_by_test_id("earlier-panel")).to_be_visible()
    entries = page.get_by_test_id("earlier-list").locator("button")
    expect(entries).to_have_count(3)
    listed = [entries.nth(i).get_attribute("data-testid") for i in range(3)]
    active = [entries.nth(i).get_attribute("data-active") for i in range(3)].index("true")
    steps = listed.index("answered-1") - active
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
    expect(page.get_by_test_id("answered-1")).to_have_attribute("data-active", "true")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("mode-banner")).to_be_visible()
    expect(page.get_by_test_id("case-counter")).to_have_text(f"Case 1 of {total}")
    # Every row is scored, so the last one is active: up to the first, then new scores.
    for _ in range(2 * len(KEYS) - 1):
        page.keyboard.press("ArrowUp")
    expect(page.get_by_test_id(f"row-left-{KEYS[0]}")).to_have_attribute("data-active", "true")
    _type_ratings(page, fixed)
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("mode-banner")).to_be_hidden()
    _expect_case(page, 4, total)

    rows = _judgments(world.store, rater.id, study_id)
    assert [(r.order_index, r.preference_shown) for r in rows] == [
        (0, "left"),
        (1, "left"),
        (2, "left"),
        (0, "right"),
    ]
    # The correction supersedes the first answer, which stays in the record unchanged.
    assert rows[3].supersedes_id == rows[0].id
    assert _shown(rows[0]) == first and _shown(rows[3]) == fixed


def test_closing_a_study_and_deactivating_an_account_need_a_confirmation(
    world: World, server: str, page: Any
) -> None:
    from playwright.sync_api import expect

    study_id = world.studies["closing"]

    def status() -> str:
        with world.store.session() as session:
            return session.get(Study, study_id).status

    log_in(page, server, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Reader studies").click()
    page.get_by_role("combobox", name="Study").click()
    page.keyboard.type("Closing round")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Status: active")).to_be_visible()
    close = page.get_by_role("button", name="Close", exact=True)
    # Nothing happens without the confirmation: Close cannot be pressed.
    expect(close).to_be_disabled()
    assert status() == "active"

    page.get_by_text("Confirm: close for good").click()
    expect(close).to_be_enabled()
    close.click()
    expect(page.get_by_text("Status: closed")).to_be_visible()
    assert status() == "closed"

    # Deactivating an account: nothing is preselected, and Apply without the tick changes
    # nothing and says so.
    def active() -> bool:
        account = accounts.get_account(world.store, "closer")
        return account is not None and account.active

    page.get_by_role("tab", name="Raters and invites").click()
    page.get_by_role("combobox", name="Account").click()
    page.keyboard.type("closer")
    page.keyboard.press("Enter")
    page.get_by_role("radiogroup", name="Action").get_by_text("deactivate", exact=True).click()
    apply = page.get_by_role("button", name="Apply")
    apply.click()
    expect(page.get_by_text("tick 'I confirm deactivating' to deactivate closer")).to_be_visible()
    assert active()
    page.get_by_text("I confirm deactivating: the account").click()
    apply.click()
    expect(page.get_by_text("closer: deactivate done.")).to_be_visible()
    assert not active()
