"""The colonoscopy finding metric as a text metric: the severity-weighted clinical score,
attribute micro F1, lesion detection, attribute accuracy and surveillance agreement.

Each candidate is scored against the case's ground-truth findings where present, else
against its first reference (findings extracted from it), by `metrics.clinical`.
"clinical" is the mean per-case severity-weighted score (bounded per case by the ceilings
of its significant errors; a silent report scores 0);
"clinical-F1" is micro F1 over lesion attributes from summed per-case counts. Detection
("lesion-precision", "lesion-recall", "lesion-F1") and description ("attribute-accuracy"
on matched lesions) are apart, and "surveillance-agreement" is the share of cases whose
USMSTF 2020 interval, computed from the report's findings, is the reference's. Every
corpus score is a function of summed per-case counts, so the paired bootstrap recomputes
it exactly on each resample. The per-case records (graded errors, findings, intervals) stay
in `TextScores.details["clinical"]` for drill-down views; `docs/clinical-metric.md` is the
taxonomy and the formulas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metrics.base import CaseTexts, MetricOptions, MetricScores, Resampling, TextMetric, TextScores
from metrics.significance import MEAN, MICRO_F1, Aggregate

# Benchmark tasks whose references are colonoscopy reports (the metric's domain).
CLINICAL_TASKS = ("report", "video-report")
_TRUTH = "|truth:case-findings-where-present-else-first-reference"


class RatioAggregate(Aggregate):
    """Summed numerator over summed denominator; 0 when nothing was counted (a system that
    states no lesion earns no precision)."""

    label = "ratio of summed per-case counts (0 when none counted)"

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        sums = np.atleast_2d(sums)
        numerator, denominator = sums[:, 0], sums[:, 1]
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, numerator / safe, 0.0)


RATIO = RatioAggregate()


@dataclass(frozen=True)
class CountColumn:
    """A column as a ratio of per-case counts: statistic rows are (numerator, denominator)."""

    description: str
    numerator: Any  # per-case score record -> number
    denominator: Any


# The detection / description / surveillance columns, in table order.
COUNT_COLUMNS: dict[str, CountColumn] = {
    "lesion-precision": CountColumn(
        "matched lesions / lesions in the report",
        lambda c: c.detection[0],
        lambda c: c.detection[1],
    ),
    "lesion-recall": CountColumn(
        "matched lesions / lesions in the reference",
        lambda c: c.detection[0],
        lambda c: c.detection[2],
    ),
    "lesion-F1": CountColumn(
        "2 x matched lesions / (report lesions + reference lesions)",
        lambda c: 2 * c.detection[0],
        lambda c: c.detection[1] + c.detection[2],
    ),
    "attribute-accuracy": CountColumn(
        "attributes right / attributes the reference gives, on matched lesions",
        lambda c: c.description[0],
        lambda c: c.description[1],
    ),
    "surveillance-agreement": CountColumn(
        "cases whose USMSTF 2020 interval from the report's findings is the reference's / "
        "cases where the table decides the reference's",
        lambda c: c.surveillance[0],
        lambda c: c.surveillance[1],
    ),
}


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


def count_statistics(scores: Sequence[Any], column: str) -> np.ndarray:
    """Per case (numerator, denominator) of one count column."""
    spec = COUNT_COLUMNS[column]
    return np.array(
        [[spec.numerator(c), spec.denominator(c)] for c in scores], dtype=np.float64
    ).reshape(len(scores), 2)


def _per_case_ratio(stats: np.ndarray) -> np.ndarray:
    # Per case, 0/0 is "nothing to count here" (NaN); the corpus ratio decides the score.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            stats[:, 1] > 0, stats[:, 0] / np.where(stats[:, 1] > 0, stats[:, 1], 1), np.nan
        )


class Clinical(TextMetric):
    group = "clinical"
    columns = ("clinical", "clinical-F1", *COUNT_COLUMNS)
    default = True
    tasks = CLINICAL_TASKS
    description = "the colonoscopy finding metric"
    labels = {
        "clinical": "Clinical score",
        "clinical-F1": "Clinical attribute F1",
        "lesion-precision": "Lesion precision",
        "lesion-recall": "Lesion recall",
        "lesion-F1": "Lesion F1",
        "attribute-accuracy": "Attribute accuracy",
        "surveillance-agreement": "Surveillance agreement",
    }

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
        per_case = {
            "clinical": np.array([x.score for x in scores], dtype=np.float64),
            "clinical-F1": np.array([float(MICRO_F1(row, 1)[0]) for row in counts]),
        }
        corpus = {"clinical-F1": float(MICRO_F1(counts.sum(axis=0), texts.n_cases)[0])}
        blocks = [counts]
        for column in COUNT_COLUMNS:
            stats = count_statistics(scores, column)
            blocks.append(stats)
            per_case[column] = _per_case_ratio(stats)
            corpus[column] = float(RATIO(stats.sum(axis=0), texts.n_cases)[0])
        return MetricScores(
            per_case=per_case,
            corpus=corpus,
            # Columns: attribute [tp, pred, gold], then (numerator, denominator) per count column.
            stats=np.concatenate(blocks, axis=1),
            detail=scores,
        )

    def signature(self, column: str, options: MetricOptions) -> str:
        from metrics.clinical import CLINICAL_SIGNATURE

        rest = CLINICAL_SIGNATURE.split("|", 1)[1]
        if column == "clinical-F1":
            return "clinical-F1|micro over lesion attributes|" + rest + _TRUTH
        if column in COUNT_COLUMNS:
            return f"{column}|{COUNT_COLUMNS[column].description}|" + rest + _TRUTH
        return CLINICAL_SIGNATURE + _TRUTH

    def aggregate(self, column: str) -> Aggregate:
        if column == "clinical-F1":
            return MICRO_F1
        return RATIO if column in COUNT_COLUMNS else MEAN

    def resampling(
        self, column: str, runs: Mapping[str, TextScores], options: MetricOptions
    ) -> Resampling:
        """Each column's own slice of the per-case counts (the mean for "clinical")."""
        if column == "clinical":
            return MEAN, {s: r.results[column].per_case for s, r in runs.items()}
        if column == "clinical-F1":
            return MICRO_F1, {s: r.stats[self.group][:, :3] for s, r in runs.items()}
        start = 3 + 2 * list(COUNT_COLUMNS).index(column)
        return RATIO, {s: r.stats[self.group][:, start : start + 2] for s, r in runs.items()}

    def binary_outcomes(self, column: str, scores: TextScores) -> np.ndarray | None:
        """Surveillance agreement per decided case; lesion recall as "the lesion was
        detected" when no case has more than one reference lesion. Both count cases the
        reference decides, the same for every system."""
        if column not in ("surveillance-agreement", "lesion-recall"):
            return None
        start = 3 + 2 * list(COUNT_COLUMNS).index(column)
        stats = scores.stats[self.group][:, start : start + 2]
        if (stats[:, 1] > 1).any():
            return None
        return np.where(stats[:, 1] == 1, stats[:, 0], np.nan)

    def resampling_note(self, options: MetricOptions) -> str:
        return (
            "clinical-F1, lesion detection, attribute accuracy and surveillance agreement "
            "from summed per-case counts"
        )
