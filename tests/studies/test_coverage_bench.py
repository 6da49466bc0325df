"""The coverage bench's Monte Carlo error and verdicts (bench/montecarlo.py, bench/coverage.py):
the bench itself is long and runs outside the suite."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    # bench/ goes last on sys.path: its metrics.py would shadow the metrics package.
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_error_is_the_cluster_robust_error_of_the_mean_with_studies_as_clusters() -> None:
    """Three correlated intervals per study: the standard error is statsmodels' cluster-robust
    standard error of the mean by study (without its small-sample correction) times
    sqrt(k / (k - 1)) for k studies."""
    rng = np.random.default_rng(3)
    per_study = [(rng.random(3) < rng.uniform(0.8, 1.0)).astype(float).tolist() for _ in range(40)]
    rate, se = _load("montecarlo").pooled(per_study)
    values = np.concatenate(per_study)
    groups = np.repeat(np.arange(40), 3)
    fit = sm.OLS(values, np.ones(len(values))).fit(
        cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False}
    )
    assert rate == pytest.approx(values.mean())
    assert se == pytest.approx(float(fit.bse[0]) * math.sqrt(40 / 39), rel=1e-9)
    # One outcome per study: the binomial error with the k / (k - 1) factor.
    rate, se = _load("montecarlo").pooled([[1.0]] * 30 + [[0.0]] * 10)
    assert se == pytest.approx(math.sqrt(0.75 * 0.25 / 40 * 40 / 39))
    assert _load("montecarlo").pooled([]) == (None, None)


def test_a_verdict_says_when_a_miss_is_within_monte_carlo_error() -> None:
    verdict = _load("coverage").verdict
    assert verdict({"coverage": 0.95, "coverage_se": 0.01}) == "ok"
    assert (
        verdict({"coverage": 0.925, "coverage_se": 0.005})
        == "undercovers (within Monte Carlo error)"
    )
    assert verdict({"coverage": 0.90, "coverage_se": 0.005}) == "undercovers"
    assert verdict({"coverage": 0.975}) == "conservative"  # no error known: a plain miss
    row = {"coverage": 0.95, "rejection": 0.07, "rejection_se": 0.008}
    assert verdict(row) == "type-I too high (within Monte Carlo error)"
    # A one-sided test at 0.025 is held to 0.03.
    assert (
        verdict({"rejection": 0.04, "rejection_se": 0.002, "nominal": 0.025}) == "type-I too high"
    )
