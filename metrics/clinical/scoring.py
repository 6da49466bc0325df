"""Finding-level scores of a candidate report against a reference report or ground truth.

Lesions are matched one-to-one (Hungarian assignment maximising attribute agreement, with
location and size class weighted most); unmatched candidate lesions are hallucinated,
unmatched reference lesions missed. Per-attribute precision/recall/F1 count an attribute
value written by the candidate as a prediction and one in the reference as a gold value.
The per-case clinical score is matched findings / (matched findings + clinically
significant errors), in [0, 1].
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from metrics.clinical.extract import FINDINGS_SCHEMA_VERSION, extract_findings
from metrics.clinical.vocab import (
    HISTOLOGIES,
    JNET_CLASSES,
    KUDO_CLASSES,
    LESION_ATTRIBUTES,
    LOCATIONS,
    LST_CLASSES,
    NICE_CLASSES,
    SIZE_CLASSES,
    size_class,
)

ERROR_KINDS = (
    "hallucinated_lesion",
    "missed_lesion",
    "wrong_location",
    "wrong_size_class",
    "wrong_morphology",
    "wrong_classification",
    "wrong_histology",
    "negation_error",
    "wrong_surveillance_interval",
)
SCORED_ATTRIBUTES = ("lesion", *LESION_ATTRIBUTES)
_WEIGHTS = {"location": 3.0, "size_class": 2.0, "histology": 2.0}
_HISTOLOGY_GROUP = {
    "hyperplastic": "non_neoplastic",
    "adenoma": "adenoma",
    "tubular_adenoma": "adenoma",
    "tubulovillous_adenoma": "adenoma",
    "villous_adenoma": "adenoma",
    "sessile_serrated_lesion": "serrated",
    "traditional_serrated_adenoma": "serrated",
    "carcinoma": "carcinoma",
}
_KUDO_GROUP = {"I": 0, "II": 0, "IIIS": 1, "IIIL": 1, "IV": 1, "VI": 2, "VN": 3}


@dataclass(frozen=True)
class FindingError:
    kind: str
    significant: bool
    candidate_lesion: int | None = None
    reference_lesion: int | None = None
    expected: Any = None
    found: Any = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CaseClinicalScore:
    """One case: lesion pairs, errors, per-attribute counts and the clinical score."""

    score: float
    matched_findings: int
    significant_errors: int
    pairs: list[tuple[int, int]]
    errors: list[FindingError]
    # attribute -> [true positives, candidate values, reference values]
    counts: dict[str, list[int]]
    candidate: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "matched_findings": self.matched_findings,
            "significant_errors": self.significant_errors,
            "pairs": [list(p) for p in self.pairs],
            "errors": [e.as_dict() for e in self.errors],
            "counts": self.counts,
            "candidate": self.candidate,
            "reference": self.reference,
        }


_ALLOWED = {
    "location": LOCATIONS,
    "size_class": SIZE_CLASSES,
    "lst": LST_CLASSES,
    "nice": NICE_CLASSES,
    "jnet": JNET_CLASSES,
    "kudo": KUDO_CLASSES,
    "histology": HISTOLOGIES,
}


def normalize_findings(findings: dict[str, Any], *, where: str = "findings") -> dict[str, Any]:
    """Check a findings dict (e.g. a benchmark's ground truth) and fill missing keys.

    Raises ValueError naming the offending field, so a bad manifest is easy to fix.
    """
    if not isinstance(findings, dict):
        raise ValueError(f"{where}: expected an object, got {type(findings).__name__}")
    lesions_in = findings.get("lesions") or []
    if not isinstance(lesions_in, list):
        raise ValueError(f"{where}.lesions: expected a list")
    lesions: list[dict[str, Any]] = []
    for i, raw in enumerate(lesions_in):
        if not isinstance(raw, dict):
            raise ValueError(f"{where}.lesions[{i}]: expected an object")
        lesion = {key: raw.get(key) for key in ("size_mm", *LESION_ATTRIBUTES, "dysplasia")}
        for key, allowed in _ALLOWED.items():
            if lesion[key] is not None and lesion[key] not in allowed:
                raise ValueError(
                    f"{where}.lesions[{i}].{key}: {lesion[key]!r} is not one of {list(allowed)}"
                )
        if lesion["paris"] is not None and not str(lesion["paris"]).startswith("0-"):
            raise ValueError(
                f"{where}.lesions[{i}].paris: {lesion['paris']!r} is not a Paris class"
            )
        if lesion["size_mm"] is not None:
            try:
                lesion["size_mm"] = float(lesion["size_mm"])
            except (TypeError, ValueError):
                raise ValueError(f"{where}.lesions[{i}].size_mm: not a number") from None
            if lesion["size_class"] is None:
                lesion["size_class"] = size_class(lesion["size_mm"])
        lesions.append(lesion)
    no_polyps = bool(findings.get("no_polyps", False))
    count = findings.get("polyp_count")
    if count is None and (lesions or no_polyps):
        count = len(lesions)
    return {
        "no_polyps": no_polyps and not lesions,
        "polyp_count": count,
        "lesions": lesions,
        "bbps_total": findings.get("bbps_total"),
        "resection": list(findings.get("resection") or []),
        "surveillance_years": findings.get("surveillance_years"),
    }


def _as_findings(value: str | dict[str, Any], where: str) -> dict[str, Any]:
    if isinstance(value, str):
        return extract_findings(value)
    return normalize_findings(value, where=where)


def _similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    score = 0.1  # any two lesions may pair; agreement decides which
    for attr in LESION_ATTRIBUTES:
        x, y = a.get(attr), b.get(attr)
        if x is not None and y is not None:
            weight = _WEIGHTS.get(attr, 1.0)
            score += weight if _equal(attr, x, y) else -0.5 * weight
    return score


def _equal(attr: str, x: Any, y: Any) -> bool:
    if attr == "histology" and x != y:
        # A generic "adenoma" agrees with any adenoma subtype.
        return {x, y} & {"adenoma"} != set() and _HISTOLOGY_GROUP[x] == _HISTOLOGY_GROUP[y]
    return x == y


def _significant(attr: str, expected: Any, found: Any) -> bool:
    if attr == "location":
        # Neighbouring segments (cecum/ascending, flexure/transverse) are a minor slip.
        return abs(LOCATIONS.index(expected) - LOCATIONS.index(found)) > 1
    if attr == "size_class":
        return "large" in (expected, found)  # crossing 10 mm changes management
    if attr in ("paris", "lst"):
        polypoid = {
            str(v).startswith("0-I") and not str(v).startswith("0-II") for v in (expected, found)
        }
        return attr == "paris" and len(polypoid) > 1
    if attr == "kudo":
        return _KUDO_GROUP[expected] != _KUDO_GROUP[found]
    if attr in ("nice", "jnet"):
        return True
    if attr == "histology":
        return True
    return True


_ERROR_OF = {
    "location": "wrong_location",
    "size_class": "wrong_size_class",
    "paris": "wrong_morphology",
    "lst": "wrong_morphology",
    "nice": "wrong_classification",
    "jnet": "wrong_classification",
    "kudo": "wrong_classification",
    "histology": "wrong_histology",
}


def score_findings(
    candidate: str | dict[str, Any], reference: str | dict[str, Any]
) -> CaseClinicalScore:
    """Score one candidate (text or findings) against one reference (text or findings)."""
    cand = _as_findings(candidate, "candidate")
    ref = _as_findings(reference, "reference")
    c_lesions, r_lesions = cand["lesions"], ref["lesions"]
    pairs: list[tuple[int, int]] = []
    if c_lesions and r_lesions:
        sim = np.array([[_similarity(c, r) for r in r_lesions] for c in c_lesions])
        rows, cols = linear_sum_assignment(-sim)
        pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    errors: list[FindingError] = []
    counts = {attr: [0, 0, 0] for attr in SCORED_ATTRIBUTES}
    counts["lesion"] = [len(pairs), len(c_lesions), len(r_lesions)]
    matched = len(pairs)
    for attr in LESION_ATTRIBUTES:
        counts[attr][1] = sum(1 for c in c_lesions if c.get(attr) is not None)
        counts[attr][2] = sum(1 for r in r_lesions if r.get(attr) is not None)
    for ci, ri in pairs:
        c, r = c_lesions[ci], r_lesions[ri]
        for attr in LESION_ATTRIBUTES:
            x, y = c.get(attr), r.get(attr)
            if x is None or y is None:
                continue
            if _equal(attr, x, y):
                counts[attr][0] += 1
                matched += 1
            else:
                errors.append(FindingError(_ERROR_OF[attr], _significant(attr, y, x), ci, ri, y, x))
    paired_c = {ci for ci, _ in pairs}
    paired_r = {ri for _, ri in pairs}
    for ci in range(len(c_lesions)):
        if ci not in paired_c:
            errors.append(FindingError("hallucinated_lesion", True, ci, None, None, c_lesions[ci]))
    for ri in range(len(r_lesions)):
        if ri not in paired_r:
            errors.append(FindingError("missed_lesion", True, None, ri, r_lesions[ri], None))
    if (cand["no_polyps"] and r_lesions) or (ref["no_polyps"] and c_lesions):
        errors.append(
            FindingError("negation_error", True, None, None, ref["no_polyps"], cand["no_polyps"])
        )
    if cand["no_polyps"] and ref["no_polyps"]:
        matched += 1
    cy, ry = cand.get("surveillance_years"), ref.get("surveillance_years")
    if cy is not None and ry is not None:
        if abs(float(cy) - float(ry)) < 1e-9:
            matched += 1
        else:
            errors.append(FindingError("wrong_surveillance_interval", True, None, None, ry, cy))
    significant = sum(1 for e in errors if e.significant)
    denominator = matched + significant
    # Two reports that state nothing comparable agree on nothing and contradict nothing.
    score = 1.0 if denominator == 0 else matched / denominator
    return CaseClinicalScore(score, matched, significant, pairs, errors, counts, cand, ref)


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else (1.0 if n_gold == 0 else 0.0)
    recall = tp / n_gold if n_gold else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


@dataclass
class ClinicalResult:
    """A whole run: per-case scores and corpus-level attribute P/R/F1 and error counts."""

    per_case: list[CaseClinicalScore]
    attributes: dict[str, dict[str, float]]
    micro: dict[str, float]
    macro: dict[str, float]
    error_counts: dict[str, int]
    corpus_score: float
    signature: str

    def scores(self) -> list[float]:
        return [c.score for c in self.per_case]

    def as_dict(self) -> dict[str, Any]:
        return {
            "corpus_score": self.corpus_score,
            "attributes": self.attributes,
            "micro": self.micro,
            "macro": self.macro,
            "error_counts": self.error_counts,
            "signature": self.signature,
            "per_case": [c.as_dict() for c in self.per_case],
        }


CLINICAL_SIGNATURE = (
    f"clinical|findings:v{FINDINGS_SCHEMA_VERSION}|extractor:rules-v1|match:hungarian"
    "|score:matched/(matched+significant_errors)"
)


def aggregate_counts(counts_per_case: list[dict[str, list[int]]]) -> dict[str, dict[str, float]]:
    """Micro/macro P/R/F1 from per-case [tp, n_pred, n_gold] counts (also used in resampling)."""
    totals = {attr: [0, 0, 0] for attr in SCORED_ATTRIBUTES}
    for counts in counts_per_case:
        for attr, values in counts.items():
            for k in range(3):
                totals[attr][k] += values[k]
    attributes = {attr: prf(*totals[attr]) for attr in SCORED_ATTRIBUTES}
    used = [a for a in LESION_ATTRIBUTES if totals[a][1] or totals[a][2]]
    micro = prf(*(sum(totals[a][k] for a in LESION_ATTRIBUTES) for k in range(3)))
    macro = {
        key: float(np.mean([attributes[a][key] for a in used])) if used else 1.0
        for key in ("precision", "recall", "f1")
    }
    return {"attributes": attributes, "micro": micro, "macro": macro}  # type: ignore[dict-item]


def score_clinical(
    candidates: list[str | dict[str, Any]],
    references: list[str | dict[str, Any]],
) -> ClinicalResult:
    """Score a run: candidates[i] against references[i] (texts or findings dicts)."""
    if len(candidates) != len(references):
        raise ValueError(
            f"{len(candidates)} candidates but {len(references)} references: one each per case"
        )
    per_case = [score_findings(c, r) for c, r in zip(candidates, references, strict=True)]
    agg = aggregate_counts([c.counts for c in per_case])
    errors = Counter(e.kind for c in per_case for e in c.errors)
    return ClinicalResult(
        per_case=per_case,
        attributes=agg["attributes"],  # type: ignore[arg-type]
        micro=agg["micro"],  # type: ignore[arg-type]
        macro=agg["macro"],  # type: ignore[arg-type]
        error_counts={kind: errors.get(kind, 0) for kind in ERROR_KINDS},
        corpus_score=float(np.mean([c.score for c in per_case])) if per_case else float("nan"),
        signature=CLINICAL_SIGNATURE,
    )
