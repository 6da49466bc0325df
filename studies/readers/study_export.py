"""What every export of a study's answers (a comparison's judgments, an annotation study's
annotations) shares: the answer's own timing and supersession columns, the study's
provenance (the design as run: frozen config hash, seed, the amendments' hash chain; when
and which export), the synthetic label of the study's cases, and the CSV / JSONL writer.

Each export names its own columns before these (studies.readers.rating.export_fields,
studies.readers.annotation_results.EXPORT_FIELDS).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from model.notice import RESEARCH_NOTICE
from studies.exports.render import csv_cell
from studies.readers.accounts import aware, now_utc
from studies.readers.amendments import amendments_summary, study_amendments
from studies.readers.design import StudyError
from studies.store.schema import Annotation, Assignment, Benchmark, Case, Judgment, Study, StudyItem

# After an export's own columns: the answer's timing and supersession, its synthetic label,
# then the study's provenance (`study_provenance`).
ANSWER_FIELDS = (
    "time_on_task_s",
    "assigned_at",
    "submitted_at",
    "supersedes_id",
    "superseded",
    "synthetic",
)
PROVENANCE_FIELDS = (
    "study_config_hash",
    "study_seed",
    "study_design_hash",
    "study_amendments",
    "exported_at",
    "export",
)
FORMATS = ("csv", "jsonl")


def iso(moment: datetime | None) -> str:
    """A stored moment as ISO 8601 in UTC ("" when there is none)."""
    moment = aware(moment)
    return moment.isoformat() if moment else ""


def answer_columns(
    answer: Judgment | Annotation, assignment: Assignment, *, superseded: bool, synthetic: str
) -> dict[str, Any]:
    """The ANSWER_FIELDS of one judgment or annotation."""
    return {
        "time_on_task_s": answer.time_on_task_s,
        "assigned_at": iso(assignment.created_at),
        "submitted_at": iso(answer.submitted_at),
        "supersedes_id": answer.supersedes_id,
        "superseded": superseded,
        # The label travels with the export: re-analysis reads it back.
        "synthetic": synthetic,
    }


def study_provenance(session: Session, study: Study, export: str) -> dict[str, Any]:
    """The PROVENANCE_FIELDS of an export of `study` (the same on every row): the design as it
    was run (the frozen config plus each panel amendment); `export` names the export's
    version and what it holds."""
    amendments = study_amendments(session, study.id)
    return {
        "study_config_hash": study.config_hash or "",
        "study_seed": (study.config.get("design") or {}).get("seed"),
        "study_design_hash": amendments[-1].hash if amendments else (study.config_hash or ""),
        "study_amendments": amendments_summary(amendments),
        "exported_at": now_utc().isoformat(),
        "export": f"{export}; {RESEARCH_NOTICE}",
    }


def study_cases_synthetic(session: Session, study_id: int) -> bool:
    """Whether any case of the study comes from a synthetic benchmark (answered or not)."""
    return any(
        session.scalars(
            select(Benchmark.synthetic)
            .join(Case, Case.benchmark_id == Benchmark.id)
            .join(StudyItem, StudyItem.case_id == Case.id)
            .where(StudyItem.study_id == study_id)
            .distinct()
        ).all()
    )


def check_format(fmt: str) -> None:
    """Refuse an export format other than csv or jsonl."""
    if fmt not in FORMATS:
        raise StudyError(f"format {fmt!r}: use csv or jsonl")


def export_text(rows: list[dict[str, Any]], fields: list[str], fmt: str) -> str:
    """Rows as JSONL (one object a line) or CSV with `fields` as its header, each cell made
    safe for a spreadsheet (a comment or report such as =HYPERLINK(...) opens as text)."""
    check_format(fmt)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else csv_cell(v) for k, v in r.items()})
    return buffer.getvalue()
