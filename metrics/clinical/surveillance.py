"""Post-polypectomy surveillance interval: the project's one USMSTF 2020 table.

Source: Gupta S, et al. Recommendations for follow-up after colonoscopy and polypectomy: a
consensus update by the US Multi-Society Task Force on Colorectal Cancer. Gastroenterology
2020;158:1131-1153 (also Gastrointest Endosc 2020;91:463-485), Table 2 (normal colonoscopy
and adenomas) and Table 4 (serrated polyps).

`surveillance_interval(findings)` returns the shortest interval among the table rows that
fire and says which row decided it. Everything that needs an interval (the clinical
metric, the synthetic generator's reference reports) calls it; nothing else encodes the
table. Reading rules:
- Tubular adenomas and sessile serrated lesions are counted together in the count rows
  (3-4, 5-10, > 10 lesions), as the guideline combines adenoma and SSP counts.
- A lesion of unknown size counts as < 10 mm; a lesion of unknown histology fires no row
  of its own (the table needs histology).
- A carcinoma is outside the table: the guideline's recommendations exclude malignant
  polyps and colorectal cancer, whose next step is cancer management (referral, staging,
  treatment), so no interval is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Conventional adenomas (Table 2); serrated lesions are Table 4's.
ADENOMAS = frozenset({"adenoma", "tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma"})
SSL = "sessile_serrated_lesion"
TSA = "traditional_serrated_adenoma"
HYPERPLASTIC = "hyperplastic"
CARCINOMA = "carcinoma"


@dataclass(frozen=True)
class SurveillanceRow:
    key: str
    description: str
    years_min: float
    years_max: float


ROWS: dict[str, SurveillanceRow] = {
    row.key: row
    for row in (
        # Table 2, "Normal colonoscopy": 10 years.
        SurveillanceRow("normal", "Normal colonoscopy", 10, 10),
        # Table 4, "<= 20 HPs < 10 mm" in the rectosigmoid and proximal to it: 10 years.
        SurveillanceRow("hyperplastic_small", "<= 20 hyperplastic polyps < 10 mm", 10, 10),
        # Table 2, "1-2 tubular adenomas < 10 mm": 7-10 years.
        SurveillanceRow("adenoma_1_2_small", "1-2 tubular adenomas < 10 mm", 7, 10),
        # Table 4, "1-2 SSPs < 10 mm": 5-10 years.
        SurveillanceRow("ssl_1_2_small", "1-2 sessile serrated lesions < 10 mm", 5, 10),
        # Table 2, "3-4 tubular adenomas < 10 mm", and Table 4, "3-4 SSPs < 10 mm": 3-5 years.
        SurveillanceRow(
            "adenoma_or_ssl_3_4_small", "3-4 adenomas or sessile serrated lesions < 10 mm", 3, 5
        ),
        # Table 4, "Hyperplastic polyp >= 10 mm": 3-5 years.
        SurveillanceRow("hyperplastic_large", "hyperplastic polyp >= 10 mm", 3, 5),
        # Table 2, "5-10 tubular adenomas < 10 mm", and Table 4, "5-10 SSPs < 10 mm": 3 years.
        SurveillanceRow(
            "adenoma_or_ssl_5_10_small", "5-10 adenomas or sessile serrated lesions < 10 mm", 3, 3
        ),
        # Table 2, "Adenoma >= 10 mm", "Adenoma with tubulovillous or villous histology",
        # "Adenoma with high-grade dysplasia": 3 years.
        SurveillanceRow(
            "advanced_adenoma",
            "adenoma >= 10 mm, tubulovillous/villous histology or high-grade dysplasia",
            3,
            3,
        ),
        # Table 4, "SSP >= 10 mm", "SSP with dysplasia", "Traditional serrated adenoma": 3 years.
        SurveillanceRow(
            "advanced_serrated",
            "SSL >= 10 mm or with dysplasia, or traditional serrated adenoma",
            3,
            3,
        ),
        # Table 2, "> 10 adenomas on single examination": 1 year (counted with SSLs, so
        # that 6 adenomas + 6 SSLs are not left without a row).
        SurveillanceRow("adenoma_or_ssl_gt10", "> 10 adenomas or sessile serrated lesions", 1, 1),
        # Table 2, "Piecemeal resection of adenoma or SSP >= 20 mm", and Table 4: 6 months.
        SurveillanceRow("piecemeal_ge20", "piecemeal resection of a lesion >= 20 mm", 0.5, 0.5),
    )
}
# Not a table row: the guideline leaves a cancer to cancer management.
OUTSIDE_TABLE = "carcinoma: outside the surveillance table; refer for cancer management"


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

    @property
    def summary(self) -> str:
        """The deciding row and its interval, e.g. "1-2 tubular adenomas < 10 mm: 7-10 years"."""
        if self.years is None:
            return self.description
        return f"{self.description}: {_years_text(self.years, self.years_max)}"


def _years_text(low: float, high: float | None) -> str:
    if low < 1 and high == low:
        return f"{low * 12:g} months"
    span = f"{low:g}" if high in (None, low) else f"{low:g}-{high:g}"
    return f"{span} year" + ("" if span == "1" else "s")


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
        ssls = [x for x in lesions if x.get("histology") == SSL]
        tsas = [x for x in lesions if x.get("histology") == TSA]
        hps = [x for x in lesions if x.get("histology") == HYPERPLASTIC]
        # The count rows count adenomas and SSLs together (2 TAs + 1 SSL is "3-4").
        neoplastic = adenomas + ssls
        all_small = not any(_is_large(x) for x in neoplastic)
        resection = set(findings.get("resection") or [])
        if "piecemeal" in resection and any(_is_large(x, 20) for x in lesions):
            fired.append("piecemeal_ge20")
        if len(neoplastic) > 10:
            fired.append("adenoma_or_ssl_gt10")
        if any(
            _is_large(x)
            or x.get("histology") in {"tubulovillous_adenoma", "villous_adenoma"}
            or x.get("dysplasia") == "high_grade"
            for x in adenomas
        ):
            fired.append("advanced_adenoma")
        if tsas or any(_is_large(x) or x.get("dysplasia") for x in ssls):
            fired.append("advanced_serrated")
        if 5 <= len(neoplastic) <= 10 and all_small:
            fired.append("adenoma_or_ssl_5_10_small")
        if any(_is_large(x) for x in hps):
            fired.append("hyperplastic_large")
        if 3 <= len(neoplastic) <= 4 and all_small:
            fired.append("adenoma_or_ssl_3_4_small")
        if len(neoplastic) <= 2:
            if ssls and not any(_is_large(x) for x in ssls):
                fired.append("ssl_1_2_small")
            if adenomas and not any(_is_large(x) for x in adenomas):
                fired.append("adenoma_1_2_small")
        small_hps = [x for x in hps if not _is_large(x)]
        if small_hps and len(small_hps) <= 20 and len(small_hps) == len(lesions):
            fired.append("hyperplastic_small")
    if any(x.get("histology") == CARCINOMA for x in lesions):
        return SurveillanceRecommendation(None, None, CARCINOMA, OUTSIDE_TABLE, tuple(fired))
    if not fired:
        return SurveillanceRecommendation(
            None, None, None, "no table row applies (histology or findings missing)", ()
        )
    best = min((ROWS[key] for key in fired), key=lambda row: (row.years_min, row.years_max))
    return SurveillanceRecommendation(
        best.years_min, best.years_max, best.key, best.description, tuple(fired)
    )
