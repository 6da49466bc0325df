"""The USMSTF 2020 table on the cases where two readings of it once disagreed.

Gupta et al., Gastroenterology 2020;158:1131, Tables 2 and 4: tubular adenomas and sessile
serrated lesions are counted together for the "3-4" and "5-10 < 10 mm" rows, and a
carcinoma is outside the table (cancer management, not a surveillance interval).
"""

from __future__ import annotations

from typing import Any

import pytest

from metrics.clinical import extract_findings, surveillance_interval

TA = "tubular_adenoma"
SSL = "sessile_serrated_lesion"


def lesions(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {
        "no_polyps": False,
        "lesions": [{"size_mm": size, "histology": histology} for size, histology in pairs],
    }


def test_two_tubular_adenomas_and_one_ssl_under_10_mm_are_3_to_4_lesions() -> None:
    # The review's first case: 2 TAs 6 mm + 1 SSL 6 mm.
    rec = surveillance_interval(lesions((6, TA), (6, TA), (6, SSL)))
    assert (rec.years, rec.years_max, rec.row) == (3, 5, "adenoma_or_ssl_3_4_small")
    # Neither "1-2" row fires: the count is three neoplastic lesions, not two plus one.
    assert set(rec.fired) == {"adenoma_or_ssl_3_4_small"}


def test_a_carcinoma_is_referred_not_given_an_interval() -> None:
    # The review's second case: a 25 mm carcinoma.
    rec = surveillance_interval(lesions((25, "carcinoma")))
    assert (rec.years, rec.years_max, rec.row) == (None, None, "carcinoma")
    assert "outside the surveillance table" in rec.description
    assert "cancer management" in rec.summary


@pytest.mark.parametrize(
    ("pairs", "row", "years"),
    [
        (((4, TA), (4, SSL)), "ssl_1_2_small", (5, 10)),  # 2 lesions: the shorter 1-2 row
        (((4, TA),) * 3 + ((4, SSL),) * 3, "adenoma_or_ssl_5_10_small", (3, 3)),
        (((4, TA),) * 6 + ((4, SSL),) * 6, "adenoma_or_ssl_gt10", (1, 1)),
        (((4, TA), (4, TA), (12, SSL)), "advanced_serrated", (3, 3)),
    ],
)
def test_adenomas_and_ssls_are_counted_together(
    pairs: tuple[tuple[int, str], ...], row: str, years: tuple[float, float]
) -> None:
    rec = surveillance_interval(lesions(*pairs))
    assert (rec.row, (rec.years, rec.years_max)) == (row, years)


def test_the_summary_says_the_row_and_its_span() -> None:
    assert surveillance_interval(lesions((6, TA))).summary == (
        "1-2 tubular adenomas < 10 mm: 7-10 years"
    )
    piecemeal = {**lesions((25, TA)), "resection": ["piecemeal", "emr"]}
    assert surveillance_interval(piecemeal).summary.endswith(": 6 months")
    text = "Two 5 mm tubular adenomas and a 4 mm sessile serrated lesion in the cecum."
    assert surveillance_interval(extract_findings(text)).row == "adenoma_or_ssl_3_4_small"
