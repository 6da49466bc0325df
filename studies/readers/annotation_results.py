"""What an expert annotation study's annotations give once submitted: where two annotations
of a case differ and the queue of those to a senior annotator, agreement per field, the expert
references, the validation of the clinical extractor, on-policy preference pairs, and the
annotation export. The tasks and submits themselves: studies.readers.annotation.

Cases whose two annotations differ (`annotation_disagreements`) go to a senior annotator
through the adjudication queue of studies.readers.adjudication; the adjudicated annotation
(source "adjudicated") settles the case. `expert_references` are the settled cases (the
adjudicated annotation, else the agreed one; cases still in disagreement are listed as such),
`write_expert_references` copies them into a benchmark of their own, `validate_extractor`
compares the clinical extractor with the experts' findings, and `on_policy_harvest` turns each
correction of a model report into a preference pair (chosen: the correction; rejected: the
model's output) written by the preference harvest's own writer.

Research software, not a medical device.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from metrics.clinical.extract import FINDINGS_SCHEMA_VERSION, extract_findings
from metrics.clinical.scoring import match_lesions
from metrics.clinical.vocab import LESION_ATTRIBUTES
from model.notice import RESEARCH_NOTICE
from studies.exports.synthetic import synthetic_kind
from studies.readers.adjudication import ADJUDICATION_KIND, queue_items
from studies.readers.annotation import (
    CASE_KEYS,
    annotations_of_items,
    current_annotations,
    per_annotator,
)
from studies.readers.design import ANNOTATION_KIND, StudyError, find_study, study_kind
from studies.readers.panel import PanelChange
from studies.readers.study_export import (
    ANSWER_FIELDS,
    PROVENANCE_FIELDS,
    answer_columns,
    check_format,
    export_text,
    iso,
    study_cases_synthetic,
    study_provenance,
)
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Annotation,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Study,
    StudyItem,
    System,
)

EXPORT_VERSION = "annotation-study-export/1"
# Lesion fields compared between annotations, and with the extractor: the scored attributes
# (the size by its class, the size that decides management) and the dysplasia grade.
COMPARED_LESION_FIELDS = (*LESION_ATTRIBUTES, "dysplasia")
COMPARED_FIELDS = (*CASE_KEYS, "lesions", *COMPARED_LESION_FIELDS)


def _annotation_study(session: Session, study: int | str) -> Study:
    """The study, refused unless it is an annotation study."""
    row = find_study(session, study)
    if study_kind(row) != ANNOTATION_KIND:
        raise StudyError(f"study {row.name!r} is not an annotation study")
    return row


# --- comparing annotations ----------------------------------------------------------------


def _case_value(findings: dict[str, Any], key: str) -> Any:
    value = findings.get(key)
    if key == "resection":
        return tuple(sorted(value or []))
    if key in ("bbps_total", "polyp_count", "surveillance_years") and value is not None:
        return float(value)
    return value


def findings_differences(
    first: dict[str, Any], second: dict[str, Any], fields: tuple[str, ...] = COMPARED_FIELDS
) -> list[str]:
    """Where two findings differ, one line each ("bbps_total: 6 / 7", "lesion 1, location:
    sigmoid / rectum"); lesions are paired the way the clinical score pairs them."""
    out = []
    for key in CASE_KEYS:
        if key in fields and _case_value(first, key) != _case_value(second, key):
            out.append(f"{key}: {first.get(key)!r} / {second.get(key)!r}")
    a, b = first.get("lesions") or [], second.get("lesions") or []
    pairs = match_lesions(a, b)
    if "lesions" in fields and (len(pairs) != len(a) or len(pairs) != len(b)):
        out.append(f"lesions: {len(a)} / {len(b)}")
    for i, j in pairs:
        for key in COMPARED_LESION_FIELDS:
            if key in fields and a[i].get(key) != b[j].get(key):
                out.append(f"lesion {i + 1}, {key}: {a[i].get(key)!r} / {b[j].get(key)!r}")
    return out


@dataclass(frozen=True)
class AnnotationRule:
    """When the annotations of a case disagree enough to need adjudication: any difference
    in one of `fields` (default: every compared field), or in the report text if `report`."""

    fields: tuple[str, ...] = COMPARED_FIELDS
    report: bool = False

    def check(self) -> None:
        unknown = [f for f in self.fields if f not in COMPARED_FIELDS]
        if unknown:
            raise StudyError(
                f"adjudication rule: no field {unknown[0]!r}; use {', '.join(COMPARED_FIELDS)}"
            )
        if not self.fields and not self.report:
            raise StudyError("adjudication rule: name at least one field, or the report")

    def to_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "report": self.report}


def _annotation_items(session: Session, study_id: int) -> list[StudyItem]:
    return list(
        session.scalars(
            select(StudyItem)
            .where(StudyItem.study_id == study_id, StudyItem.kind == ANNOTATION_KIND)
            .order_by(StudyItem.id)
        )
    )


def _reasons(chosen: list[Annotation], rule: AnnotationRule) -> list[str]:
    first, second = chosen[0], chosen[1]
    reasons = findings_differences(first.findings or {}, second.findings or {}, rule.fields)
    if rule.report and " ".join(first.report.split()) != " ".join(second.report.split()):
        reasons.append("report: the texts differ")
    return reasons


def annotation_disagreements(
    session: Session, study: Study, rule: AnnotationRule | None = None
) -> dict[int, list[str]]:
    """Annotation item id -> why its (first two) annotators disagree under `rule`."""
    rule = rule or AnnotationRule()
    rule.check()
    items = _annotation_items(session, study.id)
    by_item = annotations_of_items(session, [i.id for i in items])
    found = {}
    for item in items:
        chosen = per_annotator(by_item.get(item.id, []))
        if len(chosen) < 2:
            continue
        reasons = _reasons(chosen, rule)
        if reasons:
            found[item.id] = reasons
    return found


def queue_annotation_adjudication(
    store: Store,
    study: int | str,
    adjudicator: str,
    rule: AnnotationRule | None = None,
    *,
    actor_id: int | None = None,
) -> PanelChange:
    """Send every case whose annotations disagree under `rule` (not queued yet) to the
    senior annotator `adjudicator`: one amendment of the design, with the rule."""
    rule = rule or AnnotationRule()
    rule.check()

    def find(session: Session, row: Study) -> dict[int, list[str]]:
        if study_kind(row) != ANNOTATION_KIND:
            raise StudyError(
                f"study {row.name!r} is a comparison study; queue its disagreements with "
                "queue_adjudication"
            )
        return annotation_disagreements(session, row, rule)

    return queue_items(store, study, adjudicator, find, rule.to_dict(), actor_id=actor_id)


# --- agreement ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldAgreement:
    """Agreement between the two annotators of each case on one field."""

    field: str
    level: str  # case | lesion
    n: int  # cases (case fields) or paired lesions (lesion fields; "lesions": all lesions)
    agreement: float  # share of units both annotators gave the same value
    agreement_low: float  # Wilson
    agreement_high: float
    cohen_kappa: float
    cohen_low: float  # bootstrap over units (seeded)
    cohen_high: float
    fleiss_kappa: float
    fleiss_low: float  # Gwet's linearised interval
    fleiss_high: float
    gwet_ac1: float
    gwet_low: float
    gwet_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_NOT_GIVEN = "(not given)"


# One unit of agreement: (annotator id, value) of each of the two annotators.
Unit = tuple[tuple[int, Any], tuple[int, Any]]


def _agreement(
    name: str, level: str, units: list[Unit], *, seed: int, n_resamples: int
) -> FieldAgreement:
    import pandas as pd

    from studies.reader_stats import agreement as stats
    from studies.reader_stats.pairwise import wilson_interval

    nan = float("nan")
    n = len(units)
    values = sorted({repr(value) for unit in units for _, value in unit})
    code = {v: float(i) for i, v in enumerate(values)}
    # Cohen: the first annotator of each case against the second.
    first = np.array([code[repr(a[1])] for a, _ in units])
    second = np.array([code[repr(b[1])] for _, b in units])
    same = int((first == second).sum())
    low, high = wilson_interval(same, n)
    cohen = cohen_low = cohen_high = nan
    fleiss = {"value": nan, "ci_low": nan, "ci_high": nan}
    gwet = dict(fleiss)
    domain = list(code.values())
    if n >= 2 and len(domain) >= 2:
        onehot = stats._pair_onehot(first, second, domain)
        cohen = float(stats._kappa_from_counts(onehot.sum(axis=0)[None, :], len(domain), None)[0])
        boot = stats._kappa_from_counts(
            stats._unit_weights(n, n_resamples, seed) @ onehot, len(domain), None
        )
        cohen_low, cohen_high = stats._interval(boot, 0.95)
        # Fleiss and Gwet: the annotators x units table (annotators random, as rated).
        cells = [
            {"rater": rater, "unit": index, "value": code[repr(value)]}
            for index, unit in enumerate(units)
            for rater, value in unit
        ]
        table = (
            pd.DataFrame(cells)
            .drop_duplicates(["rater", "unit"])
            .pivot(index="rater", columns="unit", values="value")
        )
        counts = stats.category_counts(table, domain)
        weights = stats.agreement_weights(domain)
        ratings = stats.rating_codes(table, domain)
        fleiss = stats.chance_corrected(counts, weights, "fleiss", ratings=ratings)
        gwet = stats.chance_corrected(counts, weights, "gwet", ratings=ratings)
    return FieldAgreement(
        field=name,
        level=level,
        n=n,
        agreement=same / n if n else nan,
        agreement_low=float(low),
        agreement_high=float(high),
        cohen_kappa=cohen,
        cohen_low=cohen_low,
        cohen_high=cohen_high,
        fleiss_kappa=fleiss["value"],
        fleiss_low=fleiss["ci_low"],
        fleiss_high=fleiss["ci_high"],
        gwet_ac1=gwet["value"],
        gwet_low=gwet["ci_low"],
        gwet_high=gwet["ci_high"],
    )


def _given(value: Any) -> Any:
    return _NOT_GIVEN if value is None else value


def annotation_agreement(
    store: Store, study: int | str, *, seed: int = 0, n_resamples: int = 1000
) -> list[FieldAgreement]:
    """Agreement per field between the first two annotators of each doubly annotated case:
    case fields over cases; lesion fields over the lesions the two paired (the clinical
    score's pairing); "lesions" over all lesions (paired or not: whether both described it).
    A value left empty is a value of its own ("not given"). Percent agreement with a Wilson
    interval, Cohen's kappa (bootstrap interval over units), Fleiss' kappa and Gwet's AC1
    (Gwet's linearised intervals), from studies.reader_stats.agreement."""
    with store.session() as session:
        row = find_study(session, study)
        items = _annotation_items(session, row.id)
        by_item = annotations_of_items(session, [i.id for i in items])
        doubles = []
        for item in items:
            chosen = per_annotator(by_item.get(item.id, []))
            if len(chosen) >= 2:
                doubles.append(
                    (
                        (chosen[0].rater_id, dict(chosen[0].findings or {})),
                        (chosen[1].rater_id, dict(chosen[1].findings or {})),
                    )
                )
    out = []
    for number, key in enumerate(CASE_KEYS):
        units = [
            ((ra, _given(_case_value(a, key))), (rb, _given(_case_value(b, key))))
            for (ra, a), (rb, b) in doubles
        ]
        out.append(_agreement(key, "case", units, seed=seed + number, n_resamples=n_resamples))
    lesion_units: dict[str, list[Unit]] = defaultdict(list)
    presence: list[Unit] = []
    for (ra, a), (rb, b) in doubles:
        la, lb = a.get("lesions") or [], b.get("lesions") or []
        matched = match_lesions(la, lb)
        presence += [((ra, True), (rb, True))] * len(matched)
        presence += [((ra, True), (rb, False))] * (len(la) - len(matched))
        presence += [((ra, False), (rb, True))] * (len(lb) - len(matched))
        for i, j in matched:
            for key in COMPARED_LESION_FIELDS:
                lesion_units[key].append(
                    ((ra, _given(la[i].get(key))), (rb, _given(lb[j].get(key))))
                )
    base = seed + len(CASE_KEYS)
    out.append(_agreement("lesions", "lesion", presence, seed=base, n_resamples=n_resamples))
    for number, key in enumerate(COMPARED_LESION_FIELDS, start=1):
        out.append(
            _agreement(
                key, "lesion", lesion_units[key], seed=base + number, n_resamples=n_resamples
            )
        )
    return out


# --- expert references --------------------------------------------------------------------

REFERENCE_STATUSES = ("adjudicated", "agreed", "single", "disagreement", "pending")


@dataclass(frozen=True)
class ExpertReference:
    """A case's expert reference, or why it has none yet (`status`)."""

    case_id: int
    case_key: str
    status: str  # adjudicated | agreed | single | disagreement | pending
    report: str | None
    findings: dict[str, Any] | None
    provenance: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # a disagreement's differences

    @property
    def settled(self) -> bool:
        return self.status in ("adjudicated", "agreed", "single")


def _names(session: Session) -> dict[int, str]:
    return dict(session.execute(select(Account.id, Account.username)).all())


def _reference_rows(session: Session, row: Study) -> list[ExpertReference]:
    items = _annotation_items(session, row.id)
    adjudications = list(
        session.scalars(
            select(StudyItem).where(
                StudyItem.study_id == row.id, StudyItem.kind == ADJUDICATION_KIND
            )
        )
    )
    by_item = annotations_of_items(session, [i.id for i in items + adjudications])
    settled_by: dict[int, Annotation] = {}
    for adjudication in adjudications:
        current = current_annotations(by_item.get(adjudication.id, []))
        if current:
            settled_by[adjudication.adjudicates_id] = current[-1]
    names = _names(session)
    case_keys = dict(
        session.execute(
            select(Case.id, Case.case_key).where(Case.id.in_([i.case_id for i in items]))
        ).all()
    )
    rule = AnnotationRule()
    out = []
    for item in items:
        chosen = per_annotator(by_item.get(item.id, []))
        common = {
            "study": row.name,
            "study_config_hash": row.config_hash,
            "item": item.id,
            "annotations": [a.id for a in chosen],
            "annotators": [names.get(a.rater_id, "?") for a in chosen],
        }
        key = case_keys[item.case_id]
        settled = settled_by.get(item.id)
        if settled is not None:
            provenance = {
                **common,
                "annotation": settled.id,
                "source": "adjudicated",
                "adjudicator": names.get(settled.rater_id, "?"),
                "settles": [a.id for a in chosen if a.id < settled.id],
                "submitted_at": iso(settled.submitted_at),
            }
            out.append(
                ExpertReference(
                    item.case_id,
                    key,
                    "adjudicated",
                    settled.report,
                    dict(settled.findings),
                    provenance,
                )
            )
            continue
        if len(chosen) < item.overlap:
            out.append(ExpertReference(item.case_id, key, "pending", None, None, common))
            continue
        reasons = _reasons(chosen, rule) if len(chosen) >= 2 else []
        if reasons:
            out.append(
                ExpertReference(item.case_id, key, "disagreement", None, None, common, reasons)
            )
            continue
        first = chosen[0]
        provenance = {
            **common,
            "annotation": first.id,
            "source": first.source,
            "submitted_at": iso(first.submitted_at),
        }
        status = "agreed" if len(chosen) >= 2 else "single"
        out.append(
            ExpertReference(
                item.case_id, key, status, first.report, dict(first.findings), provenance
            )
        )
    return out


def expert_references(store: Store, study: int | str) -> list[ExpertReference]:
    """Every case of an annotation study with its expert reference: the adjudicated
    annotation, else the agreed one (the first annotator's text, both annotators' findings
    the same on every compared field), else a single annotation where the overlap is 1;
    a case in disagreement or not yet annotated is listed with that status, never dropped."""
    with store.session() as session:
        row = _annotation_study(session, study)
        return _reference_rows(session, row)


@dataclass(frozen=True)
class ReferencesWritten:
    benchmark: str
    split: str
    written: int
    left_out: dict[str, int]  # status -> cases without a settled reference

    def summary(self) -> str:
        left = ", ".join(f"{n} {status}" for status, n in sorted(self.left_out.items()) if n)
        return (
            f"Wrote {self.written} expert references to {self.benchmark}/{self.split}"
            + (f"; left out: {left}" if left else "")
            + "."
        )


EXPERT_LOADER = "expert-references"


def write_expert_references(
    store: Store,
    study: int | str,
    benchmark: str,
    split: str = "test",
    *,
    actor_id: int | None = None,
) -> ReferencesWritten:
    """Copy each settled case into benchmark `benchmark` (created with loader
    'expert-references' on first use), split `split`, with the expert's report as its
    reference and the expert's findings as its ground truth; the study's own benchmark is
    left as it is (its reports' cache keys depend on its references). A case already there
    is updated; one from another source benchmark is refused."""
    from studies.store.audit import record

    name = benchmark.strip()
    if not name:
        raise StudyError("benchmark: name the benchmark the expert references go to")
    with store.session() as session:
        row = _annotation_study(session, study)
        references = _reference_rows(session, row)
        source_id = (row.config.get("benchmark") or {}).get("id")
        source = session.get(Benchmark, source_id)
        if source is not None and source.name == name:
            raise StudyError(
                f"benchmark: {name!r} is the study's own benchmark; write the expert "
                "references to a benchmark of their own (its reports' cache depends on the "
                "references it has)"
            )
        target = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if target is None:
            target = Benchmark(
                name=name,
                loader=EXPERT_LOADER,
                root=source.root,
                task=source.task,
                synthetic=source.synthetic,
                description=f"Expert references from annotation study {row.name!r} "
                f"(cases of {source.name}). {RESEARCH_NOTICE}",
                options={"source_benchmark": source.name, "studies": [row.name]},
            )
            session.add(target)
            session.flush()
        elif target.loader != EXPERT_LOADER or target.root != source.root:
            raise StudyError(
                f"benchmark: {name!r} exists and holds other cases (loader "
                f"{target.loader!r}); choose another name"
            )
        else:
            studies_named = list((target.options or {}).get("studies") or [])
            if row.name not in studies_named:
                target.options = {**(target.options or {}), "studies": [*studies_named, row.name]}
        written = 0
        for reference in references:
            if not reference.settled:
                continue
            case = session.get(Case, reference.case_id)
            meta = {
                **(case.meta or {}),
                "expert_reference": reference.provenance,
                "source_case_id": case.id,
            }
            payload = {
                "split": split,
                "modality": case.modality,
                "media": case.media,
                "references": [reference.report],
                "question": case.question,
                "findings": reference.findings,
                "meta": meta,
            }
            digest = hashlib.sha256(
                json.dumps(payload, sort_keys=True, default=str).encode()
            ).hexdigest()
            copy = session.scalar(
                select(Case).where(Case.benchmark_id == target.id, Case.case_key == case.case_key)
            )
            if copy is None:
                copy = Case(benchmark_id=target.id, case_key=case.case_key)
                session.add(copy)
            copy.split = split
            copy.modality = case.modality
            copy.media = list(case.media or [])
            copy.references = [reference.report]
            copy.question = case.question
            copy.findings = reference.findings
            copy.meta = meta
            copy.content_hash = digest
            written += 1
        left_out = Counter(r.status for r in references if not r.settled)
        record(
            session,
            actor_id,
            "annotation.references",
            "benchmark",
            target.id,
            {"study": row.name, "split": split, "written": written, "left_out": dict(left_out)},
        )
        return ReferencesWritten(name, split, written, dict(left_out))


# --- validating the extractor -------------------------------------------------------------


@dataclass(frozen=True)
class FieldAccuracy:
    field: str
    level: str  # case | lesion
    n: int  # cases, or expert lesions (lesions) / paired lesions stating the field
    n_cases: int
    correct: int
    accuracy: float
    wilson_low: float  # lesion fields: cluster-aware (cases as clusters)
    wilson_high: float
    cp_low: float  # Clopper-Pearson, units independent
    cp_high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ExtractorValidation:
    study: str
    study_config_hash: str | None
    n_references: int
    left_out: dict[str, int]
    fields: list[FieldAccuracy]
    synthetic: str  # the synthetic label ("" for real cases)

    def footer(self) -> str:
        left = ", ".join(f"{n} {s}" for s, n in sorted(self.left_out.items()) if n) or "none"
        label = " SYNTHETIC cases." if self.synthetic else ""
        return (
            f"Extractor (findings schema {FINDINGS_SCHEMA_VERSION}) against {self.n_references} "
            f"expert references of study {self.study} (config {(self.study_config_hash or '')[:12]}"
            f"); cases without a settled reference left out: {left}. 95% intervals: Wilson "
            "(lesion fields: cases as clusters, effective sample size, t on effective "
            "clusters - 1) and Clopper-Pearson (units independent). Lesions paired as the "
            f"clinical score pairs them; a field the expert left empty is not scored on "
            f"lesions.{label} {RESEARCH_NOTICE}"
        )

    def rows(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.fields]

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "study_config_hash": self.study_config_hash,
            "n_references": self.n_references,
            "left_out": self.left_out,
            "synthetic": self.synthetic,
            "fields": self.rows(),
            "footer": self.footer(),
        }

    def text(self) -> str:
        lines = [f"{'field':<20} {'level':<7} {'n':>5} {'accuracy':>9}  Wilson 95%      CP 95%"]
        for f in self.fields:
            lines.append(
                f"{f.field:<20} {f.level:<7} {f.n:>5} {_pct(f.accuracy):>9}  "
                f"{_span(f.wilson_low, f.wilson_high):<15} {_span(f.cp_low, f.cp_high)}"
            )
        return "\n".join([*lines, "", self.footer()])

    def csv(self) -> str:
        names = list(FieldAccuracy.__dataclass_fields__)
        footer = self.footer()
        rows = [{**row, "footer": footer} for row in self.rows()]
        return export_text(rows, [*names, "footer"], "csv")


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f}%"


def _span(low: float, high: float) -> str:
    return "-" if low != low or high != high else f"{_pct(low)}-{_pct(high)}"


def _accuracy(
    name: str, level: str, correct: list[bool], cases: list[int], clustered: bool
) -> FieldAccuracy:
    from studies.reader_stats.pairwise import (
        clopper_pearson_interval,
        design_effect,
        wilson_interval,
    )

    n = len(correct)
    k = int(sum(correct))
    if clustered and n:
        # Cases as clusters: the case term of the two-way sum with each lesion its own
        # "rater" (that term and the cell term cancel).
        deff, df = design_effect(np.asarray(correct, float), np.asarray(cases), np.arange(n))
        low, high = wilson_interval(k / deff, n / deff, df=df)
    else:
        low, high = wilson_interval(k, n)
    cp_low, cp_high = clopper_pearson_interval(k, n)
    return FieldAccuracy(
        field=name,
        level=level,
        n=n,
        n_cases=len(set(cases)),
        correct=k,
        accuracy=k / n if n else float("nan"),
        wilson_low=float(low),
        wilson_high=float(high),
        cp_low=float(cp_low),
        cp_high=float(cp_high),
    )


def compare_with_extractor(
    references: list[tuple[int, str, dict[str, Any]]],
) -> list[FieldAccuracy]:
    """Per-field accuracy of the extractor on (case id, expert report, expert findings):
    case fields over cases (equal values, both empty counts as equal); "lesions" over the
    expert's lesions (found: paired with an extracted lesion); each lesion field over the
    paired lesions for which the expert gave a value."""
    case_hits: dict[str, list[bool]] = defaultdict(list)
    case_ids: list[int] = []
    lesion_hits: dict[str, list[bool]] = defaultdict(list)
    lesion_cases: dict[str, list[int]] = defaultdict(list)
    for case_id, report, expert in references:
        predicted = extract_findings(report)
        case_ids.append(case_id)
        for key in CASE_KEYS:
            case_hits[key].append(_case_value(predicted, key) == _case_value(expert, key))
        gold = expert.get("lesions") or []
        found = predicted.get("lesions") or []
        pairs = match_lesions(found, gold)
        paired = {j: i for i, j in pairs}
        for j in range(len(gold)):
            lesion_hits["lesions"].append(j in paired)
            lesion_cases["lesions"].append(case_id)
        for i, j in pairs:
            for key in COMPARED_LESION_FIELDS:
                if gold[j].get(key) is None:
                    continue
                lesion_hits[key].append(found[i].get(key) == gold[j].get(key))
                lesion_cases[key].append(case_id)
    out = [_accuracy(key, "case", case_hits[key], case_ids, False) for key in CASE_KEYS]
    for key in ("lesions", *COMPARED_LESION_FIELDS):
        out.append(_accuracy(key, "lesion", lesion_hits[key], lesion_cases[key], True))
    return out


def validate_extractor(store: Store, study: int | str) -> ExtractorValidation:
    """The clinical extractor run on each expert reference report, against the expert's
    own structured findings: accuracy per field with Wilson and Clopper-Pearson intervals."""
    with store.session() as session:
        row = _annotation_study(session, study)
        references = _reference_rows(session, row)
        synthetic = _synthetic(session, row)
        name, config_hash = row.name, row.config_hash
    settled = [(r.case_id, r.report, r.findings) for r in references if r.settled]
    if not settled:
        raise StudyError(
            f"study {name!r} has no settled expert reference yet (annotate, then adjudicate "
            "the disagreements)"
        )
    return ExtractorValidation(
        study=name,
        study_config_hash=config_hash,
        n_references=len(settled),
        left_out=dict(Counter(r.status for r in references if not r.settled)),
        fields=compare_with_extractor(settled),
        synthetic=synthetic,
    )


def _synthetic(session: Session, row: Study) -> str:
    return synthetic_kind(cases=study_cases_synthetic(session, row.id), judgments=False)


# --- on-policy preference pairs -----------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    """A clinician's correction of a model report: the raw material of an on-policy pair."""

    annotation_id: int
    case_id: int
    case_key: str
    annotator: str
    system: str
    generation_id: int
    model_report: str
    corrected_report: str


def corrections(store: Store, study: int | str) -> list[Correction]:
    """Every annotator's current correction of the model's report (source "corrected"),
    one per annotator and case, in the order given."""
    with store.session() as session:
        row = _annotation_study(session, study)
        items = _annotation_items(session, row.id)
        by_item = annotations_of_items(session, [i.id for i in items])
        names = _names(session)
        systems = dict(session.execute(select(System.id, System.name)).all())
        keys = dict(
            session.execute(
                select(Case.id, Case.case_key).where(Case.id.in_([i.case_id for i in items]))
            ).all()
        )
        out = []
        for item in items:
            generation = session.get(Generation, item.generation_a_id)
            for annotation in per_annotator(by_item.get(item.id, [])):
                if annotation.source != "corrected":
                    continue
                out.append(
                    Correction(
                        annotation_id=annotation.id,
                        case_id=item.case_id,
                        case_key=keys[item.case_id],
                        annotator=names.get(annotation.rater_id, "?"),
                        system=systems.get(item.system_a_id, "?"),
                        generation_id=generation.id,
                        model_report=generation.text,
                        corrected_report=annotation.report,
                    )
                )
        return out


def on_policy_harvest(store: Store, study: int | str, policy: Any = None) -> Any:
    """The corrections of a study as a preference harvest (studies.preferences.harvest's
    HarvestResult: export it with `export_preferences`, train it like harvested pairs)."""
    from studies.preferences.harvest import harvest_corrections

    with store.session() as session:
        name = find_study(session, study).name
    return harvest_corrections(store, name, corrections(store, study), policy)


def on_policy_pairs(store: Store, study: int | str, policy: Any = None) -> list[dict[str, Any]]:
    """Each correction as a preference record in the harvest's format (prompt, chosen,
    rejected, images as absolute paths, provenance), ready for TRL's DPOTrainer."""
    from studies.preferences.harvest import preference_records

    return preference_records(on_policy_harvest(store, study, policy))


# --- export -------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "study",
    "annotation_id",
    "annotator",
    "case",
    "item",
    "item_kind",
    "adjudicates_item",
    "settles",
    "source",
    "system",
    "generation_id",
    "report",
    "findings",
    *ANSWER_FIELDS,
    *PROVENANCE_FIELDS,
)


def annotation_rows(store: Store, study: int | str) -> list[dict[str, Any]]:
    """Every annotation of a study (corrections and superseded rows included, flagged by
    `superseded`), with annotator, case, the model's system and generation, what an
    adjudicated annotation settles, and the design as run (config hash and amendments)."""
    with store.session() as session:
        row = _annotation_study(session, study)
        items = {
            i.id: i for i in session.scalars(select(StudyItem).where(StudyItem.study_id == row.id))
        }
        by_item = annotations_of_items(session, list(items))
        names = _names(session)
        systems = dict(session.execute(select(System.id, System.name)).all())
        keys = dict(
            session.execute(
                select(Case.id, Case.case_key).where(
                    Case.id.in_({i.case_id for i in items.values()})
                )
            ).all()
        )
        assignments = {
            a.id: a
            for a in session.scalars(select(Assignment).where(Assignment.study_id == row.id))
        }
        synthetic = _synthetic(session, row)
        provenance = study_provenance(
            session, row, f"{EXPORT_VERSION}; all annotations incl. corrections"
        )
        out = []
        for item_id in sorted(by_item):
            item = items[item_id]
            rows = by_item[item_id]
            superseded = {r.supersedes_id for r in rows if r.supersedes_id is not None}
            settled_from = (
                annotations_of_items(session, [item.adjudicates_id]).get(item.adjudicates_id, [])
                if item.kind == ADJUDICATION_KIND
                else []
            )
            for annotation in rows:
                settles = ""
                if annotation.source == "adjudicated":
                    settles = " ".join(
                        str(a.id)
                        for a in per_annotator([a for a in settled_from if a.id < annotation.id])
                    )
                out.append(
                    {
                        "study": row.name,
                        "annotation_id": annotation.id,
                        "annotator": names.get(annotation.rater_id, "?"),
                        "case": keys.get(item.case_id, ""),
                        "item": item.id,
                        "item_kind": item.kind,
                        "adjudicates_item": item.adjudicates_id or "",
                        "settles": settles,
                        "source": annotation.source,
                        "system": systems.get(item.system_a_id, ""),
                        "generation_id": item.generation_a_id,
                        "report": annotation.report,
                        "findings": annotation.findings,
                        **answer_columns(
                            annotation,
                            assignments[annotation.assignment_id],
                            superseded=annotation.id in superseded,
                            synthetic=synthetic,
                        ),
                        **provenance,
                    }
                )
        return sorted(out, key=lambda r: r["annotation_id"])


def export_annotations(store: Store, study: int | str, fmt: str = "csv") -> str:
    """The annotations of a study as CSV (findings as JSON text) or JSONL (as an object)."""
    check_format(fmt)
    rows = annotation_rows(store, study)
    if fmt == "csv":
        rows = [{**r, "findings": json.dumps(r["findings"], sort_keys=True)} for r in rows]
    return export_text(rows, list(EXPORT_FIELDS), fmt)
