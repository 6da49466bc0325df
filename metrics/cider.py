"""CIDEr-D as pycocoevalcap computes it, and exactly per bootstrap resample.

Per-case scores use the document frequencies of the whole reference set, as pycocoevalcap
does; `CiderResampler` recomputes the corpus score of a resampled case list with that
resample's document frequencies (the leaderboard's "exact" resampling).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metrics.base import (
    PTB_SIGNATURE,
    CaseTexts,
    MetricOptions,
    MetricScores,
    NgramCache,
    Resampling,
    TextMetric,
    TextScores,
    library_version,
)
from metrics.significance import MEAN, RESAMPLED, ResampledMetric


def cider_scores(
    candidates: Sequence[str],
    references: Sequence[Sequence[str]],
    grams: NgramCache | None = None,
) -> np.ndarray:
    """Per-case CIDEr exactly as pycocoevalcap computes it (document frequency over refs)."""
    n, sigma = 4, 6.0
    count_of = grams if grams is not None and grams.n == n else NgramCache(n)
    cooked_refs = [[count_of(r) for r in refs] for refs in references]
    cooked_cands = [count_of(c) for c in candidates]
    df: dict[tuple[str, ...], float] = {}
    for refs in cooked_refs:
        for gram in {g for ref in refs for g in ref}:
            df[gram] = df.get(gram, 0.0) + 1.0
    log_n = math.log(float(len(cooked_refs)))

    def vec(counts: dict[tuple[str, ...], int]) -> tuple[list[dict], list[float], int]:
        vecs: list[dict] = [{} for _ in range(n)]
        norms = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            weight = float(tf) * (log_n - math.log(max(1.0, df.get(gram, 0.0))))
            vecs[k][gram] = weight
            norms[k] += weight * weight
            if k == 1:
                length += tf
        return vecs, [math.sqrt(x) for x in norms], length

    scores = np.zeros(len(cooked_cands))
    for i, (cand, refs) in enumerate(zip(cooked_cands, cooked_refs, strict=True)):
        vh, nh, lh = vec(cand)
        total = np.zeros(n)
        for ref in refs:
            vr, nr, lr = vec(ref)
            penalty = math.e ** (-(float(lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = 0.0
                ref_k = vr[k]
                for gram, weight in vh[k].items():
                    r = ref_k.get(gram, 0.0)
                    val += min(weight, r) * r
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total[k] += val * penalty
        scores[i] = float(np.mean(total)) / len(refs) * 10.0
    return scores


class CiderReferences:
    """The reference side of a resampled CIDEr: shared by every system scored on the cases.

    pycocoevalcap's CIDEr depends on the resample through the document frequencies of the
    reference n-grams only, and every term it sums is idf^2 times a count product. This
    keeps the reference count products as sparse matrices and, per set of resamples, the
    idf^2 vector and reference norms (cached, so the systems of one table share them).

    N-grams found in exactly the same cases share their document frequency in every
    resample, so their columns are summed into one (one column per distinct set of cases);
    n-grams found in every case have idf 0 in every resample and are dropped. The sums
    are taken in float64 before any narrowing to `dtype`.
    """

    n_order = 4
    sigma = 6.0

    def __init__(
        self,
        references: Sequence[Sequence[str]],
        grams: NgramCache | None = None,
        dtype: type = np.float64,
    ):
        from scipy import sparse

        # float32 halves the memory traffic of the resampling products (about 1e-6
        # relative error); float64 reproduces pycocoevalcap to the last digits.
        self.dtype = dtype

        k_max = self.n_order
        self.grams = grams if grams is not None and grams.n == k_max else NgramCache(k_max)
        self.references = [list(refs) for refs in references]
        self.n_cases = len(self.references)
        self.index: dict[tuple[str, ...], int] = {}
        for refs in self.references:
            for ref in refs:
                for gram in self.grams(ref):
                    self.index.setdefault(gram, len(self.index))
        cases_of: list[list[int]] = [[] for _ in range(len(self.index))]
        r_rows, r_cols, r_vals = [], [], []
        pair_case, ref_lengths = [], []
        for i, refs in enumerate(self.references):
            for column in sorted({self.index[g] for ref in refs for g in self.grams(ref)}):
                cases_of[column].append(i)
            for ref in refs:
                pair = len(pair_case)
                counts = self.grams(ref)
                # pycocoevalcap's length is the bigram count.
                ref_lengths.append(sum(tf for gram, tf in counts.items() if len(gram) == 2))
                pair_case.append(i)
                for gram, tf in counts.items():
                    r_rows.append(pair * k_max + len(gram) - 1)
                    r_cols.append(self.index[gram])
                    r_vals.append(float(tf) ** 2)
        g = len(self.index)
        self.n_pairs = len(pair_case)
        # One column per distinct set of cases; n-grams of every case are left out.
        pattern_of: dict[tuple[int, ...], int] = {}
        merge_rows, merge_cols = [], []
        for column, cases in enumerate(cases_of):
            if len(cases) == self.n_cases:
                continue
            merge_rows.append(column)
            merge_cols.append(pattern_of.setdefault(tuple(cases), len(pattern_of)))
        n_patterns = len(pattern_of)
        self.merge = sparse.csr_matrix(
            (np.ones(len(merge_rows)), (merge_rows, merge_cols)), shape=(g, n_patterns)
        )
        d_rows = [p for cases, p in pattern_of.items() for _ in cases]
        d_cols = [i for cases in pattern_of for i in cases]
        self.d_t = sparse.csr_matrix(
            (np.ones(len(d_rows), dtype=dtype), (d_rows, d_cols)), shape=(n_patterns, self.n_cases)
        )
        r = sparse.csr_matrix((r_vals, (r_rows, r_cols)), shape=(self.n_pairs * k_max, g))
        self.r = self.merged(r)
        self.pair_case = np.array(pair_case, dtype=np.int64)
        self.ref_lengths = np.array(ref_lengths, dtype=np.float64)
        self.ref_counts = np.array([len(refs) for refs in self.references], dtype=np.float64)
        self.row_case = np.repeat(self.pair_case, k_max)  # case of each (pair, order) row
        # Each (pair, order) term enters the corpus mean as 10 / (orders * references).
        self.row_weight = np.repeat(10.0 / (k_max * self.ref_counts[self.pair_case]), k_max)
        self._cached: tuple[np.ndarray, ResampleSide] | None = None

    def merged(self, matrix: Any) -> Any:
        """`matrix` (rows x n-gram columns, float64) with its columns merged, as `dtype`."""
        out = (matrix @ self.merge).tocsr()
        out.eliminate_zeros()
        return out.astype(self.dtype)

    def side(self, weights: np.ndarray) -> ResampleSide:
        """The reference side of a set of resamples (cached for the last `weights`)."""
        cached = self._cached
        if cached is not None and cached[0].shape == weights.shape:
            if np.array_equal(cached[0], weights):
                return cached[1]
        log_n = np.log(weights.sum(axis=1))  # pycocoevalcap: log of the number of entries
        df = np.asarray(self.d_t @ weights.T.astype(self.dtype))
        q = ((log_n[None, :] - np.log(np.maximum(1.0, df))) ** 2).astype(self.dtype)
        norm_r = np.sqrt(np.asarray(self.r @ q))
        # Per term: its case's multiplicity and weight over the reference norm and N.
        shared = weights.T[self.row_case].astype(self.dtype)
        shared *= (self.row_weight[:, None] / weights.sum(axis=1)[None, :]).astype(self.dtype)
        np.divide(shared, norm_r, out=shared, where=norm_r > 0)
        shared[norm_r <= 0] = 0.0  # the numerator is 0 there too
        side = ResampleSide(log_n, q, shared)
        self._cached = (weights.copy(), side)
        return side


@dataclass
class ResampleSide:
    log_n: np.ndarray  # (resamples,)
    q: np.ndarray  # (columns, resamples) idf^2 of each merged column
    shared: np.ndarray  # (pairs * orders, resamples) multiplicity * weight / reference norm


class CiderResampler:
    """Corpus CIDEr of resampled case lists, recomputed exactly (document frequencies too).

    `scores(weights)` takes (resamples, cases) multiplicities and returns corpus CIDEr for
    each row, equal to running pycocoevalcap on the list with each case repeated.
    """

    def __init__(
        self,
        candidates: Sequence[str],
        references: Sequence[Sequence[str]] | CiderReferences,
        grams: NgramCache | None = None,
    ) -> None:
        from scipy import sparse

        refs = (
            references
            if isinstance(references, CiderReferences)
            else CiderReferences(references, grams)
        )
        if len(candidates) != refs.n_cases:
            raise ValueError(f"{len(candidates)} candidates for {refs.n_cases} reference sets")
        self.refs = refs
        k_max = refs.n_order
        count_of = refs.grams
        self.n_cases = refs.n_cases
        a_rows, a_cols, a_vals, h_rows, h_cols, h_vals = [], [], [], [], [], []
        h_const = np.zeros((self.n_cases, k_max))
        hyp_lengths = np.zeros(self.n_cases)
        log_n = math.log(float(self.n_cases)) if self.n_cases else 0.0
        pair = 0
        for i, cand in enumerate(candidates):
            hyp = count_of(cand)
            hyp_lengths[i] = sum(tf for gram, tf in hyp.items() if len(gram) == 2)
            for gram, tf in hyp.items():
                k = len(gram) - 1
                column = refs.index.get(gram)
                if column is None:  # in no reference: document frequency 0 in every resample
                    h_const[i, k] += (float(tf) * log_n) ** 2
                else:
                    h_rows.append(i * k_max + k)
                    h_cols.append(column)
                    h_vals.append(float(tf) ** 2)
            for ref in refs.references[i]:
                for gram, tf in count_of(ref).items():
                    tf_h = hyp.get(gram)
                    if tf_h:
                        a_rows.append(pair * k_max + len(gram) - 1)
                        a_cols.append(refs.index[gram])
                        a_vals.append(float(min(tf_h, tf) * tf))
                pair += 1
        g = len(refs.index)
        self.a = refs.merged(
            sparse.csr_matrix((a_vals, (a_rows, a_cols)), shape=(refs.n_pairs * k_max, g))
        )
        self.h = refs.merged(
            sparse.csr_matrix((h_vals, (h_rows, h_cols)), shape=(self.n_cases * k_max, g))
        )
        delta = hyp_lengths[refs.pair_case] - refs.ref_lengths
        # Length penalty per (pair, order) term.
        self.penalties = np.repeat(np.exp(-(delta**2) / (2 * refs.sigma**2)), k_max)
        flat = h_const.reshape(-1)
        self._const_rows = np.flatnonzero(flat)
        self._const = flat[self._const_rows]
        rows = (refs.pair_case[:, None] * k_max + np.arange(k_max)[None, :]).ravel()
        # With one reference per case the terms are the candidate rows themselves.
        self._rows = None if np.array_equal(rows, np.arange(len(rows))) else rows

    def scores(self, weights: np.ndarray, chunk: int = 100) -> np.ndarray:
        """Corpus CIDEr for each row of case multiplicities (rows sum to the case count)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
        if weights.shape[1] != self.n_cases:
            raise ValueError(f"weights cover {weights.shape[1]} cases, CIDEr has {self.n_cases}")
        return np.concatenate(
            [self._scores(weights[i : i + chunk]) for i in range(0, weights.shape[0], chunk)]
        )

    def _scores(self, weights: np.ndarray) -> np.ndarray:
        side = self.refs.side(weights)
        dtype = self.refs.dtype
        terms = np.asarray(self.a @ side.q)  # sum of min(h, r) * r * idf^2 per term
        squares = np.asarray(self.h @ side.q)  # squared candidate norms
        if len(self._const_rows):
            # Candidate-only n-grams have idf log N of this resample.
            base = math.log(float(self.n_cases)) if self.n_cases > 1 else 1.0
            scale = ((side.log_n / base) ** 2).astype(dtype)
            squares[self._const_rows] += self._const.astype(dtype)[:, None] * scale[None, :]
        norm_h = np.sqrt(squares, out=squares)
        inverse = np.divide(1.0, norm_h, out=np.zeros_like(norm_h), where=norm_h > 0)
        terms *= inverse if self._rows is None else inverse[self._rows]
        terms *= side.shared
        return self.penalties.astype(dtype) @ terms


# How the leaderboard resamples CIDEr: "exact" recomputes it on every resample with that
# resample's document frequencies; "fixed-idf" resamples per-case CIDEr with the full
# set's frequencies (faster).
CIDER_RESAMPLING = ("exact", "fixed-idf")


class Cider(TextMetric):
    group = "cider"
    columns = ("CIDEr",)
    default = True
    labels = {"CIDEr": "CIDEr-D"}
    uses_ptb_tokens = True

    def check_options(self, options: MetricOptions) -> None:
        mode = options.get(self.group, "exact")
        if mode not in CIDER_RESAMPLING:
            raise ValueError(f"unknown CIDEr resampling {mode!r}; use exact or fixed-idf")

    def score(self, texts: CaseTexts) -> MetricScores:
        per_case = cider_scores(texts.tok_candidates, texts.tok_references, texts.grams)
        return MetricScores(per_case={"CIDEr": per_case})

    def signature(self, column: str, options: MetricOptions) -> str:
        return (
            f"CIDEr-D|pycocoevalcap:{library_version('pycocoevalcap')}|sigma:6"
            f"|idf:test-refs|{PTB_SIGNATURE}"
        )

    def resampling(
        self, column: str, runs: Mapping[str, TextScores], options: MetricOptions
    ) -> Resampling:
        if options.get(self.group, "exact") != "exact":
            return MEAN, {s: r.results[column].per_case for s, r in runs.items()}
        # Same references for every system: their side is built (and per resample
        # computed) once.
        first = next(iter(runs.values()))
        shared = CiderReferences(first.tokens["references"], dtype=np.float32)
        return RESAMPLED, {
            s: ResampledMetric(
                r.results[column].per_case,
                CiderResampler(r.tokens["candidates"], shared).scores,
            )
            for s, r in runs.items()
        }

    def resampling_note(self, options: MetricOptions) -> str:
        if options.get(self.group, "exact") == "exact":
            return "CIDEr with each resample's document frequencies"
        return "CIDEr from per-case scores with the full set's document frequencies"
