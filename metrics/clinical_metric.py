"""The colonoscopy finding metric as a text metric: per-case clinical score and micro F1.

Each candidate is scored against the case's ground-truth findings where present, else
against its first reference (findings extracted from it), by `metrics.clinical`.
"clinical" is the mean per-case score; "clinical-F1" is micro F1 over lesion attributes
from summed per-case counts. The per-case records (errors, findings) stay in
`TextScores.details["clinical"]` for drill-down views.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from metrics.base import CaseTexts, MetricOptions, MetricScores, TextMetric
from metrics.significance import MEAN, MICRO_F1, Aggregate

# Benchmark tasks whose references are colonoscopy reports (the metric's domain).
CLINICAL_TASKS = ("report", "video-report")
_TRUTH = "|truth:case-findings-where-present-else-first-reference"


def attribute_counts(scores: Sequence[Any]) -> np.ndarray:
    """Per case [true positives, candidate values, reference values] over lesion attributes.

    `counts` holds the lesion pairing under "lesion" and one entry per lesion attribute.
    """
    return np.array(
        [
            [sum(n[k] for a, n in c.counts.items() if a != "lesion") for k in range(3)]
            for c in scores
        ],
        dtype=np.float64,
    ).reshape(len(scores), 3)


class Clinical(TextMetric):
    group = "clinical"
    columns = ("clinical", "clinical-F1")
    default = True
    tasks = CLINICAL_TASKS
    description = "the colonoscopy finding metric"

    def score(self, texts: CaseTexts) -> MetricScores:
        from metrics.clinical import score_findings

        findings = texts.findings or [None] * texts.n_cases
        scores = [
            score_findings(candidate, truth if truth else refs[0])
            for candidate, refs, truth in zip(
                texts.candidates, texts.references, findings, strict=True
            )
        ]
        counts = attribute_counts(scores)
        return MetricScores(
            per_case={
                "clinical": np.array([x.score for x in scores], dtype=np.float64),
                "clinical-F1": np.array([float(MICRO_F1(row, 1)[0]) for row in counts]),
            },
            corpus={"clinical-F1": float(MICRO_F1(counts.sum(axis=0), texts.n_cases)[0])},
            stats=counts,
            detail=scores,
        )

    def signature(self, column: str, options: MetricOptions) -> str:
        from metrics.clinical import CLINICAL_SIGNATURE

        if column == "clinical-F1":
            return (
                "clinical-F1|micro over lesion attributes|"
                + CLINICAL_SIGNATURE.split("|", 1)[1]
                + _TRUTH
            )
        return CLINICAL_SIGNATURE + _TRUTH

    def aggregate(self, column: str) -> Aggregate:
        return MICRO_F1 if column == "clinical-F1" else MEAN

    def resampling_note(self, options: MetricOptions) -> str:
        return "clinical-F1 from summed attribute counts"
