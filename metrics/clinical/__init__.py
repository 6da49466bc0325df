"""Clinical polyp-finding metric: findings vocabulary, extractor, surveillance table, scores."""

from metrics.clinical.extract import (
    FINDINGS_SCHEMA,
    FINDINGS_SCHEMA_VERSION,
    extract_findings,
)
from metrics.clinical.scoring import (
    CLINICAL_SIGNATURE,
    ERROR_KINDS,
    LEVEL_LABELS,
    LEVEL_WEIGHTS,
    LEVELS,
    CaseClinicalScore,
    ClinicalResult,
    FindingError,
    aggregate_counts,
    asserts_findings,
    detection_scores,
    normalize_findings,
    score_clinical,
    score_findings,
)
from metrics.clinical.surveillance import (
    ROWS,
    SurveillanceRecommendation,
    surveillance_interval,
)
from metrics.clinical.vocab import size_class

__all__ = [
    "CLINICAL_SIGNATURE",
    "ERROR_KINDS",
    "FINDINGS_SCHEMA",
    "FINDINGS_SCHEMA_VERSION",
    "LEVELS",
    "LEVEL_LABELS",
    "LEVEL_WEIGHTS",
    "ROWS",
    "CaseClinicalScore",
    "ClinicalResult",
    "FindingError",
    "SurveillanceRecommendation",
    "aggregate_counts",
    "asserts_findings",
    "detection_scores",
    "extract_findings",
    "normalize_findings",
    "score_clinical",
    "score_findings",
    "size_class",
    "surveillance_interval",
]
