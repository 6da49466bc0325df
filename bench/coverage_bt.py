"""Coverage section of bench/coverage.py: Bradley-Terry intervals and ranks, win-share
intervals and sign tests over simulated reader studies.

Rows (see bench/coverage.py for the columns):
- Bradley-Terry strength intervals, the default (two-way case+rater sandwich) and each
  alternative (case+rater bootstrap, case, rater, none, by sandwich and by bootstrap):
  coverage of the population strengths (every system, pooled) and, as the null rejection,
  the share of null studies that declare any strict rank (a CI-separated pair);
- win-share intervals (share of a pair's judgments the first system won): the default
  cluster-aware Wilson interval, plain Wilson and Clopper-Pearson;
- sign tests over all pairs, Holm-adjusted: family-wise error under the null, clustered
  (default) and exact binomial (judgments independent).

Bootstrap rows use BOOTSTRAP_RESAMPLES resamples per study to keep the section short:
python bench/coverage.py --section bt --studies 100 takes about 5-8 minutes on a shared
2-core machine (most of it simulating the studies), --studies 200 about 12.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from montecarlo import pooled  # noqa: E402

from studies.reader_stats.bradley_terry import (  # noqa: E402
    DEFAULT_CLUSTER,
    DEFAULT_INTERVAL,
    bradley_terry,
)
from studies.reader_stats.pairwise import win_tie_loss  # noqa: E402
from studies.reader_stats.simulation import (  # noqa: E402
    StudyScenario,
    population_version,
    simulate_study,
)

BOOTSTRAP_RESAMPLES = 200
ALPHA = 0.05
# (interval, cluster) of every Bradley-Terry method the section measures.
BT_METHODS: tuple[tuple[str, str], ...] = (
    ("sandwich", "case+rater"),
    ("bootstrap", "case+rater"),
    ("sandwich", "case"),
    ("bootstrap", "case"),
    ("sandwich", "rater"),
    ("sandwich", "none"),
)
SHARE_METHODS: tuple[tuple[str, str, bool], ...] = (
    ("win share: cluster-aware Wilson", "", True),
    ("win share: Wilson (independent)", "_wilson", False),
    ("win share: Clopper-Pearson (independent)", "_cp", False),
)


def _tie_model(scenario: StudyScenario) -> str:
    return "davidson" if scenario.tie_nu > 0 else "half"


_POPULATIONS: dict[str, tuple[np.ndarray, pd.Series]] = {}


def _population_of(scenario: StudyScenario) -> tuple[np.ndarray, pd.Series]:
    """The estimands: population strengths and each pair's population win share."""
    key = repr(scenario)
    if key not in _POPULATIONS:
        _POPULATIONS[key] = _population(scenario)
    return _POPULATIONS[key]


def _population(scenario: StudyScenario) -> tuple[np.ndarray, pd.Series]:
    # 40000 cases and 4000 raters: the estimands' own Monte Carlo error is about 5% of a
    # study's standard error (with 4000 cases a pair's win share was 1.5 of its own
    # standard errors, 0.26 of a study's, from the exact value in 'independent', which
    # took about 0.02 off every method's coverage there).
    judgments = simulate_study(
        population_version(scenario).scaled(n_cases=40_000, raters=4_000), seed=1
    )
    fit = bradley_terry(judgments, tie_model=_tie_model(scenario), interval="sandwich")  # type: ignore[arg-type]
    shares = win_tie_loss(judgments).set_index(["system_a", "system_b"])["share_a"]
    return fit.estimate, shares


def _study(judgments: pd.DataFrame, tie_model: str) -> dict[str, Any]:
    """Every interval and test of one simulated study."""
    found: dict[str, Any] = {}
    for interval, cluster in BT_METHODS:
        fit = bradley_terry(
            judgments,
            tie_model=tie_model,  # type: ignore[arg-type]
            cluster=cluster,  # type: ignore[arg-type]
            interval=interval,  # type: ignore[arg-type]
            n_resamples=BOOTSTRAP_RESAMPLES,
            seed=0,
        )
        separated = bool(np.nanmax(fit.rank) > 1) if np.isfinite(fit.rank).any() else False
        found[(interval, cluster)] = (fit.ci_low, fit.ci_high, separated)
    found["pairs"] = win_tie_loss(judgments).set_index(["system_a", "system_b"])
    return found


def _bt_label(interval: str, cluster: str) -> str:
    return f"BT {interval}, cluster {cluster}"


def section_rows(
    scenario: StudyScenario, null: StudyScenario, n_studies: int, seed: int
) -> list[dict[str, Any]]:
    # statsmodels' Holm adjustment runs gc.collect(); frozen objects make that cheap.
    gc.freeze()
    tie_model = _tie_model(scenario)
    truth, true_shares = _population_of(scenario)
    # One list of outcomes per study (`montecarlo.pooled` clusters on studies).
    covered: dict[tuple[str, str], list[list[bool]]] = {m: [] for m in BT_METHODS}
    separated_null: dict[tuple[str, str], list[list[bool]]] = {m: [] for m in BT_METHODS}
    share_covered: dict[str, list[list[bool]]] = {name: [] for name, _, _ in SHARE_METHODS}
    fwer: dict[str, list[list[bool]]] = {"clustered": [], "exact": []}
    for i in range(n_studies):
        study = _study(simulate_study(scenario, seed=seed + i), tie_model)
        baseline = _study(simulate_study(null, seed=seed + 500_000 + i), tie_model)
        for method in BT_METHODS:
            low, high, _ = study[method]
            covered[method].append(((low <= truth) & (truth <= high)).tolist())
            separated_null[method].append([baseline[method][2]])
        pairs = study["pairs"]
        for name, suffix, _ in SHARE_METHODS:
            low = pairs[f"share_a{suffix}_low"] if suffix else pairs["share_a_low"]
            high = pairs[f"share_a{suffix}_high"] if suffix else pairs["share_a_high"]
            target = true_shares.reindex(pairs.index).to_numpy()
            share_covered[name].append(((low <= target) & (target <= high)).tolist())
        null_pairs = baseline["pairs"]
        fwer["clustered"].append([bool((null_pairs["p_sign_adj"] < ALPHA).any())])
        fwer["exact"].append([bool((null_pairs["p_sign_exact_adj"] < ALPHA).any())])
    rows: list[dict[str, Any]] = []
    for method in BT_METHODS:
        coverage, coverage_se = pooled(covered[method])
        rejection, rejection_se = pooled(separated_null[method])
        rows.append(
            {
                "method": _bt_label(*method),
                "default": method == (DEFAULT_INTERVAL, DEFAULT_CLUSTER),
                "quantity": "strengths; null: any strict rank",
                "coverage": coverage,
                "coverage_se": coverage_se,
                "rejection": rejection,
                "rejection_se": rejection_se,
            }
        )
    for name, _, default in SHARE_METHODS:
        coverage, coverage_se = pooled(share_covered[name])
        rows.append(
            {
                "method": name,
                "default": default,
                "quantity": "share of a pair won",
                "coverage": coverage,
                "coverage_se": coverage_se,
                "rejection": None,
            }
        )
    for name, default in (("clustered", True), ("exact", False)):
        rejection, rejection_se = pooled(fwer[name])
        rows.append(
            {
                "method": f"sign test {name}, Holm",
                "default": default,
                "quantity": "any pair, family-wise",
                "coverage": None,
                "rejection": rejection,
                "rejection_se": rejection_se,
            }
        )
    return rows
