"""Surveillance table rows, lesion matching, error taxonomy and the per-case clinical score."""

from __future__ import annotations

from typing import Any

import pytest

from metrics.clinical import (
    ERROR_KINDS,
    LEVEL_WEIGHTS,
    LEVELS,
    extract_findings,
    normalize_findings,
    score_clinical,
    score_findings,
    surveillance_interval,
)


def lesion(**attrs: Any) -> dict[str, Any]:
    return attrs


def findings(*lesions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "no_polyps": not lesions and extra.pop("no_polyps", False),
        "lesions": list(lesions),
        **extra,
    }


TA = "tubular_adenoma"
SSL = "sessile_serrated_lesion"


@pytest.mark.parametrize(
    ("case", "row", "years"),
    [
        (findings(no_polyps=True), "normal", 10),
        (findings(*[lesion(size_mm=3, histology="hyperplastic")] * 4), "hyperplastic_small", 10),
        (
            findings(lesion(size_mm=4, histology=TA), lesion(size_mm=6, histology=TA)),
            "adenoma_1_2_small",
            7,
        ),
        (findings(lesion(size_mm=5, histology=SSL)), "ssl_1_2_small", 5),
        (findings(*[lesion(size_mm=4, histology="adenoma")] * 3), "adenoma_or_ssl_3_4_small", 3),
        (findings(lesion(size_mm=12, histology="hyperplastic")), "hyperplastic_large", 3),
        (findings(*[lesion(size_mm=4, histology=TA)] * 6), "adenoma_or_ssl_5_10_small", 3),
        (findings(lesion(size_mm=12, histology=TA)), "advanced_adenoma", 3),
        (findings(lesion(size_mm=5, histology="tubulovillous_adenoma")), "advanced_adenoma", 3),
        (findings(lesion(size_mm=5, histology=TA, dysplasia="high_grade")), "advanced_adenoma", 3),
        (findings(lesion(size_mm=11, histology=SSL)), "advanced_serrated", 3),
        (
            findings(lesion(size_mm=4, histology="traditional_serrated_adenoma")),
            "advanced_serrated",
            3,
        ),
        (findings(*[lesion(size_mm=3, histology=TA)] * 11), "adenoma_or_ssl_gt10", 1),
        (findings(*[lesion(size_mm=3, histology=SSL)] * 4), "adenoma_or_ssl_3_4_small", 3),
        (findings(*[lesion(size_mm=3, histology=SSL)] * 7), "adenoma_or_ssl_5_10_small", 3),
        (
            findings(lesion(size_mm=25, histology=TA), resection=["piecemeal", "emr"]),
            "piecemeal_ge20",
            0.5,
        ),
    ],
)
def test_surveillance_rows(case: dict[str, Any], row: str, years: float) -> None:
    rec = surveillance_interval(case)
    assert rec.row == row
    assert rec.years == years
    assert row in rec.fired


def test_surveillance_takes_the_shortest_row_and_reports_all_that_fired() -> None:
    rec = surveillance_interval(
        findings(lesion(size_mm=4, histology=TA), lesion(size_mm=12, histology="hyperplastic"))
    )
    assert rec.row == "hyperplastic_large"
    assert set(rec.fired) == {"adenoma_1_2_small", "hyperplastic_large"}


def test_surveillance_without_histology_says_no_row_applies() -> None:
    rec = surveillance_interval(findings(lesion(size_mm=4)))
    assert rec.row is None and rec.years is None
    assert "no table row" in rec.description


def test_surveillance_from_extracted_text() -> None:
    text = "A 14 mm pedunculated polyp in the sigmoid. Pathology: tubulovillous adenoma."
    assert surveillance_interval(extract_findings(text)).row == "advanced_adenoma"


def test_identical_reports_score_one_without_errors() -> None:
    text = "A 5 mm sessile polyp in the cecum, NICE 2. Repeat colonoscopy in 7 years."
    result = score_findings(text, text)
    assert result.score == 1.0
    assert result.errors == []
    assert result.counts["location"] == [1, 1, 1]
    assert result.matched_findings == 1 + 5  # lesion + 4 attributes (size class, location,
    # paris, nice) + surveillance


def test_lesion_matching_follows_attributes_not_order() -> None:
    cand = "A 12 mm polyp in the sigmoid. A 4 mm polyp in the cecum."
    ref = "A 4 mm polyp in the cecum. A 12 mm polyp in the sigmoid."
    result = score_findings(cand, ref)
    assert result.pairs == [(0, 1), (1, 0)]
    assert result.errors == []


def test_hallucinated_and_missed_lesions() -> None:
    result = score_findings(
        "A 4 mm polyp in the cecum. A 6 mm polyp in the rectum.", "A 4 mm polyp in the cecum."
    )
    assert [e.kind for e in result.errors] == ["hallucinated_lesion"]
    # 3 matched findings; the invented lesion weighs its level (minor: a diminutive polyp of
    # unknown histology changes no table row) plus one per attribute it states (2).
    assert result.errors[0].level == "minor" and result.errors[0].weight == 3.0
    assert result.score == pytest.approx(3 / (3 + 3))
    result = score_findings(
        "A 4 mm polyp in the cecum.", "A 4 mm polyp in the cecum. A 6 mm polyp in the rectum."
    )
    assert [e.kind for e in result.errors] == ["missed_lesion"]


def test_attribute_errors_and_their_significance() -> None:
    ref = (
        "A 12 mm pedunculated polyp in the sigmoid, NICE 2, Kudo IIIL. Pathology: tubular adenoma."
    )
    cand = (
        "A 8 mm sessile polyp in the descending colon, NICE 1, Kudo IV. "
        "Pathology: hyperplastic polyp."
    )
    result = score_findings(cand, ref)
    kinds = {e.kind: e for e in result.errors}
    assert set(kinds) == {
        "wrong_location",
        "wrong_size_class",
        "wrong_morphology",
        "wrong_classification",
        "wrong_histology",
    }
    assert kinds["wrong_location"].significant is False  # neighbouring segments
    assert kinds["wrong_size_class"].significant is True  # crosses 10 mm
    assert kinds["wrong_morphology"].significant is False  # both polypoid
    assert kinds["wrong_histology"].expected == "tubular_adenoma"
    assert kinds["wrong_histology"].found == "hyperplastic"
    kudo = [e for e in result.errors if e.expected == "IIIL"]
    assert kudo and kudo[0].significant is False  # IIIL and IV are both adenoma patterns


def test_negation_error_both_ways() -> None:
    result = score_findings("No polyps.", "A 6 mm polyp in the rectum.")
    assert {e.kind for e in result.errors} == {"negation_error", "missed_lesion"}
    assert result.score == 0.0
    result = score_findings("A 6 mm polyp in the rectum.", "Normal colonoscopy.")
    assert {e.kind for e in result.errors} == {"negation_error", "hallucinated_lesion"}
    assert score_findings("No polyps seen.", "Normal colonoscopy.").score == 1.0


def test_wrong_surveillance_interval() -> None:
    result = score_findings(
        "No polyps. Repeat in 5 years.", "No polyps. Repeat colonoscopy in 10 years."
    )
    assert [e.kind for e in result.errors] == ["wrong_surveillance_interval"]
    assert result.errors[0].level == "surveillance"
    assert result.score == pytest.approx(1 / (1 + 3))


def test_generic_adenoma_agrees_with_subtype() -> None:
    result = score_findings("A 5 mm adenoma in the cecum.", "A 5 mm tubular adenoma in the cecum.")
    assert result.errors == []


def test_score_against_ground_truth_findings() -> None:
    truth = {
        "no_polyps": False,
        "polyp_count": 1,
        "lesions": [{"size_mm": 7, "location": "ascending", "paris": "0-Is", "histology": TA}],
        "bbps_total": 8,
        "resection": ["cold_snare"],
        "surveillance_years": None,
    }
    result = score_findings(
        "A 7 mm sessile tubular adenoma in the ascending colon, removed with cold snare.", truth
    )
    assert result.errors == []
    assert result.counts["size_class"] == [1, 1, 1]  # size class derived from size_mm


def test_normalize_findings_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"truth\.lesions\[0\]\.location"):
        normalize_findings({"lesions": [{"location": "stomach"}]}, where="truth")
    with pytest.raises(ValueError, match=r"lesions\[1\]\.size_mm"):
        normalize_findings({"lesions": [{}, {"size_mm": "big"}]})


def test_score_clinical_aggregates_micro_macro_and_errors() -> None:
    refs = ["A 5 mm polyp in the cecum.", "A 12 mm polyp in the rectum.", "No polyps."]
    cands = [
        "A 5 mm polyp in the cecum.",
        "A 12 mm polyp in the sigmoid.",
        "A 3 mm polyp in the rectum.",
    ]
    result = score_clinical(cands, refs)
    assert len(result.per_case) == 3
    assert result.attributes["location"]["precision"] == pytest.approx(1 / 3)
    assert result.attributes["location"]["recall"] == pytest.approx(1 / 2)
    assert result.attributes["size_class"]["f1"] == pytest.approx(0.8)
    assert result.error_counts["wrong_location"] == 1
    assert result.error_counts["hallucinated_lesion"] == 1
    assert set(result.error_counts) == set(ERROR_KINDS)
    assert 0.0 <= result.micro["f1"] <= 1.0
    assert result.corpus_score == pytest.approx(sum(result.scores()) / 3)
    assert "findings:v1" in result.signature
    with pytest.raises(ValueError, match="one each per case"):
        score_clinical(cands, refs[:2])


# --- no reward for silence, severity-weighted errors, detection and description apart ---

NORMAL = "Complete colonoscopy. No polyps seen. Repeat colonoscopy in 10 years."
ADENOMA_12 = (
    "A 12 mm sessile polyp in the sigmoid colon, Kudo IIIL. Pathology: tubular adenoma. "
    "Repeat colonoscopy in 3 years."
)


@pytest.mark.parametrize(
    "silent",
    [
        "",
        "xq blorp zzt",
        "0arecopyeed 0arecopy copyeed 0(copyerplastcopyecopy",
        # The extractor's "states nothing about polyps".
        {"no_polyps": None, "lesions": []},
    ],
)
@pytest.mark.parametrize("reference", [NORMAL, ADENOMA_12])
def test_a_report_that_asserts_nothing_scores_below_a_correct_one(
    silent: str | dict[str, Any], reference: str
) -> None:
    correct = score_findings(reference, reference)
    empty = score_findings(silent, reference)
    assert correct.score == 1.0
    assert empty.score == 0.0 < correct.score
    assert not empty.asserts
    assert "no_assertion" in {e.kind for e in empty.errors}
    # Nothing detected, nothing described, the interval not agreed.
    assert empty.detection[0] == 0 and empty.description[0] == 0
    assert empty.surveillance == [0, 1]


def test_silence_scores_zero_even_against_a_silent_reference() -> None:
    # Nothing comparable: every system scores 0 on such a case, so it changes no ranking.
    assert score_findings("", "Bowel preparation adequate.").score == 0.0
    assert score_findings("No polyps.", "Bowel preparation adequate.").score == 0.0


def test_a_hedge_alone_is_not_an_assertion_but_a_lesion_with_a_hedged_diagnosis_is() -> None:
    # "Rule out adenoma.": the extractor keeps hedge-only lesions out of `lesions`.
    bare = {"no_polyps": None, "lesions": [], "hedged_lesions": [{"histology": "adenoma"}]}
    assert score_findings(bare, NORMAL).score == 0.0
    described = {
        "no_polyps": False,
        "lesions": [{"size_mm": 12, "location": "sigmoid", "histology": "adenoma", "hedged": True}],
    }
    result = score_findings(described, ADENOMA_12)
    assert result.asserts and result.detection == [1, 1, 1]


def test_12mm_adenoma_called_6mm_changes_surveillance_and_outweighs_a_missing_kudo() -> None:
    size_wrong = score_findings(
        "A 6 mm sessile polyp in the sigmoid colon, Kudo IIIL. Pathology: tubular adenoma.",
        ADENOMA_12,
    )
    kudo_missing = score_findings(
        "A 12 mm sessile polyp in the sigmoid colon. Pathology: tubular adenoma.", ADENOMA_12
    )
    (size_error,) = [e for e in size_wrong.errors if e.kind == "wrong_size_class"]
    assert size_error.level == "surveillance" and size_error.significant
    # The source names the two USMSTF 2020 rows: advanced adenoma (3 y) vs 1-2 small (7-10 y).
    assert "3 years" in size_error.source and "7-10 years" in size_error.source
    (kudo_error,) = [e for e in kudo_missing.errors if e.attribute == "kudo"]
    assert kudo_error.found is None and kudo_error.level == "minor"
    assert size_error.weight > kudo_error.weight
    assert size_wrong.score < kudo_missing.score < 1.0
    # The interval computed from the reports' findings: 7-10 y against 3 y.
    assert size_wrong.surveillance == [0, 1] and kudo_missing.surveillance == [1, 1]


@pytest.mark.parametrize(
    ("candidate", "reference", "kind", "level"),
    [
        # Suspected deep invasion on one side: endoscopic resection vs surgery.
        (
            "A 15 mm polyp in the rectum, NICE 2.",
            "A 15 mm polyp in the rectum, NICE 3.",
            "wrong_classification",
            "management",
        ),
        (
            "A 15 mm polyp in the rectum, Paris 0-IIa.",
            "A 15 mm polyp in the rectum, Paris 0-IIa+IIc.",
            "wrong_morphology",
            "management",
        ),
        (
            "A 15 mm polyp in the rectum, JNET 2A.",
            "A 15 mm polyp in the rectum, JNET 2B.",
            "wrong_classification",
            "management",
        ),
        # A missed lesion >= 10 mm of unknown histology: the table cannot decide, management.
        (
            "A 4 mm polyp in the cecum.",
            "A 4 mm polyp in the cecum. A 15 mm polyp in the rectum.",
            "missed_lesion",
            "management",
        ),
        # A missed diminutive hyperplastic polyp among others: no row changes, minor.
        (
            "A 4 mm polyp in the cecum. Pathology: hyperplastic polyp.",
            "A 4 mm polyp in the cecum. A 3 mm polyp in the rectum. "
            "Pathology: hyperplastic polyps.",
            "missed_lesion",
            "minor",
        ),
        # A missed small adenoma: 1-2 tubular adenomas (7-10 y) vs a normal colonoscopy (10 y).
        (
            "No polyps.",
            "A 5 mm polyp in the cecum. Pathology: tubular adenoma.",
            "missed_lesion",
            "surveillance",
        ),
        # Neighbouring segments are a slip; distant ones send the endoscopist elsewhere.
        (
            "A 4 mm polyp in the cecum.",
            "A 4 mm polyp in the ascending colon.",
            "wrong_location",
            "minor",
        ),
        (
            "A 4 mm polyp in the rectum.",
            "A 4 mm polyp in the cecum.",
            "wrong_location",
            "management",
        ),
        # Piecemeal resection of a lesion >= 20 mm: 6 months (USMSTF 2020 Table 2).
        (
            "A 25 mm tubular adenoma in the rectum, resected en bloc by EMR.",
            "A 25 mm tubular adenoma in the rectum, piecemeal EMR.",
            "wrong_resection",
            "surveillance",
        ),
    ],
)
def test_each_error_has_its_significance_level_and_source(
    candidate: str, reference: str, kind: str, level: str
) -> None:
    result = score_findings(candidate, reference)
    found = [e for e in result.errors if e.kind == kind]
    assert found, [e.kind for e in result.errors]
    assert found[0].level == level
    assert found[0].weight >= LEVEL_WEIGHTS[level]
    assert found[0].significant is (level != "minor")
    if level != "minor":
        assert found[0].source
    assert set(LEVELS) == set(LEVEL_WEIGHTS)


def test_heavier_errors_lower_the_score_more() -> None:
    reference = "A 15 mm polyp in the rectum, NICE 3."
    invasive = score_findings("A 15 mm polyp in the rectum, NICE 2.", reference)
    missing = score_findings("A 15 mm polyp in the rectum.", reference)
    assert invasive.score < score_findings(reference, reference).score
    # An omitted NICE 3 is still management (suspected invasion not stated).
    (omitted,) = [e for e in missing.errors if e.attribute == "nice"]
    assert omitted.level == "management" and omitted.found is None


def test_detection_description_and_surveillance_counts() -> None:
    reference = (
        "A 5 mm sessile polyp in the cecum, NICE 2. A 12 mm pedunculated polyp in the sigmoid. "
        "Pathology: tubular adenomas."
    )
    candidate = (
        "A 5 mm sessile polyp in the cecum, NICE 1. A 4 mm polyp in the rectum. "
        "A 3 mm polyp in the transverse colon."
    )
    result = score_findings(candidate, reference)
    # Two report lesions pair with the two reference lesions; the third is invented.
    assert result.detection == [2, 3, 2]
    correct, stated = result.description
    assert stated == sum(
        1
        for _, ri in result.pairs
        for attr, value in result.reference["lesions"][ri].items()
        if value is not None and attr in ("location", "size_class", "paris", "nice", "histology")
    )
    assert 0 < correct < stated
    # The report gives no histology: the table cannot decide its interval.
    assert result.surveillance == [0, 1]
    run = score_clinical([candidate, reference], [reference, reference])
    assert run.detection["precision"] == pytest.approx((2 + 2) / (3 + 2))
    assert run.detection["recall"] == pytest.approx(1.0)
    assert run.surveillance_agreement == pytest.approx(1 / 2)
    assert run.level_counts["surveillance"] + run.level_counts["management"] > 0
    silent = score_clinical(["", ""], [reference, NORMAL])
    assert silent.detection == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert silent.attribute_accuracy == 0.0 and silent.surveillance_agreement == 0.0


def test_count_columns_are_recomputed_exactly_on_a_resample() -> None:
    import numpy as np

    from metrics.clinical_metric import COUNT_COLUMNS, Clinical
    from metrics.significance import resample_counts
    from metrics.text import score_texts

    refs = [ADENOMA_12, NORMAL, "A 4 mm polyp in the cecum. A 6 mm polyp in the rectum."] * 4
    cands = ["A 6 mm polyp in the sigmoid colon.", "", "A 4 mm polyp in the cecum."] * 4
    metric = Clinical()
    runs = {"s": score_texts(cands, [[r] for r in refs], ["clinical"])}
    weights = resample_counts(len(cands), 1, np.random.default_rng(4))[0]
    picked = [i for i in range(len(cands)) for _ in range(int(weights[i]))]
    again = score_clinical([cands[i] for i in picked], [refs[i] for i in picked])
    expected = {
        "lesion-precision": again.detection["precision"],
        "lesion-recall": again.detection["recall"],
        "lesion-F1": again.detection["f1"],
        "attribute-accuracy": again.attribute_accuracy,
        "surveillance-agreement": again.surveillance_agreement,
    }
    assert set(expected) == set(COUNT_COLUMNS)
    for column, value in expected.items():
        aggregate, per_system = metric.resampling(column, runs, {})
        assert aggregate(weights @ per_system["s"], len(cands))[0] == pytest.approx(value)
        assert runs["s"].results[column].corpus == pytest.approx(
            aggregate(per_system["s"].sum(axis=0), len(cands))[0]
        )


# --- ceilings: a significant error bounds the case score ---------------------------------

THREE_ADENOMAS = (
    "A 6 mm sessile polyp in the cecum, removed with cold snare. "
    "A 5 mm sessile polyp in the transverse colon, removed with cold snare. "
    "A 22 mm pedunculated polyp in the sigmoid colon, removed with cold snare. "
    "Pathology: tubular adenomas."
)


def test_one_significant_error_among_many_right_findings_bounds_the_score() -> None:
    # The old ratio let 14 right findings outvote a management-changing error (0.875): the
    # 6 mm cecal adenoma called 15 mm is now hot snare / EMR instead of a cold snare.
    from metrics.clinical.scoring import LEVEL_CEILINGS

    size_wrong = score_findings(THREE_ADENOMAS.replace("A 6 mm", "A 15 mm"), THREE_ADENOMAS)
    (error,) = size_wrong.errors
    assert error.kind == "wrong_size_class" and error.level == "management"
    assert size_wrong.matched_findings / (size_wrong.matched_findings + error.weight) > 0.85
    assert size_wrong.ceiling == LEVEL_CEILINGS["management"]
    assert size_wrong.score == LEVEL_CEILINGS["management"]
    assert score_findings(THREE_ADENOMAS, THREE_ADENOMAS).score - size_wrong.score >= 0.2
    # A segment three away and a histology of another group are management errors too.
    for edited in (
        THREE_ADENOMAS.replace("transverse colon", "rectum"),
        THREE_ADENOMAS.replace("Pathology: tubular adenomas.", "")
        + " Pathology: 1. tubular adenoma. 2. hyperplastic polyp. 3. tubular adenoma.",
    ):
        result = score_findings(edited, THREE_ADENOMAS)
        assert any(e.level == "management" for e in result.errors), result.errors
        assert result.score <= LEVEL_CEILINGS["management"]


def test_a_surveillance_changing_error_caps_the_score_at_half() -> None:
    # Four small adenomas (3-4 adenomas < 10 mm: 3-5 years) of which one is called 15 mm
    # (adenoma >= 10 mm: 3 years): the interval changes, however much else is right.
    from metrics.clinical.scoring import LEVEL_CEILINGS

    reference = (
        "A 4 mm polyp in the cecum. A 5 mm polyp in the ascending colon. "
        "A 6 mm polyp in the descending colon. A 3 mm polyp in the rectum. "
        "Pathology: tubular adenomas."
    )
    result = score_findings(reference.replace("A 6 mm", "A 15 mm"), reference)
    (error,) = result.errors
    assert error.level == "surveillance" and "3-5 years" in error.source
    assert result.matched_findings / (result.matched_findings + error.weight) > 0.8
    assert result.score == LEVEL_CEILINGS["surveillance"] == 0.5


def test_ceilings_multiply_and_minor_errors_set_none() -> None:
    from metrics.clinical.scoring import LEVEL_CEILINGS

    # Both small lesions moved to distant segments: two management errors.
    two = score_findings(
        THREE_ADENOMAS.replace("cecum", "descending colon").replace("transverse colon", "rectum"),
        THREE_ADENOMAS,
    )
    assert [e.level for e in two.errors] == ["management", "management"]
    assert two.ceiling == pytest.approx(LEVEL_CEILINGS["management"] ** 2)
    assert two.score <= two.ceiling
    # A neighbouring segment is a slip: minor, no ceiling, the ratio alone.
    slip = score_findings(THREE_ADENOMAS.replace("cecum", "ascending colon"), THREE_ADENOMAS)
    assert [e.level for e in slip.errors] == ["minor"] and slip.ceiling == 1.0
    assert slip.score == pytest.approx(
        slip.matched_findings / (slip.matched_findings + slip.weighted_errors)
    )
    assert two.score < slip.score < 1.0
    assert "ceiling" in two.as_dict() and "ceilings:" in score_clinical([""], [""]).signature
