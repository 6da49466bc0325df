"""The one registry of text metrics: metric group -> its `TextMetric`, one line each.

`score_texts`, the leaderboard, its page and its command read groups, columns,
aggregates, resampling and signatures from here. The order is the order of tables.
"""

from __future__ import annotations

from metrics.base import TextMetric
from metrics.bertscore import BertScore
from metrics.bleu import Bleu
from metrics.cider import Cider
from metrics.clinical_metric import Clinical
from metrics.meteor import Meteor
from metrics.rouge import Rouge
from metrics.rouge_l import RougeL
from metrics.spice import Spice

METRICS: dict[str, TextMetric] = {
    metric.group: metric
    for metric in (
        Bleu(),
        Meteor(),
        RougeL(),
        Cider(),
        Rouge(),
        BertScore(),
        Spice(),
        Clinical(),
    )
}


def register(metric: TextMetric) -> None:
    """Add a metric group (its group name must be new)."""
    if metric.group in METRICS:
        raise ValueError(f"metric group {metric.group!r} is already registered")
    METRICS[metric.group] = metric


def unregister(group: str) -> None:
    """Remove a metric group (for metrics registered at run time, e.g. in tests)."""
    METRICS.pop(group, None)


def metric_groups() -> tuple[str, ...]:
    """Every registered metric group, in table order."""
    return tuple(METRICS)


def default_groups() -> tuple[str, ...]:
    """The groups scored when none is named."""
    return tuple(group for group, metric in METRICS.items() if metric.default)


def column_label(column: str) -> str:
    """The printed name of a metric column (e.g. "rougeL" -> "ROUGE-L (rouge-score)")."""
    for metric in METRICS.values():
        if column in metric.columns:
            return metric.label(column)
    return column


def metric_of(column: str) -> TextMetric | None:
    """The metric that produces `column` (None: no registered metric does)."""
    return next((m for m in METRICS.values() if column in m.columns), None)


def get_metric(group: str) -> TextMetric:
    found = METRICS.get(group)
    if found is None:
        raise ValueError(f"unknown metric group {group!r}; choose from {sorted(METRICS)}")
    return found
