"""Expert annotation studies on SQLite and PostgreSQL: two annotators correct the model's
report and findings of each SYNTHETIC case, cases where they differ go to a senior annotator,
the settled annotations become expert references (of a benchmark of their own) and the
validation set of the clinical extractor, and each correction an on-policy preference pair.
(392b82e's parent had no annotation study: no kind, no tasks, no references.)"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from scipy import stats
from sqlalchemy import func, select
from support.reader_world import build_world, case_key_of
from support.started_study import start_with

from studies.readers import accounts
from studies.readers.adjudication import adjudication_queue, queue_adjudication
from studies.readers.annotation import (
    FindingsError,
    annotation_studies,
    check_findings,
    correct_annotation,
    findings_form,
    next_annotation,
    submit_annotation,
)
from studies.readers.annotation_results import (
    AnnotationRule,
    annotation_agreement,
    compare_with_extractor,
    corrections,
    expert_references,
    export_annotations,
    on_policy_pairs,
    queue_annotation_adjudication,
    validate_extractor,
    write_expert_references,
)
from studies.readers.design import StudyDesign, StudyError, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.writes import AccessDenied, RatingError
from studies.store.db import Store
from studies.store.schema import (
    Annotation,
    AuditEvent,
    Benchmark,
    Case,
)


def _annotation_study(store: Store, tmp_path: Path, *, n_cases: int = 4, overlap: int = 2):
    world = build_world(store, tmp_path / "bench", n_cases=n_cases)
    annotators = [
        accounts.create_account(store, f"ann{i}", "rater", "rater-password-1") for i in range(2)
    ]
    design = StudyDesign(
        name="Expert annotation",
        benchmark=world.benchmark,
        systems=[world.systems[0]],
        kind="annotation",
        overlap=overlap,
        seed=5,
    )
    study_id = start_with(store, design, annotators)
    return study_id, annotators, world


def _annotate(store: Store, rater, study_id: int, change) -> dict[str, int]:  # noqa: ANN001
    """Submit every task of `rater`: the draft report and findings, as `change` edits them
    (case key, findings) -> findings. Returns case key -> annotation id."""
    ids = {}
    while (task := next_annotation(store, rater.id, study_id)) is not None:
        case = case_key_of(store, task.token)
        findings = change(case, json.loads(json.dumps(task.draft_findings)))
        result = submit_annotation(
            store,
            rater.id,
            task.token,
            f"{task.token}:1",
            task.draft_report.replace("(Synthetic", "Checked. (Synthetic"),
            findings,
            12.5,
        )
        assert result.created and not result.conflict
        ids[case] = result.annotation_id
    return ids


def _second_reader(case: str, findings: dict) -> dict:
    """ann1 differs from the model's findings on two cases: BBPS on case 1, a location on 2."""
    if case == "case-0001":
        findings["bbps_total"] = 7
    if case == "case-0002":
        lesion = findings["lesions"][0]
        lesion["location"] = "cecum" if lesion["location"] != "cecum" else "rectum"
    return findings


def test_design_of_an_annotation_study_is_checked() -> None:
    base = {"name": "A", "benchmark": "b", "kind": "annotation"}
    with pytest.raises(StudyError, match="kind: use one of comparison, annotation"):
        StudyDesign(name="A", benchmark="b", systems=["x", "y"], kind="survey").check()
    with pytest.raises(StudyError, match="exactly one system"):
        StudyDesign(**base, systems=["x", "y"]).check()
    with pytest.raises(StudyError, match="exactly one system"):
        StudyDesign(**base, systems=[]).check()
    with pytest.raises(StudyError, match="annotation_source"):
        StudyDesign(**base, systems=["x"], annotation_source="dictated").check()
    with pytest.raises(StudyError, match="overlap"):
        StudyDesign(**base, systems=["x"], overlap=3).check()
    from studies.readers.design import GoldSpec

    with pytest.raises(StudyError, match="no gold or training items"):
        StudyDesign(**base, systems=["x"], gold=[GoldSpec("c", "x", "y")]).check()
    design = StudyDesign(**base, systems=["x"])
    design.check()
    assert design.pairs() == [("x", "x")] and design.overlap == 2
    # The kind is part of the frozen (hashed) design.
    assert StudyDesign.from_dict(design.to_dict()).kind == "annotation"


def test_findings_form_comes_from_the_vocabulary() -> None:
    from metrics.clinical.vocab import LOCATIONS, RESECTIONS

    form = findings_form()
    assert [f.key for f in form.case_fields] == [
        "no_polyps",
        "polyp_count",
        "bbps_total",
        "resection",
        "surveillance_years",
    ]
    assert form.field("location").choices == LOCATIONS and form.field("location").per_lesion
    assert form.field("resection").kind == "multi" and form.field("resection").choices == RESECTIONS
    bbps = form.field("bbps_total")
    assert (bbps.kind, bbps.minimum, bbps.maximum, bbps.integer) == ("number", 0, 9, True)
    assert {f.key for f in form.lesion_fields} == {
        "size_mm",
        "location",
        "paris",
        "lst",
        "nice",
        "jnet",
        "kudo",
        "histology",
        "dysplasia",
    }


def test_check_findings_names_every_bad_field() -> None:
    good = check_findings(
        {
            "no_polyps": None,
            "polyp_count": None,
            "bbps_total": "8",
            "resection": ["cold_snare"],
            "surveillance_years": None,
            "lesions": [{"size_mm": 6, "location": "Sigmoid colon", "histology": "TA"}],
        }
    )
    lesion = good["lesions"][0]
    assert (lesion["location"], lesion["histology"], lesion["size_class"]) == (
        "sigmoid",
        "tubular_adenoma",
        "small",
    )
    assert (good["no_polyps"], good["polyp_count"], good["bbps_total"]) == (False, 1, 8)
    with pytest.raises(FindingsError) as refused:
        check_findings(
            {
                "bbps_total": 12,
                "resection": ["laser"],
                "lesions": [{"location": "rectum"}, {"location": "colon", "size_mm": "big"}],
            }
        )
    problems = refused.value.problems
    assert any(p.startswith("lesion 2, location: ") and "'colon'" in p for p in problems)
    assert any(p.startswith("lesion 2, size_mm: ") for p in problems)
    assert any(p.startswith("bbps_total: 12 is outside 0-9") for p in problems)
    assert any(p.startswith("resection: 'laser' is not one of") for p in problems)
    assert isinstance(refused.value, RatingError) and "lesion 2, location" in str(refused.value)
    with pytest.raises(FindingsError, match="untick 'No polyps'"):
        check_findings({"no_polyps": True, "lesions": [{"location": "rectum"}]})
    with pytest.raises(FindingsError, match="polyp_count: 1 is fewer than the 2 lesions"):
        check_findings({"polyp_count": 1, "lesions": [{}, {}]})


def test_bad_submissions_are_refused_and_nothing_is_written(store: Store, tmp_path: Path) -> None:
    study_id, (ann0, ann1), _ = _annotation_study(store, tmp_path, n_cases=2)
    task = next_annotation(store, ann0.id, study_id)
    with pytest.raises(FindingsError) as refused:
        submit_annotation(
            store, ann0.id, task.token, "k1", "  ", {"lesions": [{}, {"location": "colon"}]}
        )
    # Every problem at once, the report's first.
    assert refused.value.problems[0].startswith("report: ")
    assert refused.value.problems[1].startswith("lesion 2, location: ")
    with pytest.raises(AccessDenied):
        submit_annotation(store, ann1.id, task.token, "k2", "A report.", {"lesions": []})
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Annotation)) == 0
        audited = select(func.count()).where(AuditEvent.entity == "annotation")
        assert session.scalar(audited) == 0
    # Still the same task: nothing was recorded.
    assert next_annotation(store, ann0.id, study_id).token == task.token


def test_submits_are_idempotent_and_a_conflict_is_said(store: Store, tmp_path: Path) -> None:
    study_id, (ann0, _), _ = _annotation_study(store, tmp_path, n_cases=2)
    task = next_annotation(store, ann0.id, study_id)
    assert task.source == "corrected" and not task.adjudication and task.synthetic
    assert task.draft_report and task.draft_findings["lesions"]  # the model's, extracted
    assert (task.position, task.done, task.total) == (task.position, 0, 2)
    findings = task.draft_findings
    first = submit_annotation(store, ann0.id, task.token, "key-1", "Report one.", findings)
    again = submit_annotation(store, ann0.id, task.token, "key-1", "Report one.", findings)
    assert first.created and not again.created and not again.conflict
    assert again.annotation_id == first.annotation_id
    # Another tab sends something else for the same task: nothing written, said.
    other = submit_annotation(store, ann0.id, task.token, "key-2", "Report two.", findings)
    assert not other.created and other.conflict and other.stored.report == "Report one."
    # A correction is a new row superseding the first; the same correction twice writes once.
    fixed = correct_annotation(store, ann0.id, task.token, "key-3", "Report two.", findings)
    twice = correct_annotation(store, ann0.id, task.token, "key-4", "Report two.", findings)
    assert fixed.created and not twice.created and not twice.conflict
    with store.session() as session:
        rows = session.scalars(select(Annotation).order_by(Annotation.id)).all()
    assert [(r.report, r.supersedes_id) for r in rows] == [
        ("Report one.", None),
        ("Report two.", first.annotation_id),
    ]
    following = next_annotation(store, ann0.id, study_id)
    assert following.token != task.token and following.done == 1


def test_double_annotation_adjudication_references_and_export(store: Store, tmp_path: Path) -> None:
    study_id, (ann0, ann1), world = _annotation_study(store, tmp_path)
    senior = accounts.create_account(store, "senior", "rater", "senior-password-1")
    assert annotation_studies(store, ann0.id) == [study_id]
    first = _annotate(store, ann0, study_id, lambda case, f: f)
    second = _annotate(store, ann1, study_id, _second_reader)
    assert set(first) == set(second) == set(world.case_keys)

    # Agreement per field, by hand: 3 of 4 cases agree on BBPS (None x3, None/7 once).
    agreement = {a.field: a for a in annotation_agreement(store, study_id, n_resamples=200)}
    bbps = agreement["bbps_total"]
    assert (bbps.n, bbps.agreement) == (4, 0.75)
    assert bbps.cohen_kappa == pytest.approx(0.0)  # po 0.75 = pe 0.75
    assert bbps.fleiss_kappa == pytest.approx((0.75 - 50 / 64) / (1 - 50 / 64))
    assert bbps.gwet_ac1 == pytest.approx((0.75 - 14 / 64) / (1 - 14 / 64))
    assert agreement["location"].n == 4 and agreement["location"].agreement == 0.75
    assert agreement["lesions"].agreement == 1.0 and agreement["no_polyps"].agreement == 1.0
    low, high = stats.binomtest(3, 4).proportion_ci(method="wilson")
    assert (bbps.agreement_low, bbps.agreement_high) == pytest.approx((low, high))

    references = {r.case_key: r for r in expert_references(store, study_id)}
    disagreeing = {k for k, r in references.items() if r.status == "disagreement"}
    assert disagreeing == {"case-0001", "case-0002"}
    assert any("bbps_total" in reason for reason in references["case-0001"].reasons)
    assert all(r.status == "agreed" for k, r in references.items() if k not in disagreeing)
    # Before adjudication, the disagreements are listed, not dropped.
    assert validate_extractor(store, study_id).left_out == {"disagreement": 2}

    with pytest.raises(StudyError, match="annotation study"):
        queue_adjudication(store, study_id, "senior")
    change = queue_annotation_adjudication(store, study_id, "senior")
    assert change.added == 2
    assert queue_annotation_adjudication(store, study_id, "senior").added == 0
    assert [(q.adjudicator, q.queued, q.done) for q in adjudication_queue(store, study_id)] == [
        ("senior", 2, 0)
    ]
    settled = {}
    while (task := next_annotation(store, senior.id, study_id)) is not None:
        assert task.adjudication and task.source == "adjudicated"
        assert len(task.candidates) == 2
        shown = json.dumps([task.draft_report, task.candidates], default=str)
        assert not any(name in shown for name in world.systems)  # blinded
        report, findings = task.candidates[0]
        result = submit_annotation(
            store, senior.id, task.token, f"{task.token}:s", "Settled. " + report, findings
        )
        settled[case_key_of(store, task.token)] = result.annotation_id
    assert set(settled) == disagreeing
    assert adjudication_queue(store, study_id)[0].done == 2

    references = {r.case_key: r for r in expert_references(store, study_id)}
    for case in disagreeing:
        reference = references[case]
        assert reference.status == "adjudicated" and reference.report.startswith("Settled. ")
        assert reference.provenance["adjudicator"] == "senior"
        assert reference.provenance["settles"] == sorted([first[case], second[case]])
    agreed = references["case-0000"]
    assert agreed.provenance["annotations"] == [first["case-0000"], second["case-0000"]]

    # The export: every annotation with provenance, the adjudication amendment.
    rows = list(csv.DictReader(io.StringIO(export_annotations(store, study_id))))
    assert len(rows) == 8 + 2
    adjudicated = [r for r in rows if r["source"] == "adjudicated"]
    assert {r["case"] for r in adjudicated} == disagreeing
    for row in adjudicated:
        assert row["settles"] == f"{first[row['case']]} {second[row['case']]}"
        assert row["annotator"] == "senior" and row["item_kind"] == "adjudication"
    assert {r["system"] for r in rows} == {world.systems[0]}
    assert "disagreements sent to adjudication: senior" in rows[0]["study_amendments"]
    assert rows[0]["synthetic"] == "cases" and "not a medical device" in rows[0]["export"]

    # Expert references as a benchmark of their own; the study's benchmark is left as it was.
    with store.session() as session:
        before = {c.case_key: c.references for c in session.scalars(select(Case))}
    with pytest.raises(StudyError, match="study's own benchmark"):
        write_expert_references(store, study_id, world.benchmark)
    written = write_expert_references(store, study_id, "expert-refs", "test")
    assert (written.written, written.left_out) == (4, {})
    assert write_expert_references(store, study_id, "expert-refs").written == 4  # updated
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == "expert-refs"))
        own = select(Case).where(Case.benchmark_id == bench.id)
        copies = {c.case_key: c for c in session.scalars(own)}
        after = {
            c.case_key: c.references
            for c in session.scalars(select(Case).where(Case.benchmark_id != bench.id))
        }
        assert bench.synthetic and bench.loader == "expert-references"
        assert set(copies) == set(world.case_keys)
        for case, reference in references.items():
            assert copies[case].references == [reference.report]
            assert copies[case].findings == reference.findings
            assert (
                copies[case].meta["expert_reference"]["annotation"]
                == (reference.provenance["annotation"])
            )
    assert after == before

    validation = validate_extractor(store, study_id)
    assert validation.n_references == 4 and validation.left_out == {}
    fields = {f.field: f for f in validation.fields}
    assert fields["no_polyps"].n == 4 and fields["lesions"].n == 4
    assert "Research software, not a medical device" in validation.footer()
    assert "SYNTHETIC" in validation.footer()

    # On-policy pairs: each correction, chosen, against the model's report, rejected.
    found = corrections(store, study_id)
    assert len(found) == 8 and {c.annotator for c in found} == {"ann0", "ann1"}
    pairs = on_policy_pairs(store, study_id)
    assert pairs and all(p["provenance"]["source"] == "correction" for p in pairs)
    by_annotation = {c.annotation_id: c for c in found}
    for pair in pairs:
        detail = pair["provenance"]["detail"]
        correction = by_annotation[detail["annotation_id"]]
        assert pair["chosen"][0]["content"][0]["text"] == correction.corrected_report
        assert pair["rejected"][0]["content"][0]["text"] == correction.model_report
        assert detail["generation_id"] == correction.generation_id
        assert pair["provenance"]["rejected_system"] == world.systems[0]
        assert Path(pair["images"][0]).is_file()


def test_rule_and_comparison_studies_are_refused(store: Store, tmp_path: Path) -> None:
    study_id, (ann0, _), world = _annotation_study(store, tmp_path, n_cases=2)
    with pytest.raises(StudyError, match="no field 'colour'"):
        queue_annotation_adjudication(store, study_id, "ann0", AnnotationRule(fields=("colour",)))
    other = StudyDesign(name="Pairs", benchmark=world.benchmark, systems=world.systems[:2])
    other_id = create_study(store, other)
    enrol_rater(store, other_id, "ann0")
    with pytest.raises(RatingError, match="not an annotation study"):
        next_annotation(store, ann0.id, other_id)
    with pytest.raises(StudyError, match="not an annotation study"):
        expert_references(store, other_id)


# --- the extractor against expert findings, checked by hand --------------------------------

REPORTS = [
    (
        "Findings: one 6 mm sessile (Paris 0-Is) polyp in the sigmoid colon, removed by cold "
        "snare. BBPS 8. Surveillance in 5 years.",
        {
            "bbps_total": 8,
            "resection": ["cold_snare"],
            "surveillance_years": 5,
            "lesions": [
                {"size_mm": 6, "location": "sigmoid", "paris": "0-Is", "histology": "hyperplastic"}
            ],
        },
    ),
    (
        "Normal colonoscopy, no polyps. BBPS 9.",
        {"no_polyps": True, "bbps_total": 7, "surveillance_years": 10, "lesions": []},
    ),
    (
        "Two polyps: a 4 mm polyp in the rectum and a 12 mm polyp in the cecum, tubular "
        "adenoma. Repeat in 3 years.",
        {
            "polyp_count": 3,
            "surveillance_years": 3,
            "lesions": [
                {"size_mm": 4, "location": "rectum"},
                {"size_mm": 12, "location": "cecum", "histology": "tubular_adenoma"},
                {"size_mm": 5, "location": "transverse"},
            ],
        },
    ),
]


def _wilson(k: float, n: float, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _clopper_pearson(k: int, n: int) -> tuple[float, float]:
    low = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    return low, high


def test_extractor_validation_numbers_by_hand() -> None:
    references = [(i, text, check_findings(f)) for i, (text, f) in enumerate(REPORTS)]
    fields = {f.field: f for f in compare_with_extractor(references)}
    # Worked out by reading the three reports: (correct, n).
    expected = {
        "no_polyps": (3, 3),
        "polyp_count": (2, 3),  # the third case's third polyp is not in its report
        "bbps_total": (2, 3),  # 9 written, 7 by the expert
        "resection": (3, 3),
        "surveillance_years": (2, 3),  # none written, 10 by the expert
        "lesions": (3, 4),  # the unwritten transverse polyp is missed
        "location": (3, 3),
        "size_class": (3, 3),
        "paris": (1, 1),
        "histology": (1, 2),  # the hyperplastic histology is not written
        "nice": (0, 0),
    }
    z = stats.norm.ppf(0.975)
    for name, (k, n) in expected.items():
        found = fields[name]
        assert (found.correct, found.n) == (k, n), name
        if n == 0:
            assert math.isnan(found.accuracy)
            continue
        assert found.accuracy == pytest.approx(k / n)
        assert (found.cp_low, found.cp_high) == pytest.approx(_clopper_pearson(k, n))
        if found.level == "case":
            assert (found.wilson_low, found.wilson_high) == pytest.approx(_wilson(k, n, z))
    # "lesions", clustered by case: found [1], [1, 1, 0] in two cases. Centred values
    # 0.25, 0.25, 0.25, -0.75; case totals 0.25 and -0.25: variance 0.125 against the
    # binomial 4 * 0.75 * 0.25 = 0.75, a design effect of 1/6 as estimated, floored at one
    # (pairwise.design_effect): the plain Wilson interval, not one as narrow as 24
    # independent lesions would give.
    lesions = fields["lesions"]
    assert (lesions.wilson_low, lesions.wilson_high) == pytest.approx(_wilson(3, 4, z))
    assert lesions.n_cases == 2


def test_two_tabs_submitting_at_once_keep_one_annotation(store: Store, tmp_path: Path) -> None:
    import threading

    study_id, (ann0, _), _ = _annotation_study(store, tmp_path, n_cases=2)
    task = next_annotation(store, ann0.id, study_id)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def tab(number: int) -> None:
        barrier.wait()
        try:
            results.append(
                submit_annotation(
                    store,
                    ann0.id,
                    task.token,
                    f"tab-{number % 2}",  # two tabs, each submitting twice (a double click)
                    f"Report from tab {number % 2}.",
                    task.draft_findings,
                )
            )
        except Exception as exc:  # noqa: BLE001 - collected and shown below
            errors.append(exc)

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with store.session() as session:
        rows = session.scalars(select(Annotation)).all()
    # One annotation stands; every other submit wrote nothing, and the other tab's says so.
    assert len(rows) == 1 and sum(r.created for r in results) == 1
    stood = rows[0].report
    for result in results:
        assert result.annotation_id == rows[0].id
        if not result.created:
            assert result.stored.report == stood
    assert {r.conflict for r in results if not r.created} == {True, False}


def test_written_from_scratch_shows_no_model_report(store: Store, tmp_path: Path) -> None:
    world = build_world(store, tmp_path / "bench", n_cases=2)
    annotator = accounts.create_account(store, "ann0", "rater", "rater-password-1")
    design = StudyDesign(
        name="From scratch",
        benchmark=world.benchmark,
        systems=[world.systems[0]],
        kind="annotation",
        annotation_source="written",
        overlap=1,
    )
    study_id = create_study(store, design)
    enrol_rater(store, study_id, "ann0")
    start_study(store, study_id)
    task = next_annotation(store, annotator.id, study_id)
    assert (task.source, task.draft_report, task.draft_findings["lesions"]) == ("written", "", [])
    submit_annotation(store, annotator.id, task.token, "w1", "No polyps.", {"no_polyps": True})
    references = {r.status for r in expert_references(store, study_id)}
    assert references == {"single", "pending"}  # overlap 1: one annotation settles a case
    # Nothing was corrected, so there is no on-policy pair.
    assert corrections(store, study_id) == []
