"""Review row 21, generalised: a real process is killed (SIGKILL, from outside) inside a
submit, a correction, a study start and a benchmark import, on SQLite and PostgreSQL, after
every write of the operation was sent and before its COMMIT. Nothing is half-written, nothing
committed before is lost, and the same operation then succeeds.

The child (tests/support/fault_child.py) runs the workbench's own function on the store; a
listener on the store's engine writes a marker at the commit and sleeps until killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select
from support.started_study import LIKERT, make_started_study

from studies.benchmarks.importer import import_benchmark
from studies.readers.lifecycle import start_study
from studies.readers.rating import correct_judgment, next_assignment, submit_judgment
from studies.store.db import Store
from studies.store.schema import (
    Assignment,
    AuditEvent,
    Benchmark,
    Case,
    Judgment,
    Study,
    StudyItem,
)

REPO = Path(__file__).resolve().parents[2]
CHILD = REPO / "tests" / "support" / "fault_child.py"


def _kill_inside(url: str, tmp_path: Path, operation: str, args: dict) -> None:
    """Run `operation` in a child process and SIGKILL it once it is about to commit."""
    marker = tmp_path / f"{operation}.marker"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests")])
    child = subprocess.Popen(
        [sys.executable, str(CHILD), url, str(marker), operation, json.dumps(args)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            if child.poll() is not None:
                pytest.fail(f"the child ended before its commit: {child.stderr.read()}")
            assert time.monotonic() < deadline, "the child never reached its commit"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()


def _count(store: Store, model, *where) -> int:  # noqa: ANN001
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _sqlite_intact(store: Store) -> None:
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_row21_kill_inside_submit_and_correction(store: Store, tmp_path: Path) -> None:
    """row 21: killed inside a submit, then inside a correction of another task: no judgment,
    no audit event of the killed step; the task is still next (submit) and the answer that
    stood is still current (correction); both then succeed."""
    study = make_started_study(store, tmp_path / "bench", n_cases=3, n_raters=2)
    rater = study.raters[0]
    task = next_assignment(store, rater.id, study.study_id)
    answer = {"preference": "left", "likert": LIKERT, "comment": "first"}
    before_audit = _count(store, AuditEvent)
    _kill_inside(store.url, tmp_path, "submit",
                 {"rater_id": rater.id, "token": task.token, "key": "k1", **answer})  # fmt: skip
    _sqlite_intact(store)
    assert _count(store, Judgment) == 0 and _count(store, AuditEvent) == before_audit
    assert next_assignment(store, rater.id, study.study_id).token == task.token
    started = time.monotonic()
    saved = submit_judgment(store, rater.id, task.token, "k1", "left", LIKERT, "first", 1.0)
    assert saved.created and time.monotonic() - started < 5

    fix = {"preference": "right", "likert": LIKERT, "comment": "second thoughts"}
    _kill_inside(store.url, tmp_path, "correct",
                 {"rater_id": rater.id, "token": task.token, "key": "fix", **fix})  # fmt: skip
    _sqlite_intact(store)
    assert _count(store, Judgment) == 1
    assert _count(store, AuditEvent, AuditEvent.action == "judgment.correct") == 0
    with store.session() as session:
        assert session.scalar(select(Judgment.comment)) == "first"
    fixed = correct_judgment(store, rater.id, task.token, "fix", "right", LIKERT, "second thoughts")
    assert fixed.created and _count(store, Judgment) == 2


def test_kill_inside_study_start(store: Store, tmp_path: Path) -> None:
    """Killed inside `start_study`: the study is still a draft with no items, assignments or
    start event; enrolments and the benchmark are kept; starting again works."""
    study = make_started_study(store, tmp_path / "bench", n_cases=3, start=False)
    _kill_inside(store.url, tmp_path, "start", {"study_id": study.study_id})
    _sqlite_intact(store)
    with store.session() as session:
        assert session.get(Study, study.study_id).status == "draft"
    assert _count(store, StudyItem) == 0 and _count(store, Assignment) == 0
    assert _count(store, AuditEvent, AuditEvent.action == "study.start") == 0
    assert _count(store, Case) == 3
    report = start_study(store, study.study_id)
    assert report.n_assignments == _count(store, Assignment) > 0


def _dataset(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    lines = ["image,report,split"]
    for index in range(n):
        Image.new("RGB", (24, 24), (40 * index % 255, 90, 160)).save(
            root / "images" / f"case-{index}.png"
        )
        lines.append(f"images/case-{index}.png,SYNTHETIC report {index}: no polyps.,test")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def test_kill_inside_import(store: Store, tmp_path: Path) -> None:
    """Killed inside `import_benchmark` (new benchmark, then a re-import that adds cases):
    neither a benchmark without its cases nor some of the new cases; what was imported
    before is kept; the import then succeeds."""
    root = _dataset(tmp_path / "ds", 4)
    args = {"loader": "polyp-reports", "root": str(root), "name": "fault-import"}
    _kill_inside(store.url, tmp_path, "import", args)
    _sqlite_intact(store)
    assert _count(store, Benchmark) == 0 and _count(store, Case) == 0
    assert import_benchmark(store, "polyp-reports", root, name="fault-import").added == 4
    # A re-import adding two cases, killed: the four stay, none of the two is there.
    _dataset(tmp_path / "more", 6)
    for path in (tmp_path / "more" / "images").iterdir():
        path.replace(root / "images" / path.name)
    (tmp_path / "more" / "manifest.csv").replace(root / "manifest.csv")
    (tmp_path / "import.marker").unlink()
    _kill_inside(store.url, tmp_path, "import", args)
    _sqlite_intact(store)
    assert _count(store, Benchmark) == 1 and _count(store, Case) == 4
    assert import_benchmark(store, "polyp-reports", root, name="fault-import").added == 2
