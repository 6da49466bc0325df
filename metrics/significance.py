"""Paired significance on per-case statistics: bootstrap intervals, approximate randomization.

Every metric is given as a per-case statistic matrix (cases x d) plus its `Aggregate`, which
turns column sums into the corpus score: the mean for per-case scores, micro F1 from
summed counts, BLEU from summed n-gram statistics (`metrics.bleu`, so a resample
recomputes corpus BLEU, never an average of sentence BLEU); or a `ResampledMetric` that
recomputes itself per resample (CIDEr). All systems share the same resamples (paired),
drawn from one seeded generator; the seed, resample count and confidence level travel with
every result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# The multiple-comparison vocabulary, read by every table, page and command that offers a
# correction: name -> statsmodels `multipletests` method (None: p-values as they are), applied
# by `correct_p_values`; and the name as tables print it.
CORRECTIONS: dict[str, str | None] = {"holm": "holm", "bh": "fdr_bh", "none": None}
CORRECTION_LABELS: dict[str, str] = {"holm": "Holm", "bh": "Benjamini-Hochberg", "none": "none"}


class Aggregate(ABC):
    """How column sums of a per-case statistic become a corpus score.

    Each metric declares its own (`metrics.base.TextMetric.aggregate`); the bootstrap and
    approximate randomization below resample any of them the same way.
    """

    label: str = ""
    # True: the statistics are `ResampledMetric`s that recompute themselves per resample.
    resampled: bool = False

    @abstractmethod
    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        """Corpus scores for each row of summed statistics (rows: resamples)."""


class MeanAggregate(Aggregate):
    label = "mean of per-case scores"

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        return np.atleast_2d(sums)[:, 0] / n_cases


class MicroF1Aggregate(Aggregate):
    label = "micro F1 from summed per-case counts"

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        sums = np.atleast_2d(sums)
        # Columns: true positives, predicted, gold; micro F1 = 2 TP / (pred + gold).
        tp, predicted, gold = sums[:, 0], sums[:, 1], sums[:, 2]
        total = predicted + gold
        safe = np.where(total > 0, total, 1.0)
        return np.where(total > 0, 2.0 * tp / safe, 1.0)


class ResampledAggregate(Aggregate):
    """For metrics whose corpus score is not a function of summed per-case statistics
    (CIDEr's document frequencies change with the resample): values are `ResampledMetric`s."""

    label = "recomputed on each resample (document frequencies included)"
    resampled = True

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        raise TypeError("a resampled metric recomputes itself; it has no summed statistics")


MEAN = MeanAggregate()
MICRO_F1 = MicroF1Aggregate()
RESAMPLED = ResampledAggregate()


@dataclass
class ResampledMetric:
    """A metric recomputed by its own function on each resample of case multiplicities.

    `per_case` serves approximate randomization, where the cases (and so the references
    and any document frequencies) stay fixed and the corpus score is their mean.
    """

    per_case: np.ndarray
    resample: Callable[[np.ndarray], np.ndarray]
    # The corpus score on the cases as they are (default: the mean of per_case).
    point: float | None = None

    @property
    def n_cases(self) -> int:
        return len(self.per_case)

    def estimate(self) -> float:
        return float(np.mean(self.per_case)) if self.point is None else float(self.point)


@dataclass
class Interval:
    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class MetricComparison:
    """One metric: every system's interval and, against the baseline, difference and p."""

    metric: str
    aggregate: str
    systems: dict[str, Interval]
    baseline: str | None
    differences: dict[str, Interval] = field(default_factory=dict)
    p_values: dict[str, float] = field(default_factory=dict)
    p_corrected: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "aggregate": self.aggregate,
            "baseline": self.baseline,
            "systems": {k: v.as_dict() for k, v in self.systems.items()},
            "differences": {k: v.as_dict() for k, v in self.differences.items()},
            "p_values": self.p_values,
            "p_corrected": self.p_corrected,
        }


@dataclass
class SignificanceSettings:
    n_resamples: int = 1000
    n_permutations: int = 1000
    seed: int = 0
    confidence: float = 0.95
    correction: str = "holm"  # holm | bh | none
    family: str = "per-metric"  # per-metric | all
    method: str = "paired bootstrap (percentile, cases resampled); paired approximate randomization"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_matrix(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def _n_rows(values: Any) -> int:
    if isinstance(values, ResampledMetric):
        return values.n_cases
    return _as_matrix(values).shape[0]


def _check(per_system: Mapping[str, Any]) -> int:
    sizes = {name: _n_rows(v) for name, v in per_system.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"systems must be scored on the same cases; case counts differ: {sizes}")
    if not sizes:
        raise ValueError("no systems given")
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError("no cases to resample")
    return n


def resample_counts(n_cases: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each case appears in each bootstrap resample (rows sum to n_cases)."""
    return rng.multinomial(n_cases, np.full(n_cases, 1.0 / n_cases), size=n_resamples).astype(
        np.float64
    )


def _percentile(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_bootstrap_many(
    metrics: Mapping[str, tuple[Aggregate, Mapping[str, np.ndarray]]],
    baseline: str | None,
    settings: SignificanceSettings,
    *,
    chunk: int = 1000,
) -> dict[str, MetricComparison]:
    """Bootstrap every metric of every system on one shared set of case resamples.

    `metrics`: name -> (aggregate, {system: per-case statistic (cases,) or (cases, d)}).
    """
    if not metrics:
        return {}
    layout: list[tuple[str, str, int, int]] = []  # metric, system, first column, width
    blocks: list[np.ndarray] = []
    n_cases = None
    col = 0
    for metric, (_, per_system) in metrics.items():
        n = _check(per_system)
        if n_cases is not None and n != n_cases:
            raise ValueError(f"metric {metric!r} has {n} cases, others {n_cases}")
        n_cases = n
        if baseline is not None and baseline not in per_system:
            raise ValueError(f"baseline system {baseline!r} has no scores for {metric!r}")
        for system, values in per_system.items():
            if isinstance(values, ResampledMetric):
                layout.append((metric, system, -1, 0))
                continue
            matrix = _as_matrix(values)
            blocks.append(matrix)
            layout.append((metric, system, col, matrix.shape[1]))
            col += matrix.shape[1]
    assert n_cases is not None
    data = np.concatenate(blocks, axis=1) if blocks else np.zeros((n_cases, 0))
    if any(start < 0 for _, _, start, _ in layout):
        # Small chunks: a resampled metric's shared side (CIDEr's idf) is computed once
        # per chunk for every system, and its per-chunk arrays stay small.
        chunk = min(chunk, 100)
    rng = np.random.default_rng(settings.seed)
    samples: dict[tuple[str, str], list[np.ndarray]] = {(m, s): [] for m, s, _, _ in layout}
    done = 0
    while done < settings.n_resamples:
        size = min(chunk, settings.n_resamples - done)
        counts = resample_counts(n_cases, size, rng)
        sums = counts @ data
        for metric, system, start, width in layout:
            aggregate = metrics[metric][0]
            if start < 0:
                samples[(metric, system)].append(metrics[metric][1][system].resample(counts))
            else:
                samples[(metric, system)].append(aggregate(sums[:, start : start + width], n_cases))
        done += size
    full = data.sum(axis=0, keepdims=True)
    out: dict[str, MetricComparison] = {}
    for metric, (aggregate, per_system) in metrics.items():
        comparison = MetricComparison(metric, aggregate.label, {}, baseline)
        drawn = {s: np.concatenate(samples[(metric, s)]) for s in per_system}
        point = {}
        for m, s, start, width in layout:
            if m != metric:
                continue
            if start < 0:
                point[s] = per_system[s].estimate()
            else:
                point[s] = float(aggregate(full[:, start : start + width], n_cases)[0])
        for system in per_system:
            low, high = _percentile(drawn[system], settings.confidence)
            comparison.systems[system] = Interval(point[system], low, high)
        if baseline is not None:
            for system in per_system:
                if system == baseline:
                    continue
                diff = drawn[system] - drawn[baseline]
                low, high = _percentile(diff, settings.confidence)
                comparison.differences[system] = Interval(
                    point[system] - point[baseline], low, high
                )
        out[metric] = comparison
    return out


def paired_bootstrap(
    per_system: Mapping[str, np.ndarray],
    *,
    baseline: str | None = None,
    aggregate: Aggregate = MEAN,
    settings: SignificanceSettings | None = None,
    metric: str = "score",
) -> MetricComparison:
    """Bootstrap intervals for one metric (and differences to `baseline` when given)."""
    settings = settings or SignificanceSettings()
    return paired_bootstrap_many({metric: (aggregate, per_system)}, baseline, settings)[metric]


def approximate_randomization(
    system: np.ndarray,
    baseline: np.ndarray,
    *,
    aggregate: Aggregate = MEAN,
    n_permutations: int = 1000,
    seed: int = 0,
    chunk: int = 2000,
) -> float:
    """Two-sided paired approximate randomization p-value, (r + 1) / (R + 1).

    Each trial swaps the two systems' outputs on a random half of the cases (a fair coin per
    case) and recomputes the corpus score difference from the per-case statistics.
    """
    a, b = _as_matrix(system), _as_matrix(baseline)
    if a.shape != b.shape:
        raise ValueError(f"paired statistics differ in shape: {a.shape} vs {b.shape}")
    n = a.shape[0]
    observed = abs(float(aggregate(a.sum(0), n)[0] - aggregate(b.sum(0), n)[0]))
    delta = b - a
    sum_a, sum_b = a.sum(0), b.sum(0)
    rng = np.random.default_rng(seed)
    at_least = 0
    done = 0
    while done < n_permutations:
        size = min(chunk, n_permutations - done)
        swaps = rng.integers(0, 2, size=(size, n)).astype(np.float64)
        shift = swaps @ delta
        diff = aggregate(sum_a + shift, n) - aggregate(sum_b - shift, n)
        # A small tolerance keeps ties (identical systems) counted as extreme.
        at_least += int(np.sum(np.abs(diff) >= observed - 1e-12))
        done += size
    return (at_least + 1) / (n_permutations + 1)


def correct_p_values(p_values: Sequence[float], method: str = "holm") -> list[float]:
    """Holm or Benjamini-Hochberg adjusted p-values (statsmodels multipletests)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose from {sorted(CORRECTIONS)}")
    if not p_values:
        return []
    if CORRECTIONS[method] is None:
        return [float(p) for p in p_values]
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), method=CORRECTIONS[method])[1]]


def compare_systems(
    metrics: Mapping[str, tuple[Aggregate, Mapping[str, np.ndarray]]],
    baseline: str,
    settings: SignificanceSettings | None = None,
) -> dict[str, MetricComparison]:
    """Intervals, differences to the baseline, AR p-values and corrected p-values.

    The correction family is each metric's set of system-vs-baseline comparisons
    (`family="per-metric"`) or every comparison of the table (`family="all"`).
    """
    settings = settings or SignificanceSettings()
    table = paired_bootstrap_many(metrics, baseline, settings)
    for index, (metric, (aggregate, per_system)) in enumerate(metrics.items()):
        exact = aggregate.resampled
        for j, system in enumerate(s for s in per_system if s != baseline):
            table[metric].p_values[system] = approximate_randomization(
                per_system[system].per_case if exact else per_system[system],
                per_system[baseline].per_case if exact else per_system[baseline],
                aggregate=MEAN if exact else aggregate,
                n_permutations=settings.n_permutations,
                # One seed per comparison, derived from the recorded seed.
                seed=settings.seed + 1000 * index + j + 1,
            )
    if settings.family == "all":
        keys = [(m, s) for m in table for s in table[m].p_values]
        adjusted = correct_p_values([table[m].p_values[s] for m, s in keys], settings.correction)
        for (m, s), p in zip(keys, adjusted, strict=True):
            table[m].p_corrected[s] = p
    else:
        for comparison in table.values():
            names = list(comparison.p_values)
            adjusted = correct_p_values(
                [comparison.p_values[s] for s in names], settings.correction
            )
            comparison.p_corrected = dict(zip(names, adjusted, strict=True))
    return table


def significance_mark(p: float | None) -> str:
    """*** p < 0.001, ** p < 0.01, * p < 0.05 (on the corrected p-value)."""
    if p is None or np.isnan(p):
        return ""
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return ""
