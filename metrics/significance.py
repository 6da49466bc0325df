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
# Which comparisons one correction covers: each metric's system-vs-baseline comparisons, or
# every comparison of the table; and the words a footer uses for each.
FAMILIES: dict[str, str] = {
    "per-metric": "per metric (each metric's comparisons with the baseline)",
    "all": "over all comparisons of the table (every metric and system)",
}
# McNemar's test is exact (binomial on the discordant pairs) below this many discordant cases.
MCNEMAR_EXACT_BELOW = 25


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
    # Why there is no interval (low and high NaN), for the table's footer; "" when there is.
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def brackets(self) -> bool:
        """The interval contains its estimate (a NaN interval does not)."""
        return bool(self.low <= self.estimate + 1e-12 and self.estimate <= self.high + 1e-12)


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
    # How the intervals were read off the resamples ("percentile" or "bias-corrected
    # percentile") and the paired test behind the p-values.
    interval_method: str = "percentile"
    test: str = "approximate randomization"

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "aggregate": self.aggregate,
            "baseline": self.baseline,
            "systems": {k: v.as_dict() for k, v in self.systems.items()},
            "differences": {k: v.as_dict() for k, v in self.differences.items()},
            "p_values": self.p_values,
            "p_corrected": self.p_corrected,
            "interval_method": self.interval_method,
            "test": self.test,
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


def bootstrap_interval(
    samples: np.ndarray, estimate: float, confidence: float, *, bias_corrected: bool = False
) -> Interval:
    """The interval of `estimate` from its bootstrap resamples; NaN bounds and a note when
    the resamples cannot give one that contains the estimate.

    Percentile by default. `bias_corrected`: Efron's bias-corrected (BC) percentile interval,
    for statistics whose resamples sit systematically to one side of the estimate (CIDEr
    recomputed with each resample's document frequencies: a resample repeats cases, so
    n-grams look commoner and CIDEr lower). BC shifts the percentiles by z0, the normal
    quantile of the share of resamples below the estimate; with (almost) every resample on
    one side, z0 is unbounded and no interval is given.
    """
    samples = np.asarray(samples, dtype=np.float64)
    finite = samples[np.isfinite(samples)]
    if not np.isfinite(estimate):
        return Interval(estimate, np.nan, np.nan, "no finite estimate")
    if len(finite) < len(samples) or not len(finite):
        return Interval(estimate, np.nan, np.nan, "some resamples have no finite value")
    alpha = (1 - confidence) / 2
    if not bias_corrected:
        low, high = _percentile(finite, confidence)
    else:
        from scipy.stats import norm

        # Resampled statistics may be computed in float32: ties within that precision.
        close = np.isclose(finite, estimate, rtol=1e-5, atol=1e-9)
        below = float(np.mean((finite < estimate) & ~close) + 0.5 * np.mean(close))
        if not alpha < below < 1 - alpha:
            side = "above" if below >= 1 - alpha else "below"
            share = below if side == "above" else 1 - below
            return Interval(
                estimate,
                np.nan,
                np.nan,
                f"the estimate lies {side} {100 * share:.1f}% of its resampled values, so the "
                "resamples give no interval around it",
            )
        z0 = float(norm.ppf(below))
        z = float(norm.ppf(1 - alpha))
        levels = norm.cdf([2 * z0 - z, 2 * z0 + z])
        low, high = (float(v) for v in np.quantile(finite, levels))
    interval = Interval(estimate, low, high)
    if not interval.brackets:
        return Interval(
            estimate,
            np.nan,
            np.nan,
            f"the {int(round(100 * confidence))}% interval of the resamples "
            f"[{low:.4g}, {high:.4g}] does not contain the estimate",
        )
    return interval


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
        corrected = aggregate.resampled
        comparison = MetricComparison(
            metric,
            aggregate.label,
            {},
            baseline,
            interval_method="bias-corrected percentile" if corrected else "percentile",
        )
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
            comparison.systems[system] = bootstrap_interval(
                drawn[system], point[system], settings.confidence, bias_corrected=corrected
            )
        if baseline is not None:
            for system in per_system:
                if system == baseline:
                    continue
                comparison.differences[system] = bootstrap_interval(
                    drawn[system] - drawn[baseline],
                    point[system] - point[baseline],
                    settings.confidence,
                    bias_corrected=corrected,
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
    if CORRECTIONS[method] == "holm":
        # statsmodels' Holm runs gc.collect() on every call (about 0.2 s in a process holding
        # a study's tables); the same step-down sum here: p_(i) * (m - i + 1), running max.
        order = np.argsort(p_values, kind="stable")
        ranked = np.asarray(p_values, dtype=float)[order] * np.arange(len(p_values), 0, -1)
        adjusted = np.empty(len(p_values))
        adjusted[order] = np.minimum(np.maximum.accumulate(ranked), 1.0)
        return [float(p) for p in adjusted]
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), method=CORRECTIONS[method])[1]]


def mcnemar_test(system: np.ndarray, baseline: np.ndarray) -> tuple[float, str]:
    """Two-sided McNemar test of paired 0/1 outcomes (NaN: the case does not count).

    Exact (binomial on the discordant cases, p = 0.5) below MCNEMAR_EXACT_BELOW discordant
    cases, else the chi-square statistic with Edwards' continuity correction. Returns the
    p-value and the variant used, for the footer.
    """
    a = np.asarray(system, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in shape: {a.shape} vs {b.shape}")
    both = ~(np.isnan(a) | np.isnan(b))
    a, b = a[both], b[both]
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("McNemar's test needs outcomes of 0 or 1 per case")
    only_system = int(np.sum((a == 1) & (b == 0)))
    only_baseline = int(np.sum((a == 0) & (b == 1)))
    discordant = only_system + only_baseline
    if discordant == 0:
        return 1.0, "exact"
    if discordant < MCNEMAR_EXACT_BELOW:
        from scipy.stats import binomtest

        return float(binomtest(only_system, discordant, 0.5).pvalue), "exact"
    from scipy.stats import chi2

    statistic = (abs(only_system - only_baseline) - 1) ** 2 / discordant
    return float(chi2.sf(statistic, 1)), "chi-square"


def compare_systems(
    metrics: Mapping[str, tuple[Aggregate, Mapping[str, np.ndarray]]],
    baseline: str,
    settings: SignificanceSettings | None = None,
    *,
    binary: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    outside_family: Sequence[str] = (),
) -> dict[str, MetricComparison]:
    """Intervals, differences to the baseline, paired p-values and corrected p-values.

    The p-values are paired approximate randomization, except for the columns in `binary`
    (column -> system -> per-case 0/1 outcome, NaN where the case does not count), which
    get McNemar's test. The correction family is each metric's set of system-vs-baseline
    comparisons (`family="per-metric"`) or every comparison of the table (`family="all"`);
    systems in `outside_family` (a copy of the references: a ceiling, not a contender) keep
    their uncorrected p-value and stay out of every family.
    """
    settings = settings or SignificanceSettings()
    if settings.family not in FAMILIES:
        raise ValueError(
            f"unknown correction family {settings.family!r}; use one of {', '.join(FAMILIES)}"
        )
    binary = binary or {}
    table = paired_bootstrap_many(metrics, baseline, settings)
    for index, (metric, (aggregate, per_system)) in enumerate(metrics.items()):
        exact = aggregate.resampled
        outcomes = binary.get(metric)
        variants = set()
        for j, system in enumerate(s for s in per_system if s != baseline):
            if outcomes is not None:
                p, variant = mcnemar_test(outcomes[system], outcomes[baseline])
                table[metric].p_values[system] = p
                variants.add(variant)
                continue
            table[metric].p_values[system] = approximate_randomization(
                per_system[system].per_case if exact else per_system[system],
                per_system[baseline].per_case if exact else per_system[baseline],
                aggregate=MEAN if exact else aggregate,
                n_permutations=settings.n_permutations,
                # One seed per comparison, derived from the recorded seed.
                seed=settings.seed + 1000 * index + j + 1,
            )
        if outcomes is not None:
            table[metric].test = "McNemar (" + " / ".join(sorted(variants) or ["exact"]) + ")"
    outside = set(outside_family)
    if settings.family == "all":
        families = [[(m, s) for m in table for s in table[m].p_values if s not in outside]]
    else:
        families = [
            [(m, s) for s in comparison.p_values if s not in outside]
            for m, comparison in table.items()
        ]
    for m in table:
        for s in outside & set(table[m].p_values):
            table[m].p_corrected[s] = table[m].p_values[s]
    for keys in families:
        adjusted = correct_p_values([table[m].p_values[s] for m, s in keys], settings.correction)
        for (m, s), p in zip(keys, adjusted, strict=True):
            table[m].p_corrected[s] = p
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
