"""The extractor asserts, it is not silent, and reads the styles reports are written in.

Each test names one construction; every one of them read wrong before the extractor learnt
hedges, numbered lists with a pathology addendum by number, telegraphic abbreviations,
decimal commas, counts written after the size, and scars. The assertions on the fields that
existed then come first, so each test shows its defect on the old extractor, not merely a
missing new field.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from metrics.clinical import FINDINGS_SCHEMA, extract_findings


def _lesions(findings: dict[str, Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(lesion[key] for key in keys) for lesion in findings["lesions"]]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "xq blorp zzt",
        "Sigmoid diverticular disease. Internal haemorrhoids.",
        "Good bowel preparation, BBPS 8. Caecum reached.",
    ],
)
def test_a_text_that_states_nothing_about_polyps_is_not_a_negation(text: str) -> None:
    found = extract_findings(text)
    assert found["no_polyps"] is None
    assert found["polyp_count"] is None and found["lesions"] == []
    assert found["hedged"] is False


@pytest.mark.parametrize(
    ("text", "histology", "location"),
    [
        ("Rule out adenoma.", "adenoma", None),
        ("Possible polyp in the sigmoid colon.", None, "sigmoid"),
        ("Cannot exclude a flat lesion in the caecum.", None, "cecum"),
        ("Likely adenoma in the transverse colon.", "adenoma", "transverse"),
        ("Small polyp not excluded in the transverse colon due to poor prep.", None, "transverse"),
    ],
)
def test_a_hedge_is_neither_a_finding_nor_a_negation(
    text: str, histology: str | None, location: str | None
) -> None:
    found = extract_findings(text)
    assert found["no_polyps"] is None
    assert found["lesions"] == [] and found["polyp_count"] is None
    assert found["hedged"] is True
    [hedge] = found["hedged_lesions"]
    assert (hedge["histology"], hedge["location"], hedge["hedged"]) == (histology, location, True)


def test_a_hedged_diagnosis_of_a_lesion_that_is_there_flags_the_lesion() -> None:
    found = extract_findings("A 5 mm polyp in the rectum, likely hyperplastic.")
    assert _lesions(found, "size_mm", "location", "histology", "hedged") == [
        (5, "rectum", "hyperplastic", True)
    ]
    assert found["hedged"] is True and found["hedged_lesions"] == []
    # The pathology result replaces the hedge.
    found = extract_findings("A 5 mm polyp in the rectum, likely hyperplastic. Pathology: TA.")
    assert _lesions(found, "histology", "hedged") == [("tubular_adenoma", False)]
    assert found["hedged"] is False


def test_a_numbered_list_takes_its_pathology_addendum_by_number() -> None:
    found = extract_findings(
        "1. 5 mm polyp in the transverse colon. 2. 7 mm polyp in the sigmoid colon. "
        "Path: #2 tubular adenoma; #1 hyperplastic."
    )
    assert _lesions(found, "location", "histology") == [
        ("transverse", "hyperplastic"),
        ("sigmoid", "tubular_adenoma"),
    ]
    found = extract_findings(
        "Polyp 1: ascending colon, 10 mm, Paris 0-Is, EMR. Polyp 2: rectum, 2 mm, 0-IIa, cold "
        "forceps. Histology: polyp 1 tubulovillous adenoma with low-grade dysplasia; polyp 2 "
        "hyperplastic."
    )
    assert _lesions(found, "size_mm", "location", "histology", "dysplasia") == [
        (10, "ascending", "tubulovillous_adenoma", "low_grade"),
        (2, "rectum", "hyperplastic", None),
    ]


def test_numbered_items_of_a_count_share_their_numbers_histology() -> None:
    found = extract_findings(
        "Polypectomy: 3 polyps. 1) 4mm sessile, asc, CSP; 2) 7mm sessile, TC, CSP; 3) 15mm "
        "LST-NG-FE, HF, EMR with clips. Histo: 1) SSL without dysplasia 2) TA LGD 3) TA HGD."
    )
    assert found["polyp_count"] == 3
    assert _lesions(found, "size_mm", "location", "histology", "dysplasia") == [
        (4, "ascending", "sessile_serrated_lesion", None),
        (7, "transverse", "tubular_adenoma", "low_grade"),
        (15, "hepatic_flexure", "tubular_adenoma", "high_grade"),
    ]
    assert found["lesions"][2]["lst"] == "LST-NG-FE"


def test_sizes_in_cm_with_a_decimal_comma() -> None:
    found = extract_findings("A 1,2 cm polyp in the sigmoid colon.")
    assert _lesions(found, "size_mm", "size_class") == [(12, "large")]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2 x 4mm polyps in the rectum.", [(4, "rectum")] * 2),
        ("DC 3 mm HP x2, CFP", [(3, "descending")] * 2),
        (
            "Two polyps in the ascending colon measuring 5 and 7 mm.",
            [(5, "ascending"), (7, "ascending")],
        ),
        (
            "Five polyps: three in the rectum (2-3 mm) and two in the sigmoid colon (4 mm).",
            [(3, "rectum")] * 3 + [(4, "sigmoid")] * 2,
        ),
    ],
)
def test_counts(text: str, want: list[tuple[Any, ...]]) -> None:
    found = extract_findings(text)
    assert _lesions(found, "size_mm", "location") == want
    assert found["polyp_count"] == len(want)


@pytest.mark.parametrize(
    ("text", "no_polyps"),
    [
        ("Post-EMR scar in the ascending colon without recurrence.", None),
        ("Scar from prior ESD in the rectum, tattooed, no residual neoplasia. No polyps.", True),
        ("Previous polypectomy site in the sigmoid colon seen, no residual polyp.", None),
    ],
)
def test_a_scar_is_not_a_polyp_and_its_resection_is_not_todays(
    text: str, no_polyps: bool | None
) -> None:
    found = extract_findings(text)
    assert found["resection"] == []
    assert found["lesions"] == [] and found["no_polyps"] is no_polyps


def test_a_residual_lesion_on_a_scar_is_a_lesion() -> None:
    found = extract_findings(
        "EMR scar in the transverse colon with a 3 mm residual adenoma, removed by cold snare."
    )
    assert _lesions(found, "size_mm", "location", "histology") == [(3, "transverse", "adenoma")]
    assert found["resection"] == ["cold_snare"]


@pytest.mark.parametrize(
    ("text", "want", "resection"),
    [
        ("sigm 6mm sess polyp, CSP", [(6, "sigmoid", "0-Is", None)], ["cold_snare"]),
        (
            "TC 8mm ped polyp, HSP. Path TA.",
            [(8, "transverse", "0-Ip", "tubular_adenoma")],
            ["hot_snare"],
        ),
        ("AC: 5 mm SSL, CSP.", [(5, "ascending", None, "sessile_serrated_lesion")], ["cold_snare"]),
        ("SC 10mm VA, ESD", [(10, "sigmoid", None, "villous_adenoma")], ["esd"]),
        (
            "Transv colon 5mm SSP, cold snare.",
            [(5, "transverse", None, "sessile_serrated_lesion")],
            ["cold_snare"],
        ),
        ("RE: 4 mm HP, not removed.", [(4, "rectum", None, "hyperplastic")], []),
        ("IC valve 6 mm polyp, CSP", [(6, "cecum", None, None)], ["cold_snare"]),
    ],
)
def test_telegraphic_abbreviations(
    text: str, want: list[tuple[Any, ...]], resection: list[str]
) -> None:
    found = extract_findings(text)
    assert _lesions(found, "size_mm", "location", "paris", "histology") == want
    assert found["resection"] == resection


def test_a_negation_near_a_resection_negates_only_what_it_names() -> None:
    found = extract_findings(
        "Large pedunculated tumour in the sigmoid colon, 25 mm, no haemorrhage after hot snare "
        "polypectomy."
    )
    assert found["resection"] == ["hot_snare"]
    assert (
        extract_findings("A 6 mm polyp in the descending colon, no biopsy taken.")["resection"]
        == []
    )


@pytest.mark.parametrize(
    "text",
    [
        "Adenoma detection: none.",
        "Haemorrhoids only; colonoscopy otherwise normal.",
        "Colonoscopy to the caecum with retroflexion in the rectum: unremarkable.",
    ],
)
def test_template_negations_and_normal_examinations(text: str) -> None:
    found = extract_findings(text)
    assert (found["no_polyps"], found["polyp_count"], found["lesions"]) == (True, 0, [])


def test_every_output_validates_against_the_findings_schema() -> None:
    from test_clinical_extract import CASES, STYLE_CASES

    for text, _ in CASES + STYLE_CASES:
        jsonschema.validate(extract_findings(text), FINDINGS_SCHEMA)


def test_a_tubulovillous_adenoma_is_one_histology_not_two() -> None:
    """'tubulovillous adenoma' was read as two histologies (tubulovillous, then adenoma), so a
    pathology line after the second of two lesions handed one to each lesion in order."""
    text = (
        "Transverse colon: 7 mm sessile polyp, cold snare. Histology: sessile serrated lesion. "
        "Descending colon: 8 mm sessile polyp, cold snare. Histology: tubulovillous adenoma."
    )
    lesions = extract_findings(text)["lesions"]
    assert [(lesion["size_mm"], lesion["histology"]) for lesion in lesions] == [
        (7, "sessile_serrated_lesion"),
        (8, "tubulovillous_adenoma"),
    ]
