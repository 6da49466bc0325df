"""Which automatic metric agrees with the clinicians?

For each metric: the share of human-decided judgments (a or b) in which the metric scores
the preferred report higher (a metric tie counts half), Kendall's tau-b between the
human preference (a = 1, tie or both unacceptable = 0, b = -1) and the metric difference
a - b over all judgments, and, per Likert criterion of the table (accuracy, safety, ...),
Kendall's tau-b between each rated report's metric score and its rating. Intervals come
from a bootstrap over cases. A metric table that carries the report texts (`report`, and
`reference` or `findings`) gets the severity-weighted clinical score (`metrics.clinical`)
as its "clinical" column, next to the text metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studies.reader_stats.data import JudgmentsError, criteria_of
from studies.reader_stats.pairwise import regular

HUMAN_CODE = {"a": 1.0, "b": -1.0, "tie": 0.0, "both_bad": 0.0}
# The metric-table column of the severity-weighted clinical score, and the text columns
# it is computed from.
CLINICAL_COLUMN = "clinical"
REPORT_COLUMN = "report"
TRUTH_COLUMNS = ("findings", "reference")


def _truth(row: pd.Series, source: str, number: int) -> str | dict[str, Any] | None:
    findings = row.get("findings")
    if isinstance(findings, dict):
        return findings
    if isinstance(findings, str) and findings.strip():
        try:
            parsed = json.loads(findings)
        except json.JSONDecodeError:
            raise JudgmentsError(
                f"{source}: row {number}: 'findings' is not JSON findings"
            ) from None
        return parsed
    reference = row.get("reference")
    return reference if isinstance(reference, str) else None


def clinical_scores(table: pd.DataFrame, *, source: str = "metric table") -> pd.Series:
    """The severity-weighted clinical score of each row's `report` against its ground-truth
    `findings` (JSON) where given, else its `reference` text; NaN where neither is given."""
    from metrics.clinical import score_findings

    if REPORT_COLUMN not in table.columns or not set(TRUTH_COLUMNS) & set(table.columns):
        raise JudgmentsError(
            f"{source}: the clinical score needs a '{REPORT_COLUMN}' column and a "
            "'reference' or 'findings' column"
        )
    values = []
    for number, (_, row) in enumerate(table.iterrows(), start=1):
        report = row[REPORT_COLUMN]
        truth = _truth(row, source, number)
        if truth is None:
            values.append(np.nan)
            continue
        try:
            result = score_findings(report if isinstance(report, str) else "", truth)
        except ValueError as exc:  # a findings object outside the vocabulary
            raise JudgmentsError(f"{source}: row {number}: {exc}") from None
        values.append(result.score)
    return pd.Series(values, index=table.index, dtype=float, name=CLINICAL_COLUMN)


def prepare_metric_table(table: pd.DataFrame, *, source: str = "metric table") -> pd.DataFrame:
    """A wide table indexed by (case, system) with one numeric column per metric.

    Accepts wide input (case, system, metric columns...) or long input (case, system,
    metric, value).
    """
    missing = [c for c in ("case", "system") if c not in table.columns]
    if missing:
        raise JudgmentsError(f"{source}: missing column(s) {', '.join(missing)}")
    table = table.copy()
    if (
        REPORT_COLUMN in table.columns
        and CLINICAL_COLUMN not in table.columns
        and set(TRUTH_COLUMNS) & set(table.columns)
    ):
        table[CLINICAL_COLUMN] = clinical_scores(table, source=source)
    table = table.drop(columns=[c for c in (REPORT_COLUMN, *TRUTH_COLUMNS) if c in table])
    table["case"] = table["case"].astype(str)
    table["system"] = table["system"].astype(str)
    if {"metric", "value"} <= set(table.columns):
        table = table.pivot_table(
            index=["case", "system"], columns="metric", values="value", aggfunc="mean"
        )
        table.columns = [str(c) for c in table.columns]
    else:
        duplicated = table.duplicated(["case", "system"])
        if duplicated.any():
            rows = [int(i) + 1 for i in np.flatnonzero(duplicated.to_numpy())][:5]
            raise JudgmentsError(f"{source}: (case, system) repeated in rows {rows}")
        table = table.set_index(["case", "system"])
    numeric = {}
    for column in table.columns:
        values = pd.to_numeric(table[column], errors="coerce")
        if values.notna().any():
            numeric[column] = values
    if not numeric:
        raise JudgmentsError(f"{source}: no numeric metric columns")
    return pd.DataFrame(numeric)


def _tau_with_cases(
    x: np.ndarray, y: np.ndarray, cases: np.ndarray, n_resamples: int, seed: int, alpha: float
) -> dict[str, float]:
    """Kendall's tau-b of x and y, its p-value, and a percentile interval from resampling
    cases (all rows of a drawn case together)."""
    out = {"tau": np.nan, "low": np.nan, "high": np.nan, "p": np.nan}
    if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        tau = stats.kendalltau(x, y)
        out["tau"], out["p"] = float(tau.statistic), float(tau.pvalue)
    if n_resamples > 0 and len(x) >= 3:
        unique, case_index = np.unique(cases, return_inverse=True)
        members = [np.flatnonzero(case_index == c) for c in range(len(unique))]
        rng = np.random.default_rng(seed)
        taus = []
        for row in rng.integers(0, len(unique), size=(n_resamples, len(unique))):
            index = np.concatenate([members[c] for c in row])
            if np.ptp(x[index]) > 0 and np.ptp(y[index]) > 0:
                taus.append(stats.kendalltau(x[index], y[index]).statistic)
        if taus:
            low, high = np.quantile(taus, [alpha, 1 - alpha])
            out["low"], out["high"] = float(low), float(high)
    return out


def _rating_taus(
    frame: pd.DataFrame,
    values: pd.Series,
    sign: float,
    n_resamples: int,
    seed: int,
    alpha: float,
) -> dict[str, float]:
    """Per Likert criterion: tau-b between each rated report's metric score and its rating."""
    record: dict[str, float] = {}
    for criterion in criteria_of(frame):
        ratings, scores, cases = [], [], []
        for side in ("a", "b"):
            rating = pd.to_numeric(frame[f"likert_{side}_{criterion}"], errors="coerce")
            score = values.reindex(list(zip(frame["case"], frame[f"system_{side}"], strict=True)))
            ratings.append(rating.to_numpy(dtype=float))
            scores.append(sign * score.to_numpy(dtype=float))
            cases.append(frame["case"].to_numpy())
        x, y, c = np.concatenate(scores), np.concatenate(ratings), np.concatenate(cases)
        usable = ~np.isnan(x) & ~np.isnan(y)
        tau = _tau_with_cases(x[usable], y[usable], c[usable], n_resamples, seed, alpha)
        record[f"n_rated_{criterion}"] = int(usable.sum())
        record[f"tau_{criterion}"] = tau["tau"]
        record[f"tau_{criterion}_low"] = tau["low"]
        record[f"tau_{criterion}_high"] = tau["high"]
        record[f"p_tau_{criterion}"] = tau["p"]
    return record


def metric_agreement(
    judgments: pd.DataFrame,
    metric_table: pd.DataFrame,
    *,
    lower_is_better: Iterable[str] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per metric: agreement share and Kendall's tau with the preference, and per
    Likert criterion (`tau_<criterion>`) with the ratings, each with bootstrap intervals."""
    metrics = prepare_metric_table(metric_table)
    lower = set(lower_is_better)
    frame = regular(judgments)
    alpha = (1.0 - level) / 2.0
    records = []
    for metric in metrics.columns:
        values = metrics[metric]
        score_a = values.reindex(list(zip(frame["case"], frame["system_a"], strict=True)))
        score_b = values.reindex(list(zip(frame["case"], frame["system_b"], strict=True)))
        diff = score_a.to_numpy(dtype=float) - score_b.to_numpy(dtype=float)
        if metric in lower:
            diff = -diff
        usable = ~np.isnan(diff)
        human = frame["winner"].map(HUMAN_CODE).to_numpy(dtype=float)[usable]
        diff = diff[usable]
        cases = frame["case"].to_numpy()[usable]
        decided = human != 0
        credit = np.where(np.sign(diff) == human, 1.0, np.where(diff == 0, 0.5, 0.0))
        record = {
            "metric": metric,
            "direction": "lower is better" if metric in lower else "higher is better",
            "n_judgments": int(len(diff)),
            "n_decided": int(decided.sum()),
            "agreement": float(credit[decided].mean()) if decided.any() else float("nan"),
            "agreement_low": float("nan"),
            "agreement_high": float("nan"),
            "kendall_tau": float("nan"),
            "tau_low": float("nan"),
            "tau_high": float("nan"),
            "p_tau": float("nan"),
        }
        if len(diff) >= 3 and np.ptp(diff) > 0 and np.ptp(human) > 0:
            tau = stats.kendalltau(human, diff)
            record["kendall_tau"], record["p_tau"] = float(tau.statistic), float(tau.pvalue)
        if n_resamples > 0 and len(diff) >= 3:
            unique, case_index = np.unique(cases, return_inverse=True)
            rng = np.random.default_rng(seed)
            draws = rng.integers(0, len(unique), size=(n_resamples, len(unique)))
            counts = np.zeros((n_resamples, len(unique)))
            np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
            weights = counts[:, case_index]
            decided_weights = weights * decided
            with np.errstate(invalid="ignore", divide="ignore"):
                shares = (decided_weights @ credit) / decided_weights.sum(axis=1)
            shares = shares[np.isfinite(shares)]
            if len(shares):
                low, high = np.quantile(shares, [alpha, 1 - alpha])
                record["agreement_low"], record["agreement_high"] = float(low), float(high)
            members = [np.flatnonzero(case_index == c) for c in range(len(unique))]
            taus = []
            for row in draws:
                index = np.concatenate([members[c] for c in row])
                h, d = human[index], diff[index]
                if np.ptp(h) > 0 and np.ptp(d) > 0:
                    taus.append(stats.kendalltau(h, d).statistic)
            if taus:
                low, high = np.quantile(taus, [alpha, 1 - alpha])
                record["tau_low"], record["tau_high"] = float(low), float(high)
        sign = -1.0 if metric in lower else 1.0
        record.update(_rating_taus(frame, values, sign, n_resamples, seed, alpha))
        records.append(record)
    return pd.DataFrame.from_records(records)
