"""Surveillance table rows, lesion matching, error taxonomy and the per-case clinical score."""

from __future__ import annotations

from typing import Any

import pytest

from metrics.clinical import (
    ERROR_KINDS,
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
    assert result.score == pytest.approx(3 / 4)
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
    assert result.score == pytest.approx(1 / 2)


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
    result = score_findings("A 7 mm sessile tubular adenoma in the ascending colon.", truth)
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
