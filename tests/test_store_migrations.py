"""Migrating a populated store keeps its data: migration 0002 (generations keyed by the case's
input hash) keeps every cached report, the study items and flags that point at them, and the
reports stay cache hits, on SQLite and PostgreSQL."""

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
            session.add(
                StudyItem(
                    study_id=study.id,
                    case_id=cases[0].id,
                    system_a_id=system.id,
                    system_b_id=system.id,
                    generation_a_id=ids[0],
                    generation_b_id=ids[1],
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
