"""Judgments as stored: the one "current judgment" rule and the one judgments-table join.

Judgments are append-only: a correction is a new row whose `supersedes_id` names the row it
replaces. `is_current` is the rule (no row supersedes it) that rating, the raw export, the
reader statistics and preference harvesting all use; `judgment_query` is the join of a
study's judgments with their rater, case, both systems and both reports. `study_judgments`
reads a study's current judgments into the DataFrame contract of `studies.reader_stats`,
with one pair of `likert_a_<key>` / `likert_b_<key>` columns per criterion of the study's
frozen form.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy.orm import Session, aliased

from studies.exports.synthetic import synthetic_kind
from studies.readers.form import criteria, default_form
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Judgment,
    Study,
    StudyItem,
    System,
)

if TYPE_CHECKING:
    import pandas as pd

# Built once: aliased() copies every column, which is measurable on a hot path.
_NEWER = aliased(Judgment, name="newer_judgment")
_SYSTEM_A = aliased(System, name="system_a")
_SYSTEM_B = aliased(System, name="system_b")
_GENERATION_A = aliased(Generation, name="generation_a")
_GENERATION_B = aliased(Generation, name="generation_b")


def is_current(judgment: Any = Judgment) -> ColumnElement[bool]:
    """True for a judgment that no correction supersedes (`judgment`: Judgment or an alias)."""
    return ~exists().where(_NEWER.supersedes_id == judgment.id)


def judgment_query(study_id: int, *, current_only: bool) -> Select:
    """A study's judgments joined to assignment, item, rater, case, benchmark, both systems
    and both reports, oldest first; `current` says whether a judgment is current."""
    query = (
        select(
            Judgment,
            Assignment,
            StudyItem,
            Account.username.label("rater"),
            Case.case_key.label("case_key"),
            Benchmark.synthetic.label("synthetic"),
            _SYSTEM_A.name.label("system_a"),
            _SYSTEM_B.name.label("system_b"),
            _GENERATION_A.text.label("text_a"),
            _GENERATION_B.text.label("text_b"),
            is_current().label("current"),
        )
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .join(StudyItem, StudyItem.id == Assignment.item_id)
        .join(Account, Account.id == Judgment.rater_id)
        .join(Case, Case.id == StudyItem.case_id)
        .join(Benchmark, Benchmark.id == Case.benchmark_id)
        .join(_SYSTEM_A, _SYSTEM_A.id == StudyItem.system_a_id)
        .join(_SYSTEM_B, _SYSTEM_B.id == StudyItem.system_b_id)
        .join(_GENERATION_A, _GENERATION_A.id == StudyItem.generation_a_id)
        .join(_GENERATION_B, _GENERATION_B.id == StudyItem.generation_b_id)
        .where(Assignment.study_id == study_id)
        .order_by(Judgment.id)
    )
    return query.where(is_current()) if current_only else query


def current_judgments(session: Session, study_id: int) -> list[tuple[Judgment, Assignment]]:
    """The current judgments of a study with their assignments, oldest first."""
    rows = session.execute(
        select(Judgment, Assignment)
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .where(Assignment.study_id == study_id, is_current())
        .order_by(Judgment.id)
    ).all()
    return [(judgment, assignment) for judgment, assignment in rows]


def case_label(rows: Any) -> str:
    """The synthetic label of judgments from the store (rows of `judgment_query`): the raters
    are real accounts, so it says whether the cases come from a synthetic benchmark."""
    return synthetic_kind(cases=any(bool(row.synthetic) for row in rows), judgments=False)


def study_form(config: dict[str, Any] | None) -> dict[str, Any]:
    """The rating form in a study's configuration (the default form when it has none)."""
    return ((config or {}).get("design") or {}).get("form") or default_form()


def _stats_record(row: Any, keys: list[str]) -> dict[str, Any]:
    judgment, assignment, item = row.Judgment, row.Assignment, row.StudyItem
    record: dict[str, Any] = {
        "judgment_id": judgment.id,
        "rater": row.rater,
        "case": row.case_key,
        "system_a": row.system_a,
        "system_b": row.system_b,
        "winner": judgment.winner,
        "left": "a" if assignment.a_on_left else "b",
        "time_on_task_s": judgment.time_on_task_s,
        "is_gold": item.kind == "gold",
        "gold_answer": item.gold_answer,
        "is_duplicate": bool(assignment.is_duplicate),
        "item": str(item.id),
        "submitted_at": judgment.submitted_at,
        "len_a": len((row.text_a or "").split()),
        "len_b": len((row.text_b or "").split()),
    }
    likert = judgment.likert or {}
    for side in ("a", "b"):
        scores = likert.get(side) or {}
        for key in keys:
            record[f"likert_{side}_{key}"] = scores.get(key)
    return record


def study_judgments(store: Store, study_name: str) -> pd.DataFrame:
    """The current judgments of study `study_name`, in the judgments contract.

    One `likert_a_<key>` / `likert_b_<key>` pair per criterion of the study's frozen form;
    the form travels in `attrs["form"]` (labels, the harm criterion). Raises JudgmentsError
    when there is no such study or it has no judgments yet.
    """
    # pandas only here: rating and the CLI import this module and stay light.
    import pandas as pd

    from studies.reader_stats.data import JudgmentsError, prepare_judgments, set_synthetic

    with store.session() as session:
        study = session.scalar(select(Study).where(Study.name == study_name))
        if study is None:
            known = session.scalars(select(Study.name).order_by(Study.name)).all()
            hint = f" (studies: {', '.join(known)})" if known else " (there are no studies yet)"
            raise JudgmentsError(f"no study named {study_name!r}{hint}")
        form = study_form(study.config)
        keys = [c.key for c in criteria(form)]
        # A senior rater's adjudication is not another rater's reading, a training case not
        # a study case: the statistics leave both out; the raw export keeps them.
        query = judgment_query(study.id, current_only=True)
        rows = session.execute(
            query.where(StudyItem.kind.not_in(("adjudication", "calibration")))
        ).all()
        records = [_stats_record(row, keys) for row in rows]
        synthetic = case_label(rows)
        config_hash = study.config_hash
        # Panel changes of a running study (amendments of the frozen design) reach the footers.
        from studies.readers.amendments import amendments_summary, study_amendments

        amended = amendments_summary(study_amendments(session, study.id))
    if not records:
        raise JudgmentsError(f"study {study_name!r} has no judgments yet")
    prepared = prepare_judgments(pd.DataFrame.from_records(records), source=f"study {study_name}")
    # The store's judgments are the raters' own: only the cases can be synthetic.
    set_synthetic(prepared, synthetic)
    prepared.attrs["source"] = f"study {study_name}"
    prepared.attrs["study"] = study_name
    prepared.attrs["config_hash"] = config_hash
    prepared.attrs["amendments"] = amended
    prepared.attrs["form"] = form
    return prepared


def study_names(store: Store) -> list[str]:
    """Names of all studies, newest first."""
    with store.session() as session:
        return list(session.scalars(select(Study.name).order_by(Study.id.desc())).all())
