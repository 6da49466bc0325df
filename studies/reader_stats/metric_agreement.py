"""Which automatic metric agrees with the clinicians?

For each metric: the share of human-decided judgments (a or b) in which the metric scores
the preferred report higher (a metric tie counts half), and Kendall's tau-b between the
human preference (a = 1, tie or both unacceptable = 0, b = -1) and the metric difference
a - b over all judgments. Intervals come from a bootstrap over cases.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from studies.reader_stats.data import JudgmentsError
from studies.reader_stats.pairwise import regular

HUMAN_CODE = {"a": 1.0, "b": -1.0, "tie": 0.0, "both_bad": 0.0}


def prepare_metric_table(table: pd.DataFrame, *, source: str = "metric table") -> pd.DataFrame:
    """A wide table indexed by (case, system) with one numeric column per metric.

    Accepts wide input (case, system, metric columns...) or long input (case, system,
    metric, value).
    """
    missing = [c for c in ("case", "system") if c not in table.columns]
    if missing:
        raise JudgmentsError(f"{source}: missing column(s) {', '.join(missing)}")
    table = table.copy()
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


def metric_agreement(
    judgments: pd.DataFrame,
    metric_table: pd.DataFrame,
    *,
    lower_is_better: Iterable[str] = (),
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """One row per metric: agreement share and Kendall's tau with bootstrap intervals."""
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
        records.append(record)
    return pd.DataFrame.from_records(records)
