"""Reader-study load: 50 simulated raters x 40 judgments at once, on SQLite and PostgreSQL.

Every rater logs in and loops `next_assignment` + `submit_judgment` (the functions the
rating page calls) in its own thread; one submit in ten is sent twice (a double click).
Checks: zero judgments lost, zero duplicated, no item judged by more raters than the
overlap. Reports p50/p95 latency of one step (next + submit), against a baseline of one
rater working alone in the same run, and writes the table into docs/benchmarks.md under
'## Reader-study load'. Usage: python bench/rater_load.py [--raters 50] [--per-rater 40]

`--scenario contention`: a fifth of the raters work from two tabs at once (the second tab
gives another answer), a tenth lose their connection in one submit of three (the submit may
or may not have reached the server) and retry it after reconnecting, as the page does (a new
form, a new key, the same answer). Counts per backend: 0 lost (an answer the rater was told
is saved and is not), 0 duplicated, 0 dropped without a message (every answer not stored came
back to its tab as a conflict showing the stored one). Its own section: '## Reader-study
load: two tabs and lost connections'.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the synthetic reader world lives with the tests

from docs_section import write_section  # noqa: E402
from sqlalchemy import create_engine, event, select  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402
from support.reader_world import build_world  # noqa: E402

from studies.readers import accounts  # noqa: E402
from studies.readers.design import StudyDesign, create_study, study_design  # noqa: E402
from studies.readers.enrolment import enrol_rater  # noqa: E402
from studies.readers.form import criteria  # noqa: E402
from studies.readers.lifecycle import start_study  # noqa: E402
from studies.readers.rating import next_assignment, submit_judgment  # noqa: E402
from studies.store.db import Store  # noqa: E402
from studies.store.schema import Assignment, Judgment, StudyItem  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "MEDVISION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECTION = "## Reader-study load"
CONTENTION_SECTION = "## Reader-study load: two tabs and lost connections"


def _answers(store: Store, study_id: int) -> dict[str, dict[str, int]]:
    """A full set of Likert ratings for every criterion of the study's frozen form."""
    keys = [c.key for c in criteria(study_design(store, study_id).form)]
    return {"left": dict.fromkeys(keys, 4), "right": dict.fromkeys(keys, 3)}


@dataclass
class LoadResult:
    backend: str
    scenario: str
    raters: int
    judgments: int
    lost: int
    duplicated: int
    over_overlap: int
    errors: int
    step_ms: list[float]
    baseline_ms: list[float]
    wall_s: float
    statements_per_step: float = 0.0
    load_1m: float = 0.0

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _store(url: str, threads: int, pool: str) -> Store:
    """'app': the store exactly as the app builds it (`Store(url)`, shared by every page
    thread). 'wide': a PostgreSQL pool that lets every simulated rater hold a connection
    at once, without the pre-ping."""
    store = Store(url)
    if pool == "wide" and not url.startswith("sqlite"):
        store.engine.dispose()
        store.engine = create_engine(url, pool_size=threads + 5, max_overflow=10)
        store.sessions = sessionmaker(store.engine, expire_on_commit=False)
    return store


def _study(store: Store, world, name: str, raters: int, overlap: int, sample: int | None) -> int:  # noqa: ANN001
    study_id = create_study(
        store,
        StudyDesign(
            name=f"Load {name}",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=overlap,
            seed=1,
            sample_size=sample,
            duplicate_fraction=0.0,
        ),
    )
    for index in range(raters):
        username = f"{name}-rater{index:03d}"
        accounts.create_account(store, username, "rater", "load-password-1")
        enrol_rater(store, study_id, username)
    start_study(store, study_id)
    return study_id


def _log_in(store: Store, username: str) -> tuple[int, str]:
    token = accounts.log_in(store, username, "load-password-1")
    return accounts.resolve_session(store, token).id, token


def _work(
    store: Store,
    study_id: int,
    username: str,
    limit: int,
    out: dict,
    think_s: float = 0.0,
    login: tuple[int, str] | None = None,
    start: threading.Barrier | None = None,
) -> None:
    rater_id, token = login or _log_in(store, username)
    likert = _answers(store, study_id)  # read before the clock starts
    if start is not None:
        start.wait()
    pace = random.Random(username)
    steps: list[float] = []
    created = 0
    errors = 0
    for number in range(limit):
        if think_s:
            time.sleep(pace.expovariate(1 / think_s))  # reading the case: not timed
        start = time.perf_counter()
        try:
            task = next_assignment(store, rater_id, study_id, session_token=token)
            if task is None:
                break
            key = uuid.uuid4().hex
            result = submit_judgment(
                store, rater_id, task.token, key, "left", likert, "", 5.0, session_token=token
            )
            steps.append((time.perf_counter() - start) * 1000)
            created += int(result.created)
            if number % 10 == 0:  # a double click: the same key again writes nothing
                again = submit_judgment(
                    store, rater_id, task.token, key, "left", likert, "", 5.0, session_token=token
                )
                created += int(again.created)
        except Exception as exc:  # noqa: BLE001 - counted and reported
            errors += 1
            print(f"  {username}: {type(exc).__name__}: {exc}", file=sys.stderr)
    out[username] = (steps, created, errors)


def _load(
    store: Store, study_id: int, name: str, raters: int, per_rater: int, think_s: float
) -> tuple[list[float], int, int, float]:
    results: dict = {}
    # Log-ins (scrypt, ~50 ms of CPU each) happen before the clock starts, as they do in
    # the app: a rater logs in once and then rates; then every rater starts at once.
    names = [f"{name}-rater{i:03d}" for i in range(raters)]
    logins = {username: _log_in(store, username) for username in names}
    start = threading.Barrier(raters)
    threads = [
        threading.Thread(
            target=_work,
            args=(store, study_id, username, per_rater, results, think_s),
            kwargs={"login": logins[username], "start": start},
        )
        for username in names
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    steps = [ms for value in results.values() for ms in value[0]]
    created = sum(value[1] for value in results.values())
    errors = sum(value[2] for value in results.values())
    return steps, created, errors, wall


@dataclass
class Submission:
    """What one tab sent for a task and what it was told."""

    token: str
    preference: str
    comment: str
    outcome: str  # created | same (already stored, identical) | conflict | error
    shown: tuple[str, str] | None = None  # the stored answer a conflict showed


def _contended_tab(
    store: Store,
    study_id: int,
    login: tuple[int, str],
    tab: str,
    limit: int,
    reconnects: bool,
    out: list[Submission],
    steps: list[float],
    start: threading.Barrier,
) -> None:
    rater_id, token = login
    likert = _answers(store, study_id)
    # The second tab disagrees: another preference, its own comment.
    preference = "left" if tab == "tab1" else "right"
    chance = random.Random(f"{rater_id}:{tab}")
    start.wait()
    for number in range(limit):
        began = time.perf_counter()
        try:
            task = next_assignment(store, rater_id, study_id, session_token=token)
            if task is None:
                break
            comment = f"{tab}: answer for task {task.position}"
            if reconnects and number % 3 == 0 and chance.random() < 0.5:
                # The connection drops mid-submit after the server got it: no reply seen.
                submit_judgment(store, rater_id, task.token, uuid.uuid4().hex, preference,
                                likert, comment, 5.0, session_token=token)  # fmt: skip
            # (Or it dropped before the server got it.) After reconnecting the page shows a
            # new form (a new key) and the rater sends the same answer again.
            result = submit_judgment(store, rater_id, task.token, uuid.uuid4().hex, preference,
                                     likert, comment, 5.0, session_token=token)  # fmt: skip
            steps.append((time.perf_counter() - began) * 1000)
            if result.created:
                outcome, shown = "created", None
            elif result.conflict:
                outcome = "conflict"
                shown = (result.stored.preference_shown, result.stored.comment)
            else:
                outcome, shown = "same", None
            out.append(Submission(task.token, preference, comment, outcome, shown))
        except Exception as exc:  # noqa: BLE001 - counted and reported
            out.append(Submission("", preference, "", "error"))
            print(f"  rater {rater_id} {tab}: {type(exc).__name__}: {exc}", file=sys.stderr)


def run_contention(
    store: Store, study_id: int, name: str, raters: int, per_rater: int
) -> tuple[dict, list[float], float]:
    """The two-tabs and lost-connection scenario; its counts, step latencies and wall time."""
    names = [f"{name}-rater{i:03d}" for i in range(raters)]
    logins = {username: _log_in(store, username) for username in names}
    two_tabs = set(names[: max(1, raters // 5)])
    reconnecting = set(names[len(two_tabs) : len(two_tabs) + max(1, raters // 10)])
    plan = [(u, "tab1") for u in names] + [(u, "tab2") for u in names if u in two_tabs]
    start = threading.Barrier(len(plan))
    outs: list[list[Submission]] = [[] for _ in plan]
    steps: list[list[float]] = [[] for _ in plan]
    threads = [
        threading.Thread(
            target=_contended_tab,
            args=(
                store,
                study_id,
                logins[u],
                tab,
                per_rater,
                u in reconnecting,
                outs[i],
                steps[i],
                start,
            ),  # fmt: skip
        )
        for i, (u, tab) in enumerate(plan)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    with store.session() as session:
        stored: dict[str, list[tuple[str, str]]] = {}
        for token, preference, comment in session.execute(
            select(Assignment.token, Judgment.preference_shown, Judgment.comment)
            .join(Judgment, Judgment.assignment_id == Assignment.id)
            .where(Assignment.study_id == study_id)
        ):
            stored.setdefault(token, []).append((preference, comment))
    submissions = [s for out in outs for s in out]
    counts = Counter(s.outcome for s in submissions)
    lost = dropped_told = dropped_silently = wrong_shown = 0
    for sub in submissions:
        if sub.outcome == "error":
            continue
        answer = stored.get(sub.token, [None])[0]
        kept = answer == (sub.preference, sub.comment)
        if sub.outcome in ("created", "same") and not kept:
            lost += 1  # told "saved", and it is not
        if not kept:
            if sub.outcome == "conflict":
                dropped_told += 1
                wrong_shown += int(sub.shown != answer)
            else:
                dropped_silently += 1
    result = {
        "raters": raters,
        "two_tabs": len(two_tabs),
        "reconnecting": len(reconnecting),
        "submissions": len(submissions),
        "created": counts["created"],
        "same": counts["same"],
        "conflicts": counts["conflict"],
        "judgments": sum(len(v) for v in stored.values()),
        "lost": lost,
        "duplicated": sum(len(v) - 1 for v in stored.values()),
        "dropped_told": dropped_told,
        "dropped_silently": dropped_silently,
        "wrong_shown": wrong_shown,
        "errors": counts["error"],
    }
    return result, [ms for tab in steps for ms in tab], wall


def run_contention_backend(backend: str, url: str, raters: int, per_rater: int, root: Path) -> dict:
    store = _store(url, raters, "app")
    try:
        n_cases = -(-raters * per_rater // 6)
        world = build_world(store, root, n_cases=n_cases, benchmark="synthetic-load")
        study_id = _study(store, world, "tabs", raters, 2, None)
        load = os.getloadavg()[0]
        counts, steps, wall = run_contention(store, study_id, "tabs", raters, per_rater)
        return counts | {
            "backend": backend,
            "p50": statistics.median(steps),
            "p95": LoadResult.pct(steps, 0.95),
            "wall_s": wall,
            "load": load,
        }
    finally:
        store.dispose()


def sqlite_sync_cost(url: str, root: Path, steps: int) -> dict:
    """One rater alone with synchronous=FULL (the store's setting) and with NORMAL (the
    setting before), same database and process: what durability on power loss costs."""
    store = _store(url, 1, "app")
    try:
        world = build_world(store, root, n_cases=-(-steps // 3) * 2, benchmark="synthetic-sync")
        out = {}
        for mode in ("FULL", "NORMAL"):
            study_id = _study(store, world, f"sync{mode.lower()}", 1, 1, -(-steps // 3))
            if mode == "NORMAL":
                store.engine.dispose()

                def normal(dbapi_connection, _record) -> None:  # noqa: ANN001
                    dbapi_connection.execute("PRAGMA synchronous=NORMAL")

                event.listen(store.engine, "connect", normal)
            with store.engine.connect() as connection:
                setting = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            alone: dict = {}
            username = f"sync{mode.lower()}-rater000"
            _work(store, study_id, username, steps, alone, login=_log_in(store, username))
            out[mode] = {"synchronous": setting, "p50": statistics.median(alone[username][0])}
        return out
    finally:
        store.dispose()


def contention_markdown(rows: list[dict], per_rater: int, sync: dict | None = None) -> str:
    first = rows[0]
    lines = [
        CONTENTION_SECTION,
        "",
        f"`python bench/rater_load.py --scenario contention`: {first['raters']} simulated "
        f"raters x up to {per_rater} tasks at the same time through `next_assignment` and "
        f"`submit_judgment`; {first['two_tabs']} of them (a fifth) work from two tabs at once, "
        "the second tab giving another answer and its own comment; "
        f"{first['reconnecting']} (a tenth) lose their connection in one submit of three "
        "(half of those after the server got it) and send the same answer again after "
        "reconnecting, with a new form key as the page does. Synthetic study: three "
        f"systems, all pairs, overlap 2. Machine: {machine()} (2-core x86-64 CPU VM, no "
        "GPU), shared with other work while measured; SQLite with synchronous=FULL.",
        "",
        "| backend | submissions | saved | retries already saved | conflicts shown "
        "| judgments | lost | duplicated | dropped without a message | conflict showed "
        "another answer | errors | step p50 (ms) | step p95 (ms) | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['submissions']} | {r['created']} | {r['same']} "
            f"| {r['conflicts']} | {r['judgments']} | {r['lost']} | {r['duplicated']} "
            f"| {r['dropped_silently']} | {r['wrong_shown']} | {r['errors']} "
            f"| {r['p50']:.1f} | {r['p95']:.1f} | {r['load']:.1f} |"
        )
    lines += [
        "",
        "'saved': the submit wrote the judgment. 'retries already saved': a retry after a "
        "lost reply found its own answer stored (nothing written, no conflict). 'conflicts "
        "shown': the task was already answered differently (the other tab), so nothing was "
        "written and the tab got the stored answer back to show, with the way to correct "
        "it. 'lost': an answer its tab was told is saved that the database does not hold. "
        "'dropped without a message': an answer not stored whose tab was not told so. Every "
        "answer that is not stored came back as a conflict showing the answer that is.",
        "",
    ]
    if sync:
        full, normal = sync["FULL"]["p50"], sync["NORMAL"]["p50"]
        lines += [
            "SQLite durability (D12): one rater alone, same database and run, step p50 "
            f"{full:.2f} ms with synchronous=FULL (the store's setting) against {normal:.2f} "
            f"ms with NORMAL (the setting before), {full / normal:.2f}x: the price of a "
            "judgment that survives a power cut, not only a crash of the process (the "
            "'Reader-study load' tables above were measured with NORMAL).",
            "",
        ]
    return "\n".join(lines)


def _integrity(store: Store, study_id: int) -> tuple[int, int, int, int]:
    """(judgments, judged assignments, duplicated, items over the overlap)."""
    with store.session() as session:
        rows = session.execute(
            select(Judgment.assignment_id, Assignment.item_id, Assignment.is_duplicate)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
            .where(Assignment.study_id == study_id)
        ).all()
        overlap = dict(
            session.execute(
                select(StudyItem.id, StudyItem.overlap).where(StudyItem.study_id == study_id)
            ).all()
        )
    per_assignment = Counter(r.assignment_id for r in rows)
    judged_per_item = Counter(r.item_id for r in rows if not r.is_duplicate)
    over = sum(1 for item, n in judged_per_item.items() if n > overlap[item])
    return len(rows), len(per_assignment), sum(n - 1 for n in per_assignment.values()), over


def run_backend(
    backend: str, url: str, raters: int, per_rater: int, root: Path, think_s: float, pool: str
) -> list[LoadResult]:
    store = _store(url, raters, pool)
    try:
        # overlap 2, three systems (three pairs per case): cases x 3 x 2 = raters x per_rater
        n_cases = -(-raters * per_rater // 6)
        world = build_world(store, root, n_cases=n_cases, benchmark="synthetic-load")
        baseline_id = _study(store, world, "base", 1, 1, -(-per_rater // 3))
        # Baseline: one rater alone, same functions, same database.
        alone: dict = {}
        statements = [0]

        def count(*_args) -> None:  # noqa: ANN002
            statements[0] += 1

        login = _log_in(store, "base-rater000")
        event.listen(store.engine, "before_cursor_execute", count)
        _work(store, baseline_id, "base-rater000", per_rater, alone, login=login)
        event.remove(store.engine, "before_cursor_execute", count)
        baseline_ms = alone["base-rater000"][0]
        per_step = statements[0] / max(1, len(baseline_ms))
        out = []
        scenarios = [("burst", 0.0)] + ([("paced", think_s)] if think_s else [])
        for scenario, think in scenarios:
            study_id = _study(store, world, scenario, raters, 2, None)
            load = os.getloadavg()[0]
            steps, created, errors, wall = _load(
                store, study_id, scenario, raters, per_rater, think
            )
            judgments, judged, duplicated, over = _integrity(store, study_id)
            out.append(
                LoadResult(
                    backend=backend,
                    scenario=scenario,
                    raters=raters,
                    judgments=judgments,
                    lost=created - judged,
                    duplicated=duplicated,
                    over_overlap=over,
                    errors=errors,
                    step_ms=steps,
                    baseline_ms=baseline_ms,
                    wall_s=wall,
                    statements_per_step=per_step,
                    load_1m=load,
                )
            )
        return out
    finally:
        store.dispose()


def _pg_database() -> tuple[str, str]:
    import psycopg

    name = f"mvw_bench_{uuid.uuid4().hex[:10]}"
    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", name


def _drop_pg(name: str) -> None:
    import psycopg

    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({model}), Python {platform.python_version()}"


def summary(r: LoadResult) -> dict:
    """The numbers a table row shows (also what --save writes and --before reads)."""
    return {
        "backend": r.backend,
        "scenario": r.scenario,
        "raters": r.raters,
        "judgments": r.judgments,
        "lost": r.lost,
        "duplicated": r.duplicated,
        "over_overlap": r.over_overlap,
        "errors": r.errors,
        "p50": statistics.median(r.step_ms),
        "p95": LoadResult.pct(r.step_ms, 0.95),
        "alone_p50": statistics.median(r.baseline_ms),
        "alone_p95": LoadResult.pct(r.baseline_ms, 0.95),
        "statements": r.statements_per_step,
        "load": r.load_1m,
        "wall_s": r.wall_s,
    }


def _table(rows: list[dict]) -> list[str]:
    lines = [
        "| backend | scenario | judgments | lost | duplicated | over overlap | errors "
        "| step p50 (ms) | step p95 (ms) | alone p50 (ms) | statements / step (alone) "
        "| judgments/s | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['scenario']} | {r['judgments']} | {r['lost']} "
            f"| {r['duplicated']} | {r['over_overlap']} | {r['errors']} | {r['p50']:.1f} "
            f"| {r['p95']:.1f} | {r['alone_p50']:.1f} | {r['statements']:.1f} "
            f"| {r['judgments'] / r['wall_s']:.0f} | {r['load']:.1f} |"
        )
    return lines


def markdown(
    rows: list[dict],
    per_rater: int,
    think_s: float,
    before: dict | None = None,
    notes: str = "",
) -> str:
    lines = [
        SECTION,
        "",
        f"`python bench/rater_load.py`: {rows[0]['raters']} simulated raters x {per_rater} "
        "judgments at the same time (one thread each, one process and one shared store, "
        "like one app server; every rater logs in before the clock starts), through "
        "`studies.readers.rating.next_assignment` and `submit_judgment` (the rating page's calls); "
        "one submit in ten repeated with the same key (a double click). 'burst': no pause "
        "between steps (the worst case)"
        + (
            f"; 'paced': each rater pauses a random (exponential) {think_s:g} s on average "
            "before each step, still about ten times faster than a gastroenterologist reads "
            "a case"
            if think_s
            else ""
        )
        + ". Synthetic study: three systems, all pairs, "
        f"overlap 2, assigned up front at start. Machine: {machine()}; shared with other "
        "work while measured ('load' is the 1-minute load average when the run started; "
        f"above {os.cpu_count()} the cores were oversubscribed).",
        "",
    ]
    if before is not None:
        lines += [f"After ({before.get('after_label', 'this code')}):", ""]
    lines += _table(rows)
    if before is not None:
        lines += ["", f"Before ({before['label']}), measured in the same session:", ""]
        lines += _table(before["results"])
    lines += [
        "",
        "A step is one `next_assignment` plus one `submit_judgment` (each its own "
        "transaction). 'alone' is one rater working by themselves in the same run and "
        "database; its statements per step include the double clicks. Targets: p95 <= 50 "
        "ms on PostgreSQL and <= 100 ms on SQLite. In the burst, "
        f"{rows[0]['raters']} threads share {os.cpu_count()} cores and one interpreter "
        "lock, so a step's latency is mostly queueing (mean latency = raters / "
        "throughput); on SQLite writers also queue for the single write lock.",
        "",
    ]
    targets = {"sqlite": 100.0, "postgresql": 50.0}
    earlier = {(r["backend"], r["scenario"]): r for r in (before or {}).get("results", [])}
    for r in rows:
        target = targets.get(r["backend"], 50.0)
        verdict = "meets" if r["p95"] <= target else "misses"
        line = (
            f"- {r['backend']}, {r['scenario']}: p95 {r['p95']:.0f} ms {verdict} the "
            f"{target:.0f} ms target; {r['judgments'] / r['wall_s']:.0f} judgments/s"
        )
        old = earlier.get((r["backend"], r["scenario"]))
        if old is not None:
            line += (
                f" (before: p95 {old['p95']:.0f} ms, "
                f"{old['judgments'] / old['wall_s']:.0f} judgments/s; alone "
                f"{old['alone_p50']:.1f} -> {r['alone_p50']:.1f} ms per step)"
            )
        lines.append(line + ".")
    lines.append("")
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--per-rater", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-write", action="store_true", help="Do not touch docs/.")
    parser.add_argument("--save", type=Path, help="Also write the summary rows as JSON here.")
    parser.add_argument(
        "--before",
        type=Path,
        help="A --save file from earlier code: shown as a 'before' table next to this run.",
    )
    parser.add_argument("--label", default="this code", help="What --save calls this run.")
    parser.add_argument(
        "--render",
        type=Path,
        help="Do not run: write the section from a --save file (with --before, --notes).",
    )
    parser.add_argument("--notes", type=Path, help="Markdown appended to the section.")
    parser.add_argument(
        "--pool",
        choices=("app", "wide"),
        default="app",
        help="app: the store as the app builds it; wide: one PostgreSQL connection per rater.",
    )
    parser.add_argument(
        "--think-s",
        type=float,
        default=2.0,
        help="Mean reading time between steps in the 'paced' scenario (0: burst only).",
    )
    parser.add_argument(
        "--scenario",
        choices=("load", "contention"),
        default="load",
        help="load: burst and paced; contention: two tabs and lost connections.",
    )
    args = parser.parse_args()
    if args.scenario == "contention":
        _contention_main(args)
        return
    if args.render:
        saved = json.loads(args.render.read_text())
        rows, label = saved["results"], saved["label"]
        per_rater, think_s = saved["per_rater"], saved["think_s"]
    else:
        rows = [summary(r) for r in _run_all(args)]
        label, per_rater, think_s = args.label, args.per_rater, args.think_s
    if args.save:
        saved = {"label": label, "per_rater": per_rater, "think_s": think_s, "results": rows}
        args.save.write_text(json.dumps(saved, indent=1))
    before = None
    if args.before:
        before = json.loads(args.before.read_text()) | {"after_label": label}
    notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
    section = markdown(rows, per_rater, think_s, before, notes)
    print(section)
    if not args.no_write:
        write_section(SECTION, section)
    bad = [r for r in rows if r["lost"] or r["duplicated"] or r["over_overlap"] or r["errors"]]
    if bad:
        raise SystemExit(f"integrity check failed on {', '.join(r['backend'] for r in bad)}")


def _contention_main(args: argparse.Namespace) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            print(f"{backend}: two tabs and lost connections, {args.raters} raters ...")
            if backend == "sqlite":
                url, pg_name = f"sqlite:///{Path(tmp) / 'tabs.db'}", None
            else:
                url, pg_name = _pg_database()
            try:
                row = run_contention_backend(
                    backend, url, args.raters, args.per_rater, Path(tmp) / backend
                )
            finally:
                if pg_name:
                    _drop_pg(pg_name)
            print(f"  {row}", flush=True)
            rows.append(row)
    sync = None
    if "sqlite" in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            sync = sqlite_sync_cost(f"sqlite:///{Path(tmp) / 'sync.db'}", Path(tmp), 150)
        print(f"  synchronous FULL vs NORMAL, alone: {sync}", flush=True)
    section = contention_markdown(rows, args.per_rater, sync)
    print(section)
    if args.save:
        saved = {"per_rater": args.per_rater, "results": rows, "sync": sync}
        args.save.write_text(json.dumps(saved, indent=1))
    if not args.no_write:
        write_section(CONTENTION_SECTION, section)
    keys = ("lost", "duplicated", "dropped_silently", "wrong_shown", "errors")
    bad = [r for r in rows if any(r[k] for k in keys)]
    if bad:
        raise SystemExit(f"no-silent-drop check failed on {', '.join(r['backend'] for r in bad)}")


def _run_all(args: argparse.Namespace) -> list[LoadResult]:
    results: list[LoadResult] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            print(f"{backend}: seeding and running {args.raters} raters ...", flush=True)
            if backend == "sqlite":
                url, pg_name = f"sqlite:///{Path(tmp) / 'load.db'}", None
            else:
                url, pg_name = _pg_database()
            try:
                found = run_backend(
                    backend,
                    url,
                    args.raters,
                    args.per_rater,
                    Path(tmp) / backend,
                    args.think_s,
                    args.pool,
                )
            finally:
                if pg_name:
                    _drop_pg(pg_name)
            results += found
            for result in found:
                print(
                    f"  {result.scenario}: {result.judgments} judgments, lost {result.lost}, "
                    f"duplicated {result.duplicated}, over overlap {result.over_overlap}, "
                    f"errors {result.errors}; step p50 {statistics.median(result.step_ms):.1f} "
                    f"ms, p95 {LoadResult.pct(result.step_ms, 0.95):.1f} ms (alone p95 "
                    f"{LoadResult.pct(result.baseline_ms, 0.95):.1f} ms)",
                    flush=True,
                )
    return results


if __name__ == "__main__":
    main()
