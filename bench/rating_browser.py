"""The rating page in a real browser: a rater rates N cases by keyboard only.

Seeds a SYNTHETIC study (generated images and reports, tests/support/reader_world.py) of N
cases for one rater (two systems, one pair per case, no duplicates), starts the real app
(`streamlit run workbench/app.py`) and drives Debian's chromium through Playwright. Prints:

- key presses per case (preference + every Likert rating + submit, keyboard only);
- submit to next case, p50/p95: from the submitting key press until the next case is shown
  and interactive (its "case n of N" or "n / N done" visible and the page taking keys),
  timed inside the page (performance.now) so the driver's round trips do not count; and
  until the answer is also confirmed saved (a form may show the next case ahead of that);
- inputs dropped in a rapid-input run: every case's keys sent without waiting for the page
  to update (on the new form all cases in one stream, submits included: type-ahead); the
  database is then compared with what was typed;
- page height at 1280x800 and 1920x1080 and whether the media and both reports lie inside
  the viewport (from the top of a case, and as the case opens after a submit).

The page is driven as it is: the new rating form (one component, keys for everything) when
its `case-counter` is there, otherwise the older page (Tab to each Likert group, arrows,
the preference key, Enter), so the same script measures before and after a change.

Usage: python bench/rating_browser.py [--cases 50] [--rapid 10] [--json] [--out FILE]
[--docs BEFORE_JSON] (writes docs/benchmarks.md's section, the saved run before this one)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The project first: bench/metrics.py must not shadow the `metrics` package.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic reader world lives with the tests

from sqlalchemy import select  # noqa: E402
from support.browser import AppDidNotStart, start_app, stop_app  # noqa: E402
from support.reader_world import build_world  # noqa: E402

from studies.readers import accounts  # noqa: E402
from studies.readers.design import StudyDesign, create_study  # noqa: E402
from studies.readers.enrolment import enrol_rater  # noqa: E402
from studies.readers.form import criteria, default_form  # noqa: E402
from studies.readers.lifecycle import start_study  # noqa: E402
from studies.store.db import Store  # noqa: E402
from studies.store.schema import Assignment, Judgment  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-rater-password-1"
PREFERENCE_CYCLE = ("left", "right", "tie", "left", "right")
OLD_PREF_KEYS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4"}
VIEWPORTS = ((1280, 800), (1920, 1080))
SECTION = "## Rating page in a real browser"

# Runs in the page: a deep querySelector (the component may sit in an open shadow root).
DEEP_JS = """
window.__mvDeep = (selector, root = document) => {
  const found = root.querySelector(selector);
  if (found) return found;
  for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) {
      const inner = window.__mvDeep(selector, el.shadowRoot);
      if (inner) return inner;
    }
  }
  for (const frame of root.querySelectorAll('iframe')) {
    try {
      const inner = frame.contentDocument && window.__mvDeep(selector, frame.contentDocument);
      if (inner) return inner;
    } catch (e) {}
  }
  return null;
};
"""

# Installed before any script of the page (add_init_script), so this listener runs before
# the page's own key handlers (which may stop the event): once armed, the submitting Enter
# starts the clock, and a requestAnimationFrame poll stops it at the first frame where the
# next case is shown and interactive.
TIMER_JS = """
window.addEventListener('keydown', (event) => {
  const arm = window.__mvArm;
  if (!arm || event.key !== 'Enter') return;
  window.__mvArm = null;
  const timing = window.__mvTiming = {start: performance.now(), end: null, saved: null};
  const poll = () => {
    if (timing.end === null && arm.ready(arm.expected)) timing.end = performance.now();
    if (timing.end !== null && arm.saved(arm.expected)) {
      timing.saved = performance.now();
      return;
    }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
}, true);
"""
ARM_JS = """
([expected, readyBody, savedBody]) => {
  window.__mvTiming = null;
  window.__mvArm = {
    expected,
    ready: new Function('expected', readyBody),
    saved: new Function('expected', savedBody),
  };
}
"""


@dataclass
class Answer:
    """What the rater means to enter for one case (sides as shown on screen)."""

    preference: str
    likert: dict[str, dict[str, int]]


@dataclass
class CaseRun:
    position: int
    keys: int
    submit_s: float | None  # to the next case shown and taking keys
    saved_s: float | None  # to that, and the answer confirmed saved
    answer: Answer


@dataclass
class Results:
    page: str
    cases: list[CaseRun] = field(default_factory=list)
    rapid_cases: int = 0
    rapid_inputs: int = 0
    rapid_dropped: int = 0
    rapid_details: list[str] = field(default_factory=list)
    layout: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup_keys: int = 0
    refused_submits: int = 0  # submits in the paced run that did not move on (then redone)


def answer_for(position: int, keys: list[str], seed: int) -> Answer:
    rng = random.Random(f"{seed}:{position}")
    return Answer(
        preference=PREFERENCE_CYCLE[position % len(PREFERENCE_CYCLE)],
        likert={side: {key: rng.randint(1, 5) for key in keys} for side in ("left", "right")},
    )


# ---------------------------------------------------------------- seeding and the server


def seed_study(home: Path, n_cases: int, seed: int) -> tuple[Store, int, int]:
    store = Store(f"sqlite:///{home / 'workbench.db'}")
    world = build_world(
        store,
        home / "data" / "benchmarks" / "reader",
        n_cases=n_cases,
        systems=("sys-alpha", "sys-beta"),
        seed=seed,
    )
    rater = accounts.create_account(store, "bench-rater", "rater", PASSWORD, display_name="Dr B")
    study_id = create_study(
        store,
        StudyDesign(
            name="Rating page bench (synthetic)",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=1,
            duplicate_fraction=0.0,
            seed=seed,
        ),
    )
    enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    return store, rater.id, study_id


# ---------------------------------------------------------------- the two pages


class Keyboard:
    """Counts every key the rater presses."""

    def __init__(self, page: Any, gap_ms: int = 0) -> None:
        self.page = page
        self.count = 0
        self.gap_ms = gap_ms  # between keys in the rapid run (0: none)

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1
        if self.gap_ms:
            self.page.wait_for_timeout(self.gap_ms)


def idle(page: Any) -> None:
    """A rater's pause, then until the app's script run is over (no 'Running...' indicator)."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
    )


class OldPage:
    """Today's page until the new form lands: Likert radios reached with Tab, arrows set a
    score (each change a rerun), 1-4 the preference outside a radio, Enter submits."""

    name = "radios (Tab, arrows, 1-4, Enter)"
    type_ahead = False  # which keys to press depends on where the focus landed
    # The next case is shown (its progress text) and the run that draws it is over.
    READY = (
        "const bar = document.querySelector('[data-testid=\"stProgress\"]');"
        "return !!bar && bar.innerText.includes(expected)"
        " && !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !!Array.from(document.querySelectorAll('button'))"
        ".find(b => /^Submit\\b/.test(b.innerText.trim()));"
    )
    SAVED = "return true;"  # the next case is drawn by the run that saved the answer

    def __init__(self, page: Any, keys: list[str], total: int) -> None:
        self.page = page
        self.keys = keys
        self.total = total

    def wait_case(self, done: int) -> None:
        self.page.wait_for_function(
            f"() => {{ const expected = {json.dumps(f'{done} / {self.total} done')}; "
            f"{self.READY} }}",
            timeout=60_000,
        )

    def expected(self, done: int) -> str:
        return f"{done} / {self.total} done"

    def _focus_in_group(self, index: int) -> bool:
        return self.page.evaluate(
            """(index) => {
                const groups = document.querySelectorAll('[role="radiogroup"]');
                const group = groups[index];
                return !!group && group.contains(document.activeElement);
            }""",
            index,
        )

    def _checked(self, index: int) -> int | None:
        return self.page.evaluate(
            """(index) => {
                const group = document.querySelectorAll('[role="radiogroup"]')[index];
                const inputs = Array.from(group.querySelectorAll('input[type="radio"]'));
                const at = inputs.findIndex(i => i.checked);
                return at < 0 ? null : at + 1;
            }""",
            index,
        )

    def _focus_outside_fields(self) -> bool:
        return self.page.evaluate(
            """() => { const el = document.activeElement;
                return !el || !['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName); }"""
        )

    def rate(self, keyboard: Keyboard, answer: Answer, *, settle: bool) -> None:
        groups = [(side, key) for side in ("left", "right") for key in self.keys]
        for index, (side, key) in enumerate(groups):
            tabs = 0
            while not self._focus_in_group(index):
                keyboard.press("Tab")
                tabs += 1
                if tabs > 60:
                    raise RuntimeError(f"Tab never reached the Likert group {side}/{key}")
            value = answer.likert[side][key]
            current = self._checked(index)
            if current is None:
                moves = ["Space"] if value == 1 else ["ArrowRight"] * (value - 1)
            else:
                step = "ArrowRight" if value > current else "ArrowLeft"
                moves = [step] * abs(value - current)
            for move in moves:
                keyboard.press(move)
            if settle and moves:
                idle(self.page)
        # The preference keys are dead inside a radio group: Tab out of it first.
        tabs = 0
        while not self._focus_outside_fields():
            keyboard.press("Tab")
            tabs += 1
            if tabs > 60:
                raise RuntimeError("Tab never left the form fields")
        keyboard.press(OLD_PREF_KEYS[answer.preference])
        if settle:
            idle(self.page)

    def submit(self, keyboard: Keyboard) -> None:
        keyboard.press("Enter")

    def form_state(self) -> dict[str, Any]:
        """The answer the form shows now (shown sides), for the rapid-run comparison."""
        # The form's groups come first (the correction expander below holds another).
        values = self.page.evaluate(
            """(count) => Array.from(document.querySelectorAll('[role="radiogroup"]'))
                .slice(0, count).map(g => {
                    const inputs = Array.from(g.querySelectorAll('input[type="radio"]'));
                    const at = inputs.findIndex(i => i.checked);
                    return at < 0 ? null : at + 1; })""",
            2 * len(self.keys),
        )
        body = self.page.inner_text("body")
        chosen = re.search(r"Your choice: (.+)", body)
        return {"likert": values, "choice": chosen.group(1).strip() if chosen else None}

    def report_boxes(self) -> list[str]:
        return [".st-key-mv-report-left", ".st-key-mv-report-right"]

    def media_box(self) -> str:
        return '[data-testid="stImage"] img, [data-testid="stVideo"], video'


class ComponentPage:
    """The new rating form (one component handling every key), by its announced selectors:
    digits 1-5 score the active criterion row and move to the next (Report A's criteria,
    then Report B's), A/B/T/X the preference, Enter submits."""

    name = "one component (keys for everything)"
    type_ahead = True  # keys typed while a submit is on its way go to the next case
    READY = (
        "const counter = window.__mvDeep('[data-testid=\"case-counter\"]');"
        "const form = window.__mvDeep('[data-testid=\"rate-form\"]');"
        "return !!counter && counter.textContent.trim().toLowerCase() === expected"
        " && !!form && form.getAttribute('data-state') === 'ready';"
    )
    # ... and the answer before it confirmed saved (the next case may be shown ahead of that).
    SAVED = (
        "const status = window.__mvDeep('[data-testid=\"save-status\"]');"
        "return !status || status.hidden;"
    )
    PREF_KEYS = {"left": "a", "right": "b", "tie": "t", "both_bad": "x"}

    def __init__(self, page: Any, keys: list[str], total: int) -> None:
        self.page = page
        self.keys = keys
        self.total = total

    def expected(self, done: int) -> str:
        return f"case {min(done + 1, self.total)} of {self.total}"

    def wait_case(self, done: int) -> None:
        if done >= self.total:
            self.page.wait_for_function(
                f"() => {{ {DEEP_JS} return !window.__mvDeep('[data-testid=\"rate-form\"]'); }}",
                timeout=60_000,
            )
            return
        self.page.wait_for_function(
            f"() => {{ {DEEP_JS} const expected = {json.dumps(self.expected(done))}; "
            f"{self.READY} }}",
            timeout=60_000,
        )

    def rate(self, keyboard: Keyboard, answer: Answer, *, settle: bool) -> None:
        for side in ("left", "right"):
            for key in self.keys:
                keyboard.press(str(answer.likert[side][key]))
        keyboard.press(self.PREF_KEYS[answer.preference])

    def submit(self, keyboard: Keyboard) -> None:
        keyboard.press("Enter")

    def form_state(self) -> dict[str, Any]:
        return self.page.evaluate(
            f"""(keys) => {{ {DEEP_JS}
                const likert = [];
                for (const side of ['left', 'right']) for (const key of keys) {{
                    const row = window.__mvDeep(`[data-testid="row-${{side}}-${{key}}"]`);
                    const value = row && row.getAttribute('data-value');
                    likert.push(value ? Number(value) : null);
                }}
                let choice = null;
                for (const pref of ['left', 'right', 'tie', 'both_bad']) {{
                    const button = window.__mvDeep(`[data-testid="pref-${{pref}}"]`);
                    if (button && button.getAttribute('aria-pressed') === 'true') choice = pref;
                }}
                return {{likert, choice}}; }}""",
            self.keys,
        )

    def report_boxes(self) -> list[str]:
        return ['[data-testid="report-left"]', '[data-testid="report-right"]']

    def media_box(self) -> str:
        return '[data-testid="media"]'


# ---------------------------------------------------------------- measuring


def stored_answers(store: Store, rater_id: int, study_id: int) -> dict[int, Answer]:
    """The current judgment of each task (by position, 1-based), sides as shown."""
    with store.session() as session:
        rows = session.execute(
            select(Judgment, Assignment.order_index, Assignment.a_on_left)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .where(Assignment.rater_id == rater_id, Assignment.study_id == study_id)
            .order_by(Judgment.id)
        ).all()
    out: dict[int, Answer] = {}
    for judgment, order_index, a_on_left in rows:
        likert = judgment.likert or {}
        left, right = ("a", "b") if a_on_left else ("b", "a")
        out[order_index + 1] = Answer(
            preference=judgment.preference_shown,
            likert={"left": dict(likert.get(left, {})), "right": dict(likert.get(right, {}))},
        )
    return out


def wait_stored(
    store: Store, rater_id: int, study_id: int, positions: set[int], timeout_s: float = 60
) -> bool:
    """Until the store holds a judgment for each of `positions` (False at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if positions <= set(stored_answers(store, rater_id, study_id)):
            return True
        time.sleep(0.1)
    return False


def timed_submit(
    page: Any, driver: Any, keyboard: Keyboard, done_after: int, timeout_s: float = 15
) -> tuple[float, float] | None:
    """Seconds from the submitting key press until the next case is shown and interactive,
    and until the answer is also confirmed saved (None: the next case was not shown within
    `timeout_s`, e.g. the submit was refused)."""
    page.evaluate(DEEP_JS)
    page.evaluate(
        ARM_JS, [driver.expected(done_after), DEEP_JS + driver.READY, DEEP_JS + driver.SAVED]
    )
    driver.submit(keyboard)
    try:
        page.wait_for_function(
            "() => !!window.__mvTiming && window.__mvTiming.saved !== null",
            timeout=timeout_s * 1000,
        )
    except Exception:  # noqa: BLE001 - Playwright's TimeoutError: the case did not move on
        return None
    timing = page.evaluate("() => window.__mvTiming")
    return (timing["end"] - timing["start"]) / 1000, (timing["saved"] - timing["start"]) / 1000


def layout(page: Any, driver: Any, landed: bool) -> dict[str, Any]:
    """Page height and whether the media and both reports lie inside the viewport."""
    return page.evaluate(
        f"""([reports, media, landed]) => {{ {DEEP_JS}
            const view = {{w: window.innerWidth, h: window.innerHeight}};
            const scrollers = [document.scrollingElement,
                ...document.querySelectorAll('[data-testid="stMain"], .stMain, section.main')];
            let height = 0, scroller = null;
            for (const el of scrollers) if (el && el.scrollHeight >= height) {{
                height = el.scrollHeight; scroller = el; }}
            const inside = (selector) => {{
                const el = window.__mvDeep(selector);
                if (!el) return null;
                const r = el.getBoundingClientRect();
                return r.height > 0 && r.top >= 0 && r.left >= 0 && r.bottom <= view.h + 1
                    && r.right <= view.w + 1;
            }};
            const now = {{media: inside(media), left: inside(reports[0]),
                          right: inside(reports[1])}};
            let top = now;
            if (!landed) {{
                for (const el of scrollers) if (el) el.scrollTop = 0;
                top = {{media: inside(media), left: inside(reports[0]),
                        right: inside(reports[1])}};
            }}
            return {{height, scrolled: scroller ? scroller.scrollTop : 0, now, top}}; }}""",
        [driver.report_boxes(), driver.media_box(), landed],
    )


def run(args: argparse.Namespace) -> Results:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit("Debian's chromium is missing: run `make browser`")
    keys = [c.key for c in criteria(default_form())]
    total = args.cases + args.rapid
    with tempfile.TemporaryDirectory(prefix="rating-bench-") as tmp:
        home = Path(tmp) / "home"
        store, rater_id, study_id = seed_study(home, total, args.seed)
        try:
            process, base = start_app(home, Path(tmp) / "streamlit.log")
        except AppDidNotStart as exc:
            raise SystemExit(str(exc)) from exc
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.add_init_script(DEEP_JS + TIMER_JS)
                page.set_default_timeout(60_000)
                results = drive(page, base, store, rater_id, study_id, keys, total, args)
                browser.close()
        finally:
            stop_app(process)
            store.dispose()
    return results


def log_in(page: Any, base: str) -> None:
    page.goto(base)
    page.get_by_text("Not logged in.").wait_for()
    page.goto(f"{base}/login")
    page.get_by_role("textbox", name="Username").fill("bench-rater")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Logged in as").wait_for()


def which_page(page: Any) -> str:
    page.wait_for_function(
        f"() => {{ {DEEP_JS} return !!window.__mvDeep('[data-testid=\"case-counter\"]')"
        " || !!document.querySelector('[data-testid=\"stProgress\"]'); }",
        timeout=60_000,
    )
    return (
        "component"
        if page.evaluate(
            f"() => {{ {DEEP_JS} return !!window.__mvDeep('[data-testid=\"case-counter\"]'); }}"
        )
        else "old"
    )


def acknowledge_guidelines(page: Any, keyboard: Keyboard) -> None:
    """The guidelines shown at a rater's first visit: acknowledged once, by keyboard (Enter,
    or Tab to the acknowledge button and Enter)."""
    panel = page.get_by_test_id("guidelines-panel")
    page.wait_for_timeout(500)
    if not (panel.count() and panel.first.is_visible()):
        return
    keyboard.press("Enter")
    page.wait_for_timeout(300)
    tabs = 0
    while panel.first.is_visible() and tabs < 30:
        focused = page.evaluate(
            f"() => {{ {DEEP_JS} const ack = window.__mvDeep('[data-testid=\"guidelines-ack\"]');"
            " let el = document.activeElement;"
            " while (el && el.shadowRoot && el.shadowRoot.activeElement)"
            " el = el.shadowRoot.activeElement; return !!ack && el === ack; }"
        )
        keyboard.press("Enter" if focused else "Tab")
        tabs += 1
        page.wait_for_timeout(100)
    panel.first.wait_for(state="hidden")


def drive(
    page: Any,
    base: str,
    store: Store,
    rater_id: int,
    study_id: int,
    keys: list[str],
    total: int,
    args: argparse.Namespace,
) -> Results:
    log_in(page, base)
    kind = which_page(page)
    driver = (ComponentPage if kind == "component" else OldPage)(page, keys, total)
    results = Results(page=driver.name)
    setup = Keyboard(page)
    if kind == "component":
        acknowledge_guidelines(page, setup)
    results.setup_keys = setup.count
    driver.wait_case(0)
    # Layout of the first case, from the top, at both sizes.
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(400)
        results.layout[f"{width}x{height}"] = layout(page, driver, landed=False)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(300)

    for done in range(args.cases):
        answer = answer_for(done + 1, keys, args.seed)
        keyboard = Keyboard(page)
        driver.rate(keyboard, answer, settle=True)
        if done + 1 == total:  # no next case to time
            driver.submit(keyboard)
            wait_stored(store, rater_id, study_id, {done + 1})
            seconds = None
        else:
            seconds = timed_submit(page, driver, keyboard, done + 1)
        for _ in range(3):
            if seconds is not None or done + 1 == total:
                break
            # The case did not move on: a key was lost or the submit refused. The rater
            # looks, enters what is missing (those keys count) and submits again.
            results.refused_submits += 1
            if args.verbose:
                print(
                    f"case {done + 1}: refused, form shows {driver.form_state()}", file=sys.stderr
                )
            driver.rate(keyboard, answer, settle=True)
            seconds = timed_submit(page, driver, keyboard, done + 1, timeout_s=30)
        if seconds is None and done + 1 < total:
            raise SystemExit(f"case {done + 1}: the next case was never shown")
        shown_s, saved_s = seconds or (None, None)
        results.cases.append(CaseRun(done + 1, keyboard.count, shown_s, saved_s, answer))
        if done == 0:
            # The second case as it opens after a submit, where the rater's eye is.
            results.layout["1280x800 after submit"] = layout(page, driver, landed=True)
        if args.verbose:
            print(f"case {done + 1}: {keyboard.count} keys, {seconds} s", file=sys.stderr)

    rapid = range(args.cases + 1, args.cases + args.rapid + 1)
    typed = {position: answer_for(position, keys, args.seed + 1) for position in rapid}
    results.rapid_cases = len(typed)
    results.rapid_inputs = len(typed) * (1 + 2 * len(keys) + 1)
    if driver.type_ahead:
        # Rapid input: every case's keys, submits included, in one stream with no wait.
        keyboard = Keyboard(page, args.rapid_gap_ms)
        for position in rapid:
            driver.rate(keyboard, typed[position], settle=False)
            driver.submit(keyboard)
        wait_stored(store, rater_id, study_id, set(rapid))
    else:
        # Rapid input: a case's keys sent without waiting for the page to update (which key
        # comes next depends on where the focus is, so each case starts once it is shown).
        for position in rapid:
            keyboard = Keyboard(page, args.rapid_gap_ms)
            driver.rate(keyboard, typed[position], settle=False)
            driver.submit(keyboard)
            if wait_stored(store, rater_id, study_id, {position}, timeout_s=8):
                if position < args.cases + args.rapid:
                    driver.wait_case(position)
                continue
            shown = driver.form_state()
            answer = typed[position]
            lost_keys = [answer.likert[s][k] for s in ("left", "right") for k in keys]
            lost = sum(1 for a, b in zip(lost_keys, shown["likert"], strict=False) if a != b)
            lost += 0 if shown["choice"] else 1
            results.rapid_details.append(f"case {position}: not stored, the form shows {shown}")
            results.rapid_dropped += lost + 1  # and the submit itself
            # Again at a rater's pace, so the next rapid case starts on a fresh one.
            driver.rate(keyboard, answer, settle=True)
            driver.submit(keyboard)
            wait_stored(store, rater_id, study_id, {position})
            typed.pop(position)
            if position < args.cases + args.rapid:
                driver.wait_case(position)
    stored = stored_answers(store, rater_id, study_id)
    for position, answer in typed.items():
        got = stored.get(position)
        if got is None:
            results.rapid_dropped += 1 + 2 * len(keys) + 1
            results.rapid_details.append(f"case {position}: nothing stored")
            continue
        lost = 0 if got.preference == answer.preference else 1
        lost += sum(
            got.likert[side].get(key) != answer.likert[side][key]
            for side in ("left", "right")
            for key in keys
        )
        if lost:
            results.rapid_details.append(f"case {position}: typed {answer}, stored {got}")
        results.rapid_dropped += lost

    # The timed run must have stored exactly what was typed.
    stored = stored_answers(store, rater_id, study_id)
    for case in results.cases:
        if stored.get(case.position) != case.answer:
            raise SystemExit(
                f"case {case.position}: typed {case.answer}, stored {stored.get(case.position)}"
            )
    return results


# ---------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(results: Results) -> dict[str, Any]:
    keys = [c.keys for c in results.cases]
    seconds = [c.submit_s for c in results.cases if c.submit_s is not None]
    saved = [c.saved_s for c in results.cases if c.saved_s is not None]
    return {
        "page": results.page,
        "cases": len(results.cases),
        "keys_per_case": {
            "median": statistics.median(keys) if keys else None,
            "min": min(keys, default=None),
            "max": max(keys, default=None),
        },
        "setup_keys": results.setup_keys,
        "refused_submits": results.refused_submits,
        "submit_to_next_s": {
            "p50": round(percentile(seconds, 0.5), 3),
            "p95": round(percentile(seconds, 0.95), 3),
            "max": round(max(seconds, default=float("nan")), 3),
        },
        "submit_to_saved_s": {
            "p50": round(percentile(saved, 0.5), 3),
            "p95": round(percentile(saved, 0.95), 3),
        },
        "rapid": {
            "cases": results.rapid_cases,
            "inputs": results.rapid_inputs,
            "dropped": results.rapid_dropped,
            "details": results.rapid_details,
        },
        "layout": results.layout,
        "machine": machine(),
    }


def machine() -> dict[str, Any]:
    import streamlit

    try:
        chromium = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except OSError:
        chromium = "missing"
    return {
        "cpus": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "streamlit": streamlit.__version__,
        "chromium": chromium,
        "load_1min_end": round(os.getloadavg()[0], 1),
    }


def print_text(data: dict[str, Any]) -> None:
    keys, timing, rapid = data["keys_per_case"], data["submit_to_next_s"], data["rapid"]
    print(f"page: {data['page']} ({data['cases']} cases, SYNTHETIC study)")
    print(f"key presses per case: median {keys['median']} (min {keys['min']}, max {keys['max']})")
    print(
        f"submit to next case: p50 {timing['p50']:.3f} s, p95 {timing['p95']:.3f} s, "
        f"max {timing['max']:.3f} s"
    )
    saved = data["submit_to_saved_s"]
    print(f"submit to answer saved: p50 {saved['p50']:.3f} s, p95 {saved['p95']:.3f} s")
    print(
        f"rapid input: {rapid['dropped']} of {rapid['inputs']} inputs dropped "
        f"({rapid['cases']} cases)"
    )
    for line in rapid["details"]:
        print(f"  {line}")
    for name, box in data["layout"].items():
        view = box["now"] if "after" in name else box["top"]
        print(
            f"{name}: page height {box['height']} px; in view: media {view['media']}, "
            f"Report A {view['left']}, Report B {view['right']}"
        )
    print(f"machine: {data['machine']}")


def _in_view(box: dict[str, Any], landed: bool) -> str:
    view = box["now"] if landed else box["top"]
    return ", ".join(
        f"{name} {'yes' if view[key] else 'no'}"
        for key, name in (("media", "media"), ("left", "Report A"), ("right", "Report B"))
    )


def docs_section(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The benchmarks.md section: today's page (before) and the new one (after)."""
    machine = after["machine"]
    rows = [
        ("page", lambda d: d["page"]),
        ("cases rated (paced)", lambda d: str(d["cases"])),
        (
            "key presses per case, median (min-max)",
            lambda d: "{median:g} ({min}-{max})".format(**d["keys_per_case"]),
        ),
        ("submits that did not move on (redone)", lambda d: str(d.get("refused_submits", 0))),
        (
            "submit to next case shown and taking keys, p50 / p95 (s)",
            lambda d: "{p50:.3f} / {p95:.3f}".format(**d["submit_to_next_s"]),
        ),
        (
            "submit to answer saved, p50 / p95 (s)",
            lambda d: (
                "{p50:.3f} / {p95:.3f}".format(**d["submit_to_saved_s"])
                if "submit_to_saved_s" in d
                else "= next case"
            ),
        ),
        (
            "rapid run: inputs dropped (of typed)",
            lambda d: "{dropped} of {inputs} ({cases} cases)".format(**d["rapid"]),
        ),
        ("page height at 1280x800 (px)", lambda d: str(d["layout"]["1280x800"]["height"])),
        ("page height at 1920x1080 (px)", lambda d: str(d["layout"]["1920x1080"]["height"])),
        (
            "in view at 1280x800, case from the top",
            lambda d: _in_view(d["layout"]["1280x800"], False),
        ),
        (
            "in view at 1280x800, case as it opens after a submit",
            lambda d: _in_view(d["layout"]["1280x800 after submit"], True),
        ),
        ("in view at 1920x1080, from the top", lambda d: _in_view(d["layout"]["1920x1080"], False)),
        (
            "1-minute load, start / end",
            lambda d: (
                f"{d['machine'].get('load_1min_start', '?')} / "
                f"{d['machine'].get('load_1min_end', '?')}"
            ),
        ),
    ]
    lines = [
        SECTION,
        "",
        "`python bench/rating_browser.py --cases 50 --rapid 10`: one rater rates a SYNTHETIC "
        "study (generated images and reports, two systems, one pair per case) in the real app "
        "(`streamlit run workbench/app.py`) driven by Playwright in headless Chromium, keyboard "
        "only. Paced run: the rater waits for the page after each key. 'Submit to next case': "
        "from the submitting Enter until the next case's counter is shown and the form takes "
        "keys, timed inside the page. Rapid run: each case's keys sent with no pause while the "
        "page updates (on the new form all cases and submits in one stream, as type-ahead); "
        "'dropped' counts typed inputs (preference, six ratings, submit) the database does not "
        "hold as typed. 'In view': the media and each report lie wholly inside the viewport.",
        "",
        f"Machine: {machine['cpus']}-core {machine['arch']} (shared with other work while "
        f"measured, so timings are upper bounds), Python {machine['python']}, "
        f"{machine['chromium']}, Streamlit {machine['streamlit']}.",
        "",
        f"| | before ({before.get('label', 'saved run')}) "
        f"| after ({after.get('label', 'this run')}) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {get(before)} | {get(after)} |" for name, get in rows]
    lines += [
        "",
        "Targets (issue 13): at most 10 key presses per case for a preference and six Likert "
        "ratings, 0 inputs dropped, submit to next case p95 at most 0.3 s, media and both "
        "reports in one 1280x800 viewport.",
        "",
        "'Submits that did not move on': in the paced run, an Enter after which the same case "
        "stayed (a key lost before it, or the submit refused); the rater enters what is missing "
        "again, and those keys count in the key presses. 'Submit to answer saved': the new form "
        "shows the next case at the Enter (the server sent it ahead) and saves the answer "
        "meanwhile; keys typed before the save is confirmed are applied once it is (the rapid "
        "run types into that window). On the older page the next case is drawn by the run "
        "that saved the answer, so both times are one. Media: one synthetic image per case.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="cases rated at a rater's pace")
    parser.add_argument("--rapid", type=int, default=10, help="cases typed without waiting")
    parser.add_argument(
        "--rapid-gap-ms", type=int, default=0, help="pause between keys in the rapid run"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write the JSON results to this file")
    parser.add_argument("--label", help="what was measured (e.g. the commit), kept in the JSON")
    parser.add_argument("--verbose", action="store_true", help="one line per case on stderr")
    parser.add_argument(
        "--docs",
        type=Path,
        metavar="BEFORE_JSON",
        help="write docs/benchmarks.md's section: the run saved in BEFORE_JSON, then this one",
    )
    args = parser.parse_args()
    load_start = round(os.getloadavg()[0], 1)
    data = summary(run(args))
    data["machine"]["load_1min_start"] = load_start
    if args.label:
        data["label"] = args.label
    if args.out:
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if args.docs:
        from docs_section import write_section

        before = json.loads(args.docs.read_text(encoding="utf-8"))
        write_section(SECTION, docs_section(before, data))
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_text(data)


if __name__ == "__main__":
    main()
