"""Finding-level scores of a candidate report against a reference report or ground truth.

Lesions are matched one-to-one (Hungarian assignment maximising attribute agreement, with
location and size class weighted most); unmatched candidate lesions are invented
(hallucinated), unmatched reference lesions missed. Every error carries a clinical
significance level with its source: it changes the USMSTF 2020 surveillance interval (the
one table, `metrics.clinical.surveillance`, applied to the reference findings with the
error put in), it changes management (suspected deep invasion, a lesion of 10 mm or more,
...), or it is minor. The per-case clinical score is
matched findings / (matched findings + weighted errors), in [0, 1], bounded by the ceiling of
its significant errors (0.5 for each that changes the interval, 0.75 for each that changes
management, multiplied), so many right details do not outvote one error a gastroenterologist
would fail; a report that asserts nothing about polyps scores 0 on every case (no reward for
silence). Detection (lesion precision / recall), description (attribute accuracy on
matched lesions) and surveillance-interval agreement are kept apart as per-case counts.
`docs/clinical-metric.md` is the taxonomy with its guideline rows, ceilings and worked examples.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from metrics.clinical.extract import FINDINGS_SCHEMA_VERSION, extract_findings
from metrics.clinical.surveillance import (
    CARCINOMA,
    SurveillanceRecommendation,
    surveillance_interval,
)
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
    "wrong_classification",  # optical diagnosis: NICE, JNET, Kudo
    "wrong_histology",
    "wrong_count",
    "wrong_resection",
    "negation_error",
    "wrong_surveillance_interval",
    "no_assertion",
)
# Clinical significance levels, most severe first, with the weight an error of that level
# adds to the score's denominator (a matched finding adds 1 to numerator and denominator).
LEVELS = ("surveillance", "management", "minor")
LEVEL_WEIGHTS = {"surveillance": 3.0, "management": 2.0, "minor": 1.0}
# The most a case can score with one error of a level, however many findings are right: a
# report that sends the patient back at the wrong USMSTF interval gets at most half credit
# (its main clinical output is wrong), one that changes management (the lesion's resection,
# referral or the segment sought) at most three quarters; each further significant error
# multiplies the ceiling again. Without it one significant error among many matched
# findings barely moved the ratio, and a gastroenterologist would not sign such a report.
LEVEL_CEILINGS = {"surveillance": 0.5, "management": 0.75, "minor": 1.0}
LEVEL_LABELS = {
    "surveillance": "changes the USMSTF 2020 surveillance interval",
    "management": "changes management",
    "minor": "minor",
}
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
# Signs of suspected deep submucosal invasion (the lesion goes to surgery or en-bloc
# resection, not a cold snare): NICE 3 (Hayashi et al., Gastrointest Endosc 2013;78:625),
# JNET 2B and 3 (Sano et al., Dig Endosc 2016;28:526), Paris 0-IIc and 0-III (Paris
# workshop, Gastrointest Endosc 2003;58:S3), Kudo VN, and a carcinoma.
_INVASIVE = {
    "nice": {"3"},
    "jnet": {"2B", "3"},
    "kudo": {"VN"},
    "histology": {"carcinoma"},
}
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


@dataclass(frozen=True)
class FindingError:
    """One error: its kind, the lesions it concerns, and its clinical significance.

    `found` is None for an omission (the reference states the value, the report does not).
    `weight` is what the error adds to the score's denominator.
    """

    kind: str
    significant: bool
    candidate_lesion: int | None = None
    reference_lesion: int | None = None
    expected: Any = None
    found: Any = None
    level: str = "minor"
    source: str = ""
    weight: float = 1.0
    attribute: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CaseClinicalScore:
    """One case: lesion pairs, graded errors, per-attribute counts and the clinical score.

    `detection` is [matched lesions, candidate lesions, reference lesions];
    `description` is [correct attributes, reference attributes] on matched lesions;
    `surveillance` is [intervals agree, reference interval determined] (each 0 or 1).
    """

    score: float
    matched_findings: int
    significant_errors: int
    pairs: list[tuple[int, int]]
    errors: list[FindingError]
    # attribute -> [true positives, candidate values, reference values]
    counts: dict[str, list[int]]
    candidate: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)
    weighted_errors: float = 0.0
    ceiling: float = 1.0
    asserts: bool = True
    detection: list[int] = field(default_factory=lambda: [0, 0, 0])
    description: list[int] = field(default_factory=lambda: [0, 0])
    surveillance: list[int] = field(default_factory=lambda: [0, 0])
    candidate_interval: dict[str, Any] = field(default_factory=dict)
    reference_interval: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "matched_findings": self.matched_findings,
            "significant_errors": self.significant_errors,
            "weighted_errors": self.weighted_errors,
            "ceiling": self.ceiling,
            "asserts": self.asserts,
            "pairs": [list(p) for p in self.pairs],
            "errors": [e.as_dict() for e in self.errors],
            "counts": self.counts,
            "detection": self.detection,
            "description": self.description,
            "surveillance": self.surveillance,
            "candidate_interval": self.candidate_interval,
            "reference_interval": self.reference_interval,
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
        if raw.get("hedged"):
            lesion["hedged"] = True
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


def asserted_lesions(findings: dict[str, Any]) -> list[int]:
    """Indices of the lesions a report asserts: every entry of `lesions` (a lesion whose
    diagnosis is hedged is still a lesion; lesions written only as hedges, "rule out
    adenoma", are in the findings' `hedged_lesions`, not in `lesions`)."""
    return list(range(len(findings.get("lesions") or [])))


def asserts_findings(findings: dict[str, Any]) -> bool:
    """Whether a report states anything about polyps: a lesion, or that there are none.

    `no_polyps` None (the extractor's "states nothing") and a bare False both assert nothing.
    """
    return bool(asserted_lesions(findings)) or findings.get("no_polyps") is True


def _similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    score = 0.1  # any two lesions may pair; agreement decides which
    for attr in LESION_ATTRIBUTES:
        x, y = a.get(attr), b.get(attr)
        if x is not None and y is not None:
            weight = _WEIGHTS.get(attr, 1.0)
            score += weight if _equal(attr, x, y) else -0.5 * weight
    return score


def match_lesions(
    candidate: list[dict[str, Any]], reference: list[dict[str, Any]]
) -> list[tuple[int, int]]:
    """(candidate index, reference index) of the lesions that pair up: the assignment that
    maximises attribute agreement (any two lesions may pair; unpaired ones are left over)."""
    if not candidate or not reference:
        return []
    sim = np.array([[_similarity(c, r) for r in reference] for c in candidate])
    rows, cols = linear_sum_assignment(-sim)
    return sorted(zip(rows.tolist(), cols.tolist(), strict=True))


def _equal(attr: str, x: Any, y: Any) -> bool:
    if attr == "histology" and x != y:
        # A generic "adenoma" agrees with any adenoma subtype.
        return {x, y} & {"adenoma"} != set() and _HISTOLOGY_GROUP[x] == _HISTOLOGY_GROUP[y]
    return x == y


# --- clinical significance ------------------------------------------------------------


def _interval_key(rec: SurveillanceRecommendation) -> tuple[Any, ...] | None:
    """What the table decides (None: it cannot decide, e.g. histology missing)."""
    if rec.years is not None:
        return (rec.years, rec.years_max)
    return (CARCINOMA,) if rec.row == CARCINOMA else None


def _surveillance_change(
    reference: dict[str, Any], counterfactual: dict[str, Any] | None
) -> str | None:
    """The source line when putting the error into the reference changes its interval."""
    if counterfactual is None:
        return None
    before, after = surveillance_interval(reference), surveillance_interval(counterfactual)
    a, b = _interval_key(before), _interval_key(after)
    if a is None or b is None or a == b:
        return None
    return f"USMSTF 2020: {before.summary} -> {after.summary}"


def _invasive(attr: str, value: Any) -> bool:
    if attr == "paris":
        parts = str(value).removeprefix("0-").split("+")
        return any(p in ("IIc", "III") for p in parts)
    return value in _INVASIVE.get(attr, ())


def _lesion_management(lesion: dict[str, Any]) -> str | None:
    """Why a whole lesion changes management when it is missed or invented."""
    for attr in ("nice", "jnet", "paris", "kudo", "histology"):
        value = lesion.get(attr)
        if value is not None and _invasive(attr, value):
            return f"suspected deep invasion ({attr} {value}): surgery or en-bloc resection"
    size = lesion.get("size_mm")
    if (size is not None and float(size) >= 10) or lesion.get("size_class") == "large":
        return "lesion >= 10 mm: resection technique (hot snare / EMR) and advanced-adenoma row"
    return None


def _attribute_management(attr: str, expected: Any, found: Any) -> str | None:
    """Why a wrong or omitted attribute value changes management (None: minor)."""
    if found is not None and _invasive(attr, expected) != _invasive(attr, found):
        return f"{attr}: suspected deep invasion on one side only (surgery vs endoscopy)"
    if found is None:
        if _invasive(attr, expected):
            return f"{attr} {expected} (suspected deep invasion) not stated"
        if attr == "size_class" and expected == "large":
            return "size >= 10 mm not stated: resection technique and surveillance row"
        return None
    if attr == "location":
        # Neighbouring segments (cecum/ascending, flexure/transverse) are a minor slip.
        if abs(LOCATIONS.index(expected) - LOCATIONS.index(found)) > 1:
            return "location: the lesion is sought, tattooed or resected in another segment"
        return None
    if attr == "size_class":
        if "large" in (expected, found):
            return "size class crosses 10 mm: resection technique (cold snare vs hot snare/EMR)"
        return None
    if attr == "paris":
        polypoid = {
            str(v).startswith("0-I") and not str(v).startswith("0-II") for v in (expected, found)
        }
        if len(polypoid) > 1:
            return "Paris: polypoid vs non-polypoid (resection technique)"
        return None
    if attr == "kudo":
        if _KUDO_GROUP[expected] != _KUDO_GROUP[found]:
            return "Kudo: non-neoplastic vs neoplastic vs invasive pit pattern"
        return None
    if attr in ("nice", "jnet"):
        return f"{attr.upper()}: optical diagnosis decides resect, leave in situ or refer"
    if attr == "histology":
        if _HISTOLOGY_GROUP[expected] != _HISTOLOGY_GROUP[found]:
            return "histology: a different lesion type (non-neoplastic, adenoma, serrated)"
        return None
    return None


def _graded(
    kind: str,
    reference: dict[str, Any],
    counterfactual: dict[str, Any] | None,
    management: str | None,
    *,
    extra_weight: float = 0.0,
    **where: Any,
) -> FindingError:
    """An error at the most severe level that applies, with the source of that level."""
    source = _surveillance_change(reference, counterfactual)
    level = "surveillance"
    if source is None:
        level, source = ("management", management) if management else ("minor", "")
    weight = LEVEL_WEIGHTS[level] + extra_weight
    return FindingError(
        kind, level != "minor", level=level, source=source or "", weight=weight, **where
    )


def _with_lesion_attr(
    findings: dict[str, Any], index: int, attr: str, lesion: dict[str, Any] | None
) -> dict[str, Any]:
    """`findings` with one lesion's attribute as `lesion` has it (None: left out)."""
    out = copy.deepcopy(findings)
    target = out["lesions"][index]
    target[attr] = lesion.get(attr) if lesion else None
    if attr == "size_class":
        target["size_mm"] = lesion.get("size_mm") if lesion else None
    return out


def _attribute_count(lesion: dict[str, Any]) -> int:
    return sum(1 for attr in LESION_ATTRIBUTES if lesion.get(attr) is not None)


def score_ceiling(errors: list[FindingError]) -> float:
    """The highest score a case with these errors can have: the product of their levels'
    ceilings (1 without a clinically significant error)."""
    ceiling = 1.0
    for error in errors:
        ceiling *= LEVEL_CEILINGS[error.level]
    return ceiling


# --- one case -------------------------------------------------------------------------


def score_findings(
    candidate: str | dict[str, Any], reference: str | dict[str, Any]
) -> CaseClinicalScore:
    """Score one candidate (text or findings) against one reference (text or findings)."""
    cand = _as_findings(candidate, "candidate")
    ref = _as_findings(reference, "reference")
    c_index, r_index = asserted_lesions(cand), asserted_lesions(ref)
    c_lesions = [cand["lesions"][i] for i in c_index]
    r_lesions = [ref["lesions"][i] for i in r_index]
    # The reference as the surveillance table reads it (hedged, undescribed lesions out).
    ref_table = {**ref, "lesions": r_lesions}
    pairs = match_lesions(c_lesions, r_lesions)
    errors: list[FindingError] = []
    counts = {attr: [0, 0, 0] for attr in SCORED_ATTRIBUTES}
    counts["lesion"] = [len(pairs), len(c_lesions), len(r_lesions)]
    matched = len(pairs)
    correct = stated = 0
    for attr in LESION_ATTRIBUTES:
        counts[attr][1] = sum(1 for c in c_lesions if c.get(attr) is not None)
        counts[attr][2] = sum(1 for r in r_lesions if r.get(attr) is not None)
    for ci, ri in pairs:
        c, r = c_lesions[ci], r_lesions[ri]
        where = {"candidate_lesion": c_index[ci], "reference_lesion": r_index[ri]}
        for attr in LESION_ATTRIBUTES:
            x, y = c.get(attr), r.get(attr)
            if y is None:
                continue  # a detail the reference does not give cannot be checked
            stated += 1
            if x is not None and _equal(attr, x, y):
                counts[attr][0] += 1
                matched += 1
                correct += 1
                continue
            errors.append(
                _graded(
                    _ERROR_OF[attr],
                    ref_table,
                    _with_lesion_attr(ref_table, ri, attr, c),
                    _attribute_management(attr, y, x),
                    expected=y,
                    found=x,
                    attribute=attr,
                    **where,
                )
            )
    paired_c = {ci for ci, _ in pairs}
    paired_r = {ri for _, ri in pairs}
    for ci, lesion in enumerate(c_lesions):
        if ci in paired_c:
            continue
        invented = copy.deepcopy(ref_table)
        invented["lesions"].append(lesion)
        invented["no_polyps"] = False
        errors.append(
            _graded(
                "hallucinated_lesion",
                ref_table,
                invented,
                _lesion_management(lesion),
                # Each attribute it gives is an unsupported statement as well.
                extra_weight=_attribute_count(lesion) * LEVEL_WEIGHTS["minor"],
                candidate_lesion=c_index[ci],
                found=lesion,
            )
        )
    for ri, lesion in enumerate(r_lesions):
        if ri in paired_r:
            continue
        without = copy.deepcopy(ref_table)
        del without["lesions"][ri]
        without["no_polyps"] = not without["lesions"]
        errors.append(
            _graded(
                "missed_lesion",
                ref_table,
                without,
                _lesion_management(lesion),
                # Each attribute the reference gives it is a finding the report lacks.
                extra_weight=_attribute_count(lesion) * LEVEL_WEIGHTS["minor"],
                reference_lesion=r_index[ri],
                expected=lesion,
            )
        )
    cc, rc = cand.get("polyp_count"), ref.get("polyp_count")
    if cc is not None and rc is not None and cc != rc and len(c_lesions) == len(r_lesions):
        resized = copy.deepcopy(ref_table)
        if r_lesions and cc > 0:
            resized["lesions"] = [r_lesions[i % len(r_lesions)] for i in range(int(cc))]
        errors.append(_graded("wrong_count", ref_table, resized, None, expected=rc, found=cc))
    r_resection, c_resection = ref.get("resection") or [], cand.get("resection") or []
    if r_resection:
        if set(c_resection) == set(r_resection):
            matched += 1
        else:
            errors.append(
                _graded(
                    "wrong_resection",
                    ref_table,
                    {**ref_table, "resection": list(c_resection)},
                    None,
                    expected=list(r_resection),
                    found=list(c_resection),
                )
            )
    cand_table = {**cand, "lesions": c_lesions}
    if (cand["no_polyps"] and r_lesions) or (ref["no_polyps"] and c_lesions):
        errors.append(
            _graded(
                "negation_error",
                ref_table,
                cand_table,
                "the report and the reference disagree on whether there are polyps",
                expected=ref["no_polyps"],
                found=cand["no_polyps"],
            )
        )
    if cand["no_polyps"] is True and ref["no_polyps"] is True:
        matched += 1
    cy, ry = cand.get("surveillance_years"), ref.get("surveillance_years")
    if cy is not None and ry is not None:
        if abs(float(cy) - float(ry)) < 1e-9:
            matched += 1
        else:
            weight = LEVEL_WEIGHTS["surveillance"]
            source = f"stated interval {cy:g} years, reference {ry:g} years"
            errors.append(
                FindingError(
                    "wrong_surveillance_interval",
                    True,
                    None,
                    None,
                    ry,
                    cy,
                    level="surveillance",
                    source=source,
                    weight=weight,
                )
            )
    asserts = asserts_findings(cand)
    if not asserts:
        errors.append(
            FindingError(
                "no_assertion",
                True,
                None,
                None,
                None,
                None,
                level="management",
                source="the report states nothing about polyps",
                weight=LEVEL_WEIGHTS["management"],
            )
        )
    weighted = float(sum(e.weight for e in errors))
    significant = sum(1 for e in errors if e.significant)
    denominator = matched + weighted
    ceiling = score_ceiling(errors)
    # No reward for silence: a report that asserts nothing scores 0, and so does a case
    # whose reference states nothing comparable (every system alike).
    score = min(matched / denominator, ceiling) if asserts and denominator > 0 else 0.0
    c_rec, r_rec = surveillance_interval(cand_table), surveillance_interval(ref_table)
    r_key = _interval_key(r_rec)
    agree = int(r_key is not None and _interval_key(c_rec) == r_key)
    return CaseClinicalScore(
        score=score,
        matched_findings=matched,
        significant_errors=significant,
        pairs=[(c_index[ci], r_index[ri]) for ci, ri in pairs],
        errors=errors,
        counts=counts,
        candidate=cand,
        reference=ref,
        weighted_errors=weighted,
        ceiling=ceiling,
        asserts=asserts,
        detection=[len(pairs), len(c_lesions), len(r_lesions)],
        description=[correct, stated],
        surveillance=[agree, int(r_key is not None)],
        candidate_interval=c_rec.as_dict() | {"summary": c_rec.summary},
        reference_interval=r_rec.as_dict() | {"summary": r_rec.summary},
    )


# --- a run ----------------------------------------------------------------------------


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    precision = tp / n_pred if n_pred else (1.0 if n_gold == 0 else 0.0)
    recall = tp / n_gold if n_gold else (1.0 if n_pred == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def ratio(numerator: float, denominator: float) -> float:
    """A share of counted things; 0 when nothing was counted (silence earns nothing)."""
    return float(numerator) / float(denominator) if denominator else 0.0


def detection_scores(tp: float, n_candidate: float, n_reference: float) -> dict[str, float]:
    """Lesion detection precision, recall and F1 from summed counts (0 when undefined)."""
    return {
        "precision": ratio(tp, n_candidate),
        "recall": ratio(tp, n_reference),
        "f1": ratio(2 * tp, n_candidate + n_reference),
    }


@dataclass
class ClinicalResult:
    """A whole run: per-case scores, corpus attribute P/R/F1, detection, description,
    surveillance agreement and error counts (by kind and by significance level)."""

    per_case: list[CaseClinicalScore]
    attributes: dict[str, dict[str, float]]
    micro: dict[str, float]
    macro: dict[str, float]
    error_counts: dict[str, int]
    corpus_score: float
    signature: str
    detection: dict[str, float] = field(default_factory=dict)
    attribute_accuracy: float = 0.0
    surveillance_agreement: float = 0.0
    level_counts: dict[str, int] = field(default_factory=dict)

    def scores(self) -> list[float]:
        return [c.score for c in self.per_case]

    def as_dict(self) -> dict[str, Any]:
        return {
            "corpus_score": self.corpus_score,
            "attributes": self.attributes,
            "micro": self.micro,
            "macro": self.macro,
            "detection": self.detection,
            "attribute_accuracy": self.attribute_accuracy,
            "surveillance_agreement": self.surveillance_agreement,
            "error_counts": self.error_counts,
            "level_counts": self.level_counts,
            "signature": self.signature,
            "per_case": [c.as_dict() for c in self.per_case],
        }


CLINICAL_SIGNATURE = (
    f"clinical|findings:v{FINDINGS_SCHEMA_VERSION}|extractor:rules-v1|match:hungarian"
    "|score:matched/(matched+weighted_errors)"
    "|weights:surveillance=3,management=2,minor=1"
    "|ceilings:surveillance=0.5,management=0.75,product|table:usmstf-2020|silence:0"
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
    levels = Counter(e.level for c in per_case for e in c.errors)
    detection = np.sum([c.detection for c in per_case], axis=0) if per_case else np.zeros(3)
    description = np.sum([c.description for c in per_case], axis=0) if per_case else np.zeros(2)
    agreement = np.sum([c.surveillance for c in per_case], axis=0) if per_case else np.zeros(2)
    return ClinicalResult(
        per_case=per_case,
        attributes=agg["attributes"],  # type: ignore[arg-type]
        micro=agg["micro"],  # type: ignore[arg-type]
        macro=agg["macro"],  # type: ignore[arg-type]
        error_counts={kind: errors.get(kind, 0) for kind in ERROR_KINDS},
        corpus_score=float(np.mean([c.score for c in per_case])) if per_case else float("nan"),
        signature=CLINICAL_SIGNATURE,
        detection=detection_scores(*detection),
        attribute_accuracy=ratio(*description),
        surveillance_agreement=ratio(*agreement),
        level_counts={level: levels.get(level, 0) for level in LEVELS},
    )
