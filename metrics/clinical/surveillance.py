"""Post-polypectomy surveillance interval from the US Multi-Society Task Force 2020 table.

`surveillance_interval(findings)` returns the shortest interval among the table rows that
fire, and says which row that was. Lesions with unknown size count as < 10 mm; lesions
with unknown histology fire no row of their own (the table needs histology).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ADENOMAS = {"adenoma", "tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma"}


@dataclass(frozen=True)
class SurveillanceRow:
    key: str
    description: str
    years_min: float
    years_max: float


ROWS: dict[str, SurveillanceRow] = {
    row.key: row
    for row in (
        SurveillanceRow("normal", "Normal colonoscopy", 10, 10),
        SurveillanceRow("hyperplastic_small", "<= 20 hyperplastic polyps < 10 mm", 10, 10),
        SurveillanceRow("adenoma_1_2_small", "1-2 tubular adenomas < 10 mm", 7, 10),
        SurveillanceRow("ssl_1_2_small", "1-2 sessile serrated lesions < 10 mm", 5, 10),
        SurveillanceRow("adenoma_3_4_small", "3-4 adenomas < 10 mm", 3, 5),
        SurveillanceRow("ssl_3_4_small", "3-4 sessile serrated lesions < 10 mm", 3, 5),
        SurveillanceRow("hyperplastic_large", "hyperplastic polyp >= 10 mm", 3, 5),
        SurveillanceRow("adenoma_5_10_small", "5-10 adenomas < 10 mm", 3, 3),
        SurveillanceRow("ssl_5_10_small", "5-10 sessile serrated lesions < 10 mm", 3, 3),
        SurveillanceRow(
            "advanced_adenoma",
            "adenoma >= 10 mm, tubulovillous/villous histology or high-grade dysplasia",
            3,
            3,
        ),
        SurveillanceRow(
            "advanced_serrated",
            "SSL >= 10 mm or with dysplasia, or traditional serrated adenoma",
            3,
            3,
        ),
        SurveillanceRow("adenoma_gt10", "> 10 adenomas", 1, 1),
        SurveillanceRow("piecemeal_ge20", "piecemeal resection of a lesion >= 20 mm", 0.5, 0.5),
    )
}


@dataclass(frozen=True)
class SurveillanceRecommendation:
    """The interval in years (`years` is the short end) and the table row that decided it."""

    years: float | None
    years_max: float | None
    row: str | None
    description: str
    fired: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "years": self.years,
            "years_max": self.years_max,
            "row": self.row,
            "description": self.description,
            "fired": list(self.fired),
        }


def _is_large(lesion: dict[str, Any], threshold: float = 10) -> bool:
    size = lesion.get("size_mm")
    if size is not None:
        return float(size) >= threshold
    return threshold <= 10 and lesion.get("size_class") == "large"


def surveillance_interval(findings: dict[str, Any]) -> SurveillanceRecommendation:
    """Apply the USMSTF 2020 table to structured findings."""
    lesions = list(findings.get("lesions") or [])
    fired: list[str] = []
    if not lesions:
        if findings.get("no_polyps"):
            fired.append("normal")
    else:
        adenomas = [x for x in lesions if x.get("histology") in ADENOMAS]
        ssls = [x for x in lesions if x.get("histology") == "sessile_serrated_lesion"]
        tsas = [x for x in lesions if x.get("histology") == "traditional_serrated_adenoma"]
        hps = [x for x in lesions if x.get("histology") == "hyperplastic"]
        resection = set(findings.get("resection") or [])
        if "piecemeal" in resection and any(_is_large(x, 20) for x in lesions):
            fired.append("piecemeal_ge20")
        if len(adenomas) > 10:
            fired.append("adenoma_gt10")
        if any(
            _is_large(x)
            or x.get("histology") in {"tubulovillous_adenoma", "villous_adenoma"}
            or x.get("dysplasia") == "high_grade"
            for x in adenomas
        ):
            fired.append("advanced_adenoma")
        if tsas or any(_is_large(x) or x.get("dysplasia") for x in ssls):
            fired.append("advanced_serrated")
        small_adenomas = [x for x in adenomas if not _is_large(x)]
        small_ssls = [x for x in ssls if not _is_large(x)]
        if 5 <= len(adenomas) <= 10 and len(small_adenomas) == len(adenomas):
            fired.append("adenoma_5_10_small")
        if 5 <= len(ssls) <= 10 and len(small_ssls) == len(ssls):
            fired.append("ssl_5_10_small")
        if any(_is_large(x) for x in hps):
            fired.append("hyperplastic_large")
        if 3 <= len(small_adenomas) <= 4 and len(small_adenomas) == len(adenomas):
            fired.append("adenoma_3_4_small")
        if 3 <= len(small_ssls) <= 4 and len(small_ssls) == len(ssls):
            fired.append("ssl_3_4_small")
        if 1 <= len(small_ssls) <= 2 and len(small_ssls) == len(ssls):
            fired.append("ssl_1_2_small")
        if 1 <= len(small_adenomas) <= 2 and len(small_adenomas) == len(adenomas):
            fired.append("adenoma_1_2_small")
        small_hps = [x for x in hps if not _is_large(x)]
        if small_hps and len(small_hps) <= 20 and len(small_hps) == len(lesions):
            fired.append("hyperplastic_small")
    if any(x.get("histology") == "carcinoma" for x in lesions):
        return SurveillanceRecommendation(
            None, None, "carcinoma", "carcinoma: outside the surveillance table", tuple(fired)
        )
    if not fired:
        return SurveillanceRecommendation(
            None, None, None, "no table row applies (histology or findings missing)", ()
        )
    best = min((ROWS[key] for key in fired), key=lambda row: (row.years_min, row.years_max))
    return SurveillanceRecommendation(
        best.years_min, best.years_max, best.key, best.description, tuple(fired)
    )
