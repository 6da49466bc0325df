"""ROUGE-L as pycocoevalcap computes it (F-measure with beta 1.2 over PTB tokens), with a
bit-parallel longest common subsequence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.base import (
    PTB_SIGNATURE,
    CaseTexts,
    MetricOptions,
    MetricScores,
    TextMetric,
    library_version,
)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Hyyro 2004)."""
    if not a or not b:
        return 0
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        m = masks.get(token)
        if m is None:
            continue
        u = v & m
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


def rouge_l_coco(candidate: str, references: Sequence[str], beta: float = 1.2) -> float:
    tokens_c = candidate.split(" ")
    precs, recs = [], []
    for ref in references:
        tokens_r = ref.split(" ")
        lcs = lcs_length(tokens_r, tokens_c)
        precs.append(lcs / float(len(tokens_c)))
        recs.append(lcs / float(len(tokens_r)))
    p, r = max(precs), max(recs)
    if p != 0 and r != 0:
        return ((1 + beta**2) * p * r) / float(r + beta**2 * p)
    return 0.0


class RougeL(TextMetric):
    group = "rouge_l"
    columns = ("ROUGE-L",)
    default = True
    labels = {"ROUGE-L": "ROUGE-L (pycocoevalcap)"}
    uses_ptb_tokens = True

    def score(self, texts: CaseTexts) -> MetricScores:
        per_case = np.array(
            [
                rouge_l_coco(c, r)
                for c, r in zip(texts.tok_candidates, texts.tok_references, strict=True)
            ]
        )
        return MetricScores(per_case={"ROUGE-L": per_case})

    def signature(self, column: str, options: MetricOptions) -> str:
        return f"ROUGE-L|pycocoevalcap:{library_version('pycocoevalcap')}|beta:1.2|{PTB_SIGNATURE}"
