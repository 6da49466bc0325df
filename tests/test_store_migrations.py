"""Migrating a populated store keeps its data, on SQLite and PostgreSQL: migration 0002
(generations keyed by the case's input hash) keeps every cached report, the study items and
flags that point at them, and the reports stay cache hits; migration 0003 (the judgments'
rules in the database) keeps every judgment and correction, then enforces the rules, and
refuses, rolled back, a store that already breaks them. (A batch migration of accounts and
assignments: tests/security/test_row22_migrations.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from model.kinds import fingerprint
from model.spec import SystemSpec
from studies.store.db import Store, make_engine, upgrade
from studies.store.media import sha256_file
from studies.store.schema import (
    Account,
    Benchmark,
    Case,
    FlaggedReport,
    Generation,
    Study,
    StudyItem,
    System,
)
from studies.systems.registry import prompt_for
from studies.systems.runs import case_input_hash, run_system

OLD_GENERATIONS = sa.table(
    "generations",
    sa.column("id", sa.Integer),
    sa.column("system_fingerprint", sa.String),
    sa.column("system_id", sa.Integer),
    sa.column("case_id", sa.Integer),
    sa.column("prompt_hash", sa.String),
    sa.column("text", sa.Text),
    sa.column("meta", sa.JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)

OLD_STUDY_ITEMS = sa.table(
    "study_items",
    *(
        sa.column(name, sa.Integer)
        for name in ("study_id", "case_id", "system_a_id", "system_b_id", "overlap")
    ),
    sa.column("generation_a_id", sa.Integer),
    sa.column("generation_b_id", sa.Integer),
    sa.column("kind", sa.String),
)


def _populate_at_0001(url: str, root: Path) -> None:
    """A store at revision 0001 with a benchmark, a system, its two cached reports, a study
    item over them and a flag on one (written with the 0001 columns only)."""
    upgrade(url, "0001")
    root.mkdir(parents=True, exist_ok=True)
    spec = SystemSpec(kind="reference")
    prompt = prompt_for(spec, "report")
    engine = make_engine(url, pooled=False)
    try:
        with Session(engine) as session, session.begin():
            benchmark = Benchmark(name="old", loader="polyp-reports", root=str(root), task="report")
            session.add(benchmark)
            session.flush()
            cases = []
            for index, colour in enumerate([(200, 60, 60), (60, 60, 200)]):
                path = root / f"case-{index}.png"
                Image.new("RGB", (32, 32), colour).save(path)
                case = Case(
                    benchmark_id=benchmark.id,
                    case_key=f"case-{index}",
                    split="test",
                    modality="image",
                    media=[{"path": path.name, "sha256": sha256_file(path), "kind": "image"}],
                    references=[f"reference report {index}"],
                    content_hash=f"{index:064d}",
                )
                session.add(case)
                cases.append(case)
            system = System(
                name="reference",
                kind="reference",
                config=spec.to_dict(),
                fingerprint=fingerprint(spec, prompt),
            )
            admin = Account(username="admin", role="admin")
            study = Study(name="s")
            session.add_all([system, admin, study])
            session.flush()
            ids = []
            for case in cases:
                ids.append(
                    session.execute(
                        OLD_GENERATIONS.insert()
                        .values(
                            system_fingerprint=system.fingerprint,
                            system_id=system.id,
                            case_id=case.id,
                            prompt_hash=prompt.hash,
                            text=case.references[0],
                            meta={},
                            created_at=sa.func.now(),
                        )
                        .returning(OLD_GENERATIONS.c.id)
                    ).scalar_one()
                )
            # The 0001 columns only: later revisions add columns to study_items (0005).
            session.execute(
                OLD_STUDY_ITEMS.insert().values(
                    study_id=study.id,
                    case_id=cases[0].id,
                    system_a_id=system.id,
                    system_b_id=system.id,
                    generation_a_id=ids[0],
                    generation_b_id=ids[1],
                    kind="regular",
                    overlap=1,
                )
            )
            session.add(FlaggedReport(study_id=study.id, generation_id=ids[1], reason="typo"))
    finally:
        engine.dispose()


def test_0002_keeps_generations_and_what_points_at_them(db_url: str, tmp_path: Path) -> None:
    _populate_at_0001(db_url, tmp_path / "media")
    upgrade(db_url)  # only an explicit upgrade migrates existing data
    store = Store(db_url)
    try:
        with store.session() as session:
            generations = session.scalars(select_generations()).all()
            assert [g.text for g in generations] == ["reference report 0", "reference report 1"]
            for generation in generations:
                case = session.get(Case, generation.case_id)
                assert generation.input_hash == case_input_hash(case)
            item = session.scalars(sa.select(StudyItem)).one()
            assert (item.generation_a_id, item.generation_b_id) == tuple(g.id for g in generations)
            assert session.scalars(sa.select(FlaggedReport.reason)).all() == ["typo"]

        # The upgraded reports are this system's cached reports: nothing is regenerated.
        report = run_system(store, "old", "reference")
        assert (report.n_cached, report.n_generated) == (2, 0)

        # Foreign keys are still enforced after the SQLite table copy.
        with pytest.raises(IntegrityError):
            with store.session() as session:
                session.add(FlaggedReport(study_id=1, generation_id=999, reason="x"))
    finally:
        store.dispose()


def select_generations() -> sa.Select:
    return sa.select(Generation).order_by(Generation.id)


def test_0002_downgrades_a_populated_sqlite_store_without_losing_rows(tmp_path: Path) -> None:
    from alembic import command

    from studies.store.db import alembic_config

    url = f"sqlite:///{tmp_path / 'store.db'}"
    _populate_at_0001(url, tmp_path / "media")
    upgrade(url)
    command.downgrade(alembic_config(url), "0001")
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            counts = [
                connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                for table in ("generations", "study_items", "flagged_reports")
            ]
            columns = [
                row[1] for row in connection.exec_driver_sql("PRAGMA table_info(generations)")
            ]
    finally:
        engine.dispose()
    assert counts == [2, 1, 1] and "input_hash" not in columns


def _judged_store_at_0002(url: str, root: Path) -> None:
    """A started study with judgments (one corrected), taken back to revision 0002."""
    from alembic import command
    from support.started_study import LIKERT, make_started_study

    from studies.readers.rating import correct_judgment, next_assignment, submit_judgment
    from studies.store.db import alembic_config

    store = Store(url)
    try:
        study = make_started_study(store, root, n_cases=2, n_raters=2)
        for rater in study.raters:
            task = next_assignment(store, rater.id, study.study_id)
            submit_judgment(store, rater.id, task.token, f"k{rater.id}", "left", LIKERT, "", 1.0)
            correct_judgment(store, rater.id, task.token, f"c{rater.id}", "tie", LIKERT, "")
    finally:
        store.dispose()
    command.downgrade(alembic_config(url), "0002")


def _judgment_rows(url: str) -> list[tuple]:
    engine = make_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text(
                    "SELECT id, assignment_id, supersedes_id, winner FROM judgments ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()


def test_0003_on_judged_data_keeps_every_judgment_and_enforces_the_rules(
    db_url: str, tmp_path: Path
) -> None:
    """0003 on a store with judgments and corrections: every row kept; afterwards the
    database refuses a second first judgment of a task and UPDATE of a judgment."""
    _judged_store_at_0002(db_url, tmp_path / "bench")
    before = _judgment_rows(db_url)
    assert len(before) == 4
    upgrade(db_url)
    assert _judgment_rows(db_url) == before
    engine = make_engine(db_url, pooled=False)
    try:
        first = before[0]
        with pytest.raises(IntegrityError):
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO judgments (assignment_id, rater_id, submission_key, "
                        "preference_shown, winner, likert, comment, submitted_at) SELECT "
                        "assignment_id, rater_id, 'again', 'left', 'a', likert, '', "
                        "submitted_at FROM judgments WHERE id = :id"
                    ),
                    {"id": first.id},
                )
        with pytest.raises(IntegrityError, match="append-only"):
            with engine.begin() as connection:
                connection.execute(sa.text("UPDATE judgments SET winner = 'b'"))
    finally:
        engine.dispose()


def test_0003_refuses_a_store_that_already_breaks_the_rules(db_url: str, tmp_path: Path) -> None:
    """A task with two first judgments (written past the workbench at 0002): the upgrade is
    refused naming the task, rolled back, and the store stays at 0002 with its rows."""
    from studies.store.db import UpgradeRefused, schema_state

    _judged_store_at_0002(db_url, tmp_path / "bench")
    engine = make_engine(db_url, pooled=False)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO judgments (assignment_id, rater_id, submission_key, "
                    "preference_shown, winner, likert, comment, submitted_at) SELECT "
                    "assignment_id, rater_id, 'second-root', 'left', 'a', likert, '', "
                    "submitted_at FROM judgments WHERE supersedes_id IS NULL LIMIT 1"
                )
            )
    finally:
        engine.dispose()
    before = _judgment_rows(db_url)
    with pytest.raises(UpgradeRefused, match=r"assignment \d+: 2 first judgments"):
        upgrade(db_url)
    assert schema_state(db_url).revision == "0002"
    assert _judgment_rows(db_url) == before
