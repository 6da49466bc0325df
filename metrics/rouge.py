"""rouge-score ROUGE-1/2/L/Lsum (P, R, F1; Porter stemmer), computed the library's way.

The library's own tokenizer and n-gram scores, with a memoised stemmer, per-text token
cache and a bit-parallel LCS (same numbers as `RougeScorer.score` / `score_multi`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from metrics.base import CaseTexts, MetricOptions, MetricScores, TextMetric, library_version
from metrics.rouge_l import lcs_length

ROUGE_SCORE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def split_sentences(text: str) -> str:
    """rougeLsum needs one sentence per line."""
    return "\n".join(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s)


class _CachedStemmer:
    """Porter stemming memoised per word: reports repeat a small vocabulary."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer()
        self._cache: dict[str, str] = {}

    def stem(self, word: str) -> str:
        found = self._cache.get(word)
        if found is None:
            found = self._cache[word] = self._stemmer.stem(word)
        return found


class _RougeTokens:
    """rouge-score's own tokenize function with a memoised stemmer and per-text cache."""

    def __init__(self, use_stemmer: bool) -> None:
        from rouge_score import tokenize

        self._tokenize = tokenize.tokenize
        self._stemmer = _CachedStemmer() if use_stemmer else None
        self._cache: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        found = self._cache.get(text)
        if found is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            found = self._cache[text] = self._tokenize(text, self._stemmer)
        return found


_ROUGE_TOKENS: dict[bool, _RougeTokens] = {}


def _rouge_one(tokens: _RougeTokens, target: str, prediction: str) -> dict[str, Any]:
    """rouge-score's `RougeScorer.score` for our four types, computed the library's way.

    N-gram scores and the summary-level LCS are the library's own functions; ROUGE-L uses
    the bit-parallel LCS length (same number as the library's dynamic-programming table).
    """
    from rouge_score import rouge_scorer, scoring

    t_tokens, p_tokens = tokens(target), tokens(prediction)
    out: dict[str, Any] = {}
    for n in (1, 2):
        out[f"rouge{n}"] = rouge_scorer._score_ngrams(
            rouge_scorer._create_ngrams(t_tokens, n), rouge_scorer._create_ngrams(p_tokens, n)
        )
    if not t_tokens or not p_tokens:
        out["rougeL"] = scoring.Score(precision=0, recall=0, fmeasure=0)
    else:
        lcs = lcs_length(t_tokens, p_tokens)
        precision, recall = lcs / len(p_tokens), lcs / len(t_tokens)
        out["rougeL"] = scoring.Score(
            precision=precision, recall=recall, fmeasure=scoring.fmeasure(precision, recall)
        )
    out["rougeLsum"] = _summary_level_lcs(
        [tokens(x) for x in target.split("\n") if len(x)],
        [tokens(x) for x in prediction.split("\n") if len(x)],
    )
    return out


_LCS_INDICES: dict[tuple[tuple[str, ...], tuple[str, ...]], list[int]] = {}


def _lcs_indices(ref: list[str], can: list[str]) -> list[int]:
    """rouge-score's `lcs_ind`, memoised: report sentences repeat across cases."""
    key = (tuple(ref), tuple(can))
    found = _LCS_INDICES.get(key)
    if found is None:
        if len(_LCS_INDICES) > 500_000:
            _LCS_INDICES.clear()
        found = _LCS_INDICES[key] = lcs_indices(ref, can)
    return found


def lcs_indices(ref: Sequence[str], can: Sequence[str]) -> list[int]:
    """rouge-score's `lcs_ind` (same table, same backtracking), with bit-parallel rows.

    Row i of the LCS table is kept as one integer whose zero bits mark where the row
    grows along `can`, so T[i][j] = j - popcount(row_i & (2^j - 1)).
    """
    masks: dict[str, int] = {}
    for j, token in enumerate(can):
        masks[token] = masks.get(token, 0) | (1 << j)
    full = (1 << len(can)) - 1
    v = full
    rows = [v]
    for token in ref:
        m = masks.get(token)
        if m is not None:
            u = v & m
            v = ((v + u) | (v - u)) & full
        rows.append(v)

    def table(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    i, j = len(ref), len(can)
    out: list[int] = []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            out.append(i - 1)
            i -= 1
            j -= 1
        elif table(i, j - 1) > table(i - 1, j):
            j -= 1
        else:
            i -= 1
    out.reverse()
    return out


def _summary_level_lcs(ref_sent: list[list[str]], can_sent: list[list[str]]) -> Any:
    """rouge-score's `_summary_level_lcs` line for line, with memoised LCS indices."""
    from rouge_score import scoring

    if not ref_sent or not can_sent:
        return scoring.Score(precision=0, recall=0, fmeasure=0)
    m = sum(map(len, ref_sent))
    n = sum(map(len, can_sent))
    if not n or not m:
        return scoring.Score(precision=0, recall=0, fmeasure=0)
    counts_r: Counter[str] = Counter()
    counts_c: Counter[str] = Counter()
    for sentence in ref_sent:
        counts_r.update(sentence)
    for sentence in can_sent:
        counts_c.update(sentence)
    hits = 0
    for ref in ref_sent:
        union = sorted(set().union(*[_lcs_indices(ref, can) for can in can_sent]))
        for token in (ref[i] for i in union):
            # As rouge-score 1.5.5 does: no token counted twice.
            if counts_c[token] > 0 and counts_r[token] > 0:
                hits += 1
                counts_c[token] -= 1
                counts_r[token] -= 1
    recall = hits / m
    precision = hits / n
    return scoring.Score(
        precision=precision, recall=recall, fmeasure=scoring.fmeasure(precision, recall)
    )


def rouge_score_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], use_stemmer: bool = True
) -> dict[str, np.ndarray]:
    """rouge-score F1/P/R per case; with several references the best-F1 reference counts."""
    tokens = _ROUGE_TOKENS.setdefault(use_stemmer, _RougeTokens(use_stemmer))
    out = {
        f"{t}{suffix}": np.zeros(len(candidates))
        for t in ROUGE_SCORE_TYPES
        for suffix in ("", "_p", "_r")
    }
    for i, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        cand_s = split_sentences(cand)
        scores = [_rouge_one(tokens, split_sentences(r), cand_s) for r in refs]
        for t in ROUGE_SCORE_TYPES:
            # As RougeScorer.score_multi: the first reference with the highest F1.
            best = scores[int(np.argmax([x[t].fmeasure for x in scores]))][t]
            out[t][i] = best.fmeasure
            out[f"{t}_p"][i] = best.precision
            out[f"{t}_r"][i] = best.recall
    return out


class Rouge(TextMetric):
    group = "rouge"
    columns = tuple(f"{t}{suffix}" for t in ROUGE_SCORE_TYPES for suffix in ("", "_p", "_r"))
    table_columns = ROUGE_SCORE_TYPES
    default = True
    labels = {
        "rouge1": "ROUGE-1 (rouge-score)",
        "rouge2": "ROUGE-2 (rouge-score)",
        "rougeL": "ROUGE-L (rouge-score)",
        "rougeLsum": "ROUGE-Lsum (rouge-score)",
    }

    def score(self, texts: CaseTexts) -> MetricScores:
        return MetricScores(per_case=rouge_score_scores(texts.candidates, texts.references))

    def signature(self, column: str, options: MetricOptions) -> str:
        kind = "F1" if "_" not in column else column.split("_")[1].upper()
        return (
            f"rouge-score:{library_version('rouge-score')}|stemmer:porter"
            f"|tok:rouge-score-default|refs:max|{kind}"
        )
