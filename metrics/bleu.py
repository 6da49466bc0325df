"""BLEU-1..4 as pycocoevalcap computes it, from per-case sufficient statistics.

Each case keeps [testlen, reflen (closest), guess_1..n, correct_1..n]; the corpus score,
and every bootstrap resample, is computed from their sums, never by averaging sentence
BLEU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from metrics.base import (
    PTB_SIGNATURE,
    CaseTexts,
    MetricOptions,
    MetricScores,
    NgramCache,
    TextMetric,
    library_version,
)
from metrics.significance import Aggregate

BLEU_N = 4


def bleu_stats(
    candidate: str,
    references: Sequence[str],
    n: int = BLEU_N,
    grams: NgramCache | None = None,
) -> np.ndarray:
    """[testlen, reflen (closest), guess_1..n, correct_1..n] exactly as pycocoevalcap cooks."""
    count_of = grams if grams is not None and grams.n == n else NgramCache(n)
    ref_lens = []
    max_counts: dict[tuple[str, ...], int] = {}
    for ref in references:
        ref_lens.append(len(ref.split()))
        for gram, count in count_of(ref).items():
            if count > max_counts.get(gram, 0):
                max_counts[gram] = count
    testlen = len(candidate.split())
    reflen = min((abs(length - testlen), length) for length in ref_lens)[1]
    guess = [max(0, testlen - k + 1) for k in range(1, n + 1)]
    correct = [0] * n
    for gram, count in count_of(candidate).items():
        correct[len(gram) - 1] += min(max_counts.get(gram, 0), count)
    return np.array([testlen, reflen, *guess, *correct], dtype=np.float64)


_SMALL, _TINY = 1e-9, 1e-15


def bleu_from_stats(stats: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    """Corpus BLEU-1..n from summed statistics (rows are cases; 2-D input is summed).

    `stats` may be (cases, 2+2n) or (resamples, 2+2n) of already summed rows when
    `summed=True` semantics are wanted: pass `stats.sum(axis=0, keepdims=True)`.
    """
    stats = np.atleast_2d(stats)
    testlen, reflen = stats[:, 0], stats[:, 1]
    guess, correct = stats[:, 2 : 2 + n], stats[:, 2 + n : 2 + 2 * n]
    ratios = (correct + _TINY) / (guess + _SMALL)
    cumulative = np.cumprod(ratios, axis=1)
    bleus = cumulative ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)
    return bleus * penalty[:, None]


def corpus_bleu(stats: np.ndarray, n: int = BLEU_N) -> np.ndarray:
    return bleu_from_stats(np.asarray(stats).sum(axis=0, keepdims=True), n)[0]


@dataclass(frozen=True)
class BleuAggregate(Aggregate):
    """BLEU-`order` of summed per-case statistics."""

    order: int = BLEU_N

    @property
    def label(self) -> str:  # type: ignore[override]
        return f"BLEU-{self.order} from summed statistics"

    def __call__(self, sums: np.ndarray, n_cases: int) -> np.ndarray:
        return bleu_from_stats(np.atleast_2d(sums), BLEU_N)[:, self.order - 1]


def bleu_aggregate(order: int) -> BleuAggregate:
    return BleuAggregate(order)


class Bleu(TextMetric):
    group = "bleu"
    columns = tuple(f"BLEU-{k}" for k in range(1, BLEU_N + 1))
    default = True
    uses_ptb_tokens = True

    def score(self, texts: CaseTexts) -> MetricScores:
        stats = np.stack(
            [
                bleu_stats(c, r, grams=texts.grams)
                for c, r in zip(texts.tok_candidates, texts.tok_references, strict=True)
            ]
        )
        corpus, per_case = corpus_bleu(stats), bleu_from_stats(stats)
        return MetricScores(
            per_case={name: per_case[:, k] for k, name in enumerate(self.columns)},
            corpus={name: float(corpus[k]) for k, name in enumerate(self.columns)},
            stats=stats,
        )

    def signature(self, column: str, options: MetricOptions) -> str:
        return (
            f"{column}|pycocoevalcap:{library_version('pycocoevalcap')}|{PTB_SIGNATURE}"
            "|reflen:closest|corpus:summed-stats"
        )

    def aggregate(self, column: str) -> Aggregate:
        return bleu_aggregate(int(column.split("-")[1]))

    def resampling_note(self, options: MetricOptions) -> str:
        return "BLEU recomputed from summed n-gram statistics in each resample"
