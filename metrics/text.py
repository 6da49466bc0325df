"""Text metrics over a whole run in one call: `score_texts` iterates the metric registry.

Every text is tokenised once with the PTB tokenizer (one Java process, `metrics.tokenize`)
when a chosen metric reads PTB tokens, and the tokens and n-gram counts are shared
between metrics. Metrics that run an external process (METEOR's Java workers) start
first and are joined last, so they work while Python computes the rest. Each column
comes back with its per-case scores, corpus score and signature; each metric's per-case
sufficient statistics are kept in `TextScores.stats` for resampling.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from metrics.base import (
    CaseTexts,
    MetricResult,
    MetricScores,
    TextMetric,
    TextScores,
    as_reference_lists,
)
from metrics.bertscore import BertScoreConfig
from metrics.registry import METRICS, default_groups
from metrics.tokenize import ptb_tokenize

__all__ = ["MetricResult", "TextScores", "resolve_metrics", "score_texts"]


def resolve_metrics(metrics: Sequence[str] | None) -> tuple[str, ...]:
    """The chosen metric groups (the registry's defaults when none), checked."""
    groups = tuple(metrics) if metrics else default_groups()
    unknown = [g for g in groups if g not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric group(s) {unknown}; choose from {sorted(METRICS)}")
    return groups


def score_texts(
    candidates: Sequence[str],
    references: Sequence[str | Sequence[str]],
    metrics: Sequence[str] | None = None,
    *,
    bertscore: BertScoreConfig | None = None,
    meteor_workers: int | None = None,
    findings: Sequence[dict[str, Any] | None] | None = None,
    options: Mapping[str, Any] | None = None,
) -> TextScores:
    """Score a whole run: candidates[i] against references[i] (a string or several).

    `metrics` are registered groups (`metrics.registry`): bleu, meteor, rouge_l, cider
    (pycocoevalcap), rouge (rouge-score), bertscore, spice, clinical. A metric that cannot
    run here (SPICE without its Stanford CoreNLP models) is reported in `unavailable`.
    `options` holds per-metric settings keyed by group; `bertscore` and `meteor_workers`
    are the same as options["bertscore"] and options["meteor"]. `findings`: per case the
    ground-truth findings where known (the clinical metric's truth).
    """
    groups = resolve_metrics(metrics)
    refs = as_reference_lists(references)
    if len(candidates) != len(refs):
        raise ValueError(f"{len(candidates)} candidates but {len(refs)} reference sets")
    if findings is not None and len(findings) != len(refs):
        raise ValueError(f"{len(findings)} findings but {len(refs)} cases")
    settings = dict(options or {})
    if bertscore is not None:
        settings["bertscore"] = bertscore
    if meteor_workers is not None:
        settings["meteor"] = meteor_workers
    chosen = [METRICS[g] for g in groups]
    cands = [c if isinstance(c, str) else "" for c in candidates]
    n = len(cands)
    result = TextScores(n_cases=n, results={})
    if not n:
        return result
    texts = CaseTexts(cands, refs, settings, list(findings) if findings is not None else None)
    for metric in chosen:
        metric.prepare(texts)
    if any(metric.uses_ptb_tokens for metric in chosen):
        clock = time.perf_counter()
        flat = ptb_tokenize(cands + [r for rs in refs for r in rs])
        texts.tok_candidates = flat[:n]
        pos = n
        for rs in refs:
            texts.tok_references.append(flat[pos : pos + len(rs)])
            pos += len(rs)
        result.tokens = {"candidates": texts.tok_candidates, "references": texts.tok_references}
        result.timings["tokenize"] = time.perf_counter() - clock

    outputs: dict[str, MetricScores] = {}
    alongside = [m for m in chosen if m.runs_alongside]
    executor = ThreadPoolExecutor(max_workers=len(alongside)) if alongside else None
    started: dict[str, tuple[Future[MetricScores], float]] = {}
    try:
        for metric in alongside:
            assert executor is not None
            started[metric.group] = (executor.submit(metric.score, texts), time.perf_counter())
        for metric in chosen:
            if metric.runs_alongside:
                continue
            clock = time.perf_counter()
            outputs[metric.group] = metric.score(texts)
            result.timings[metric.group] = time.perf_counter() - clock
        for group, (future, clock) in started.items():
            outputs[group] = future.result()
            result.timings[group] = time.perf_counter() - clock
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    for metric in chosen:
        _collect(result, metric, outputs[metric.group], settings)
    return result


def _collect(
    result: TextScores, metric: TextMetric, out: MetricScores, options: Mapping[str, Any]
) -> None:
    """Put one metric's scores into the run's record, each column with its signature."""
    for column, values in out.per_case.items():
        per_case = np.asarray(values, float)
        corpus = out.corpus.get(column)
        result.results[column] = MetricResult(
            column,
            float(per_case.mean() if corpus is None else corpus),
            per_case,
            metric.signature(column, options),
        )
    if out.stats is not None:
        result.stats[metric.group] = out.stats
    if out.detail is not None:
        result.details[metric.group] = out.detail
    result.unavailable.update(out.unavailable)
