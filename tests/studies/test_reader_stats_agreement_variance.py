"""The two-way (cases and raters sampled) variance of Fleiss' kappa and Gwet's AC1/AC2,
checked against its definition computed term by term: every pair of linearised terms that
share a case or a rater, the centring expectation by enumerating every relabelling of the
raters of two units, and irrCAC's units-only variance as the case part with one unit per
case."""

from __future__ import annotations

from itertools import combinations, permutations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support.agreement_tables import likert_judgments

from studies.reader_stats import agreement
from studies.reader_stats.data import prepare_judgments
from studies.reader_stats.simulation import SCENARIOS, simulate_study

DATA = Path(__file__).parent / "data"

# Raters x units, categories 0..2 (NaN: not rated): 4 raters, 7 units, one unit with a
# single rating, rater r4 with a taste of its own.
TABLE = np.array(
    [
        [0, 1, 2, 2, 0, np.nan, 1],
        [0, 1, 2, np.nan, 0, 1, np.nan],
        [0, np.nan, 2, 2, 1, 1, np.nan],
        [2, 0, np.nan, 0, 2, np.nan, np.nan],
    ]
)


def _definition(
    table: np.ndarray, weights: np.ndarray, coefficient: str, cases: list[int]
) -> tuple[float, float, float]:
    """(value, variance, df) from the terms of the linearised coefficient, by brute force:
    terms of units of one case or with a rater in common are correlated."""
    n_raters, n = table.shape
    q = weights.shape[0]
    rated = [
        [(j, int(table[j, u])) for j in range(n_raters) if not np.isnan(table[j, u])]
        for u in range(n)
    ]
    m = np.array([len(r) for r in rated], dtype=float)
    several = m >= 2
    n2 = int(several.sum())
    share = np.zeros((n, q))
    for u, ratings in enumerate(rated):
        for _, c in ratings:
            share[u, c] += 1.0 / m[u]
    pi = share.mean(axis=0)
    pa = (
        sum(
            sum(weights[c, d] for (j, c), (k, d) in permutations(ratings, 2)) / (m[u] * (m[u] - 1))
            for u, ratings in enumerate(rated)
            if m[u] >= 2
        )
        / n2
    )
    if coefficient == "fleiss":
        pe = float(pi @ weights @ pi)
        chance = (weights @ pi + weights.T @ pi) / 2.0
    else:
        pe = float(weights.sum() * (pi * (1 - pi)).sum() / (q * (q - 1)))
        chance = weights.sum() / (q * (q - 1)) * (1.0 - pi)
    value = (pa - pe) / (1 - pe)
    # Terms: (unit, raters, value).
    terms: list[tuple[int, frozenset[int], float]] = []
    for u, ratings in enumerate(rated):
        terms.append((u, frozenset(), value * ((n / n2) * several[u] - 1.0)))
        for j, c in ratings:
            terms.append(
                (u, frozenset([j]), -2 * (1 - value) * (chance[c] - pe) / (m[u] * (1 - pe)))
            )
        for (j, c), (k, d) in combinations(ratings, 2):
            a = (n / n2) * 2 * (weights[c, d] - pa) / (m[u] * (m[u] - 1) * (1 - pe))
            terms.append((u, frozenset([j, k]), a))
    n_cases = len(set(cases))
    per_case = np.zeros(n_cases)
    for u, _, e in terms:
        per_case[cases[u]] += e
    case_part = n_cases / (n_cases - 1) * float(per_case @ per_case) / n**2
    # Products of terms with a rater in common (each term with itself too): over any two
    # units (the rater mean square) and within a case (its noise).
    with_a_rater = sum(e1 * e2 for _, s1, e1 in terms for _, s2, e2 in terms if s1 & s2)
    within_cases = sum(
        e1 * e2
        for u1, s1, e1 in terms
        for u2, s2, e2 in terms
        if cases[u1] == cases[u2] and s1 & s2
    )
    # Expectation over independent uniform relabellings of each unit's raters.
    everyone = list(range(n_raters))
    relabellings = list(permutations(everyone))
    expected = 0.0
    for u1, s1, e1 in terms:
        for u2, s2, e2 in terms:
            if cases[u1] == cases[u2] or not s1 or not s2:
                continue
            hits = sum(
                bool({p1[j] for j in s1} & {p2[j] for j in s2})
                for p1 in relabellings
                for p2 in relabellings
            )
            expected += e1 * e2 * hits / len(relabellings) ** 2
    mean_square = n_raters / (n_raters - 1) * with_a_rater / n**2
    noise = n_raters / (n_raters - 1) * (within_cases + expected) / n**2
    # A negative rater part (sampling noise) does not narrow the interval.
    if mean_square - noise <= 0:
        return value, case_part, float(n_cases - 1)
    total = case_part + mean_square - noise
    workload = np.array([sum(len(s) == 1 and j in s for _, s, _ in terms) for j in everyone])
    effective = workload.sum() ** 2 / (workload @ workload)
    df = total**2 / (
        case_part**2 / (n_cases - 1)
        + mean_square**2 / max(effective - 1, 1)
        + noise**2 / (n_cases - 1)
    )
    return value, total, df


def _judgments(table: np.ndarray) -> pd.DataFrame:
    """Each unit one report (the a side of an item), rated on a 1-3 Likert criterion."""
    rows = [
        {
            "rater": f"r{j + 1}",
            "case": f"u{u}",
            "item": f"u{u}",
            "system_a": "x",
            "system_b": "y",
            "winner": "tie",
            "likert_a_accuracy": float(table[j, u] + 1),
            "likert_b_accuracy": np.nan,
        }
        for j in range(table.shape[0])
        for u in range(table.shape[1])
        if not np.isnan(table[j, u])
    ]
    return prepare_judgments(pd.DataFrame(rows))


@pytest.mark.parametrize("cases", [list(range(7)), [0, 0, 1, 1, 2, 2, 2]])
@pytest.mark.parametrize(
    ("coefficient", "weights"),
    [("fleiss", "identity"), ("gwet", "identity"), ("gwet", "quadratic")],
)
def test_two_way_variance_equals_its_definition(
    coefficient: str, weights: str, cases: list[int]
) -> None:
    domain = [0.0, 1.0, 2.0]
    frame = pd.DataFrame(TABLE, index=[f"r{j + 1}" for j in range(4)])
    counts = agreement.category_counts(frame, domain)
    w = agreement.agreement_weights(domain, weights)
    codes = agreement.rating_codes(frame, domain, np.array([f"case{c}" for c in cases]))
    found = agreement.chance_corrected(counts, w, coefficient, ratings=codes)
    value, variance, df = _definition(TABLE, w, coefficient, cases)
    assert found["value"] == pytest.approx(value, abs=1e-12)
    assert found["se"] ** 2 == pytest.approx(variance, rel=1e-9)
    assert found["df"] == pytest.approx(df, rel=1e-9)
    half = stats.t.ppf(0.975, df) * np.sqrt(variance)
    assert found["ci_low"] == pytest.approx(value - half, abs=1e-12)
    assert found["ci_high"] == pytest.approx(min(1.0, value + half), abs=1e-12)


def test_units_only_variance_is_irrcac_and_the_default_adds_the_raters() -> None:
    # irrCAC (Gwet), README: cac.raw4raters, 12 units rated by 1 to 4 of 4 raters:
    # fleiss.kappa.raw 0.76117, se 0.15302; gwet.ac1.raw 0.77544, se 0.14295.
    raw = pd.read_csv(DATA / "irrcac_cac_raw4raters.csv").set_index("Units")
    judgments = likert_judgments(raw)
    fixed = agreement.fleiss_kappa(judgments, ratings="accuracy", variance="units")
    assert fixed["se"] == pytest.approx(0.15302, abs=1e-5) and fixed["df"] == 11
    ac1 = agreement.gwet_ac(judgments, ratings="accuracy", variance="units")
    assert ac1["se"] == pytest.approx(0.14295, abs=1e-5)
    both = agreement.fleiss_kappa(judgments, ratings="accuracy")
    assert both["kappa"] == fixed["kappa"]
    with pytest.raises(ValueError, match="units\\+raters, units"):
        agreement.gwet_ac(judgments, ratings="accuracy", variance="raters")


def test_raters_who_differ_in_taste_widen_the_interval() -> None:
    # Simulated (synthetic) study with a rater x system effect: the rater part is positive
    # and the df fall towards the number of raters.
    scenario = SCENARIOS["rater x system"].scaled(rater_system_sd=1.5, criteria=("accuracy",))
    study = simulate_study(scenario, seed=3)
    fixed = agreement.gwet_ac(study, variance="units")
    both = agreement.gwet_ac(study)
    assert both["ac"] == fixed["ac"]
    assert both["se"] > 1.2 * fixed["se"]
    assert 7 <= both["df"] < fixed["df"]


def test_fewer_than_four_raters_keep_the_units_variance() -> None:
    frame = pd.DataFrame(TABLE[:3], index=["r1", "r2", "r3"])
    domain = [0.0, 1.0, 2.0]
    counts = agreement.category_counts(frame, domain)
    w = agreement.agreement_weights(domain)
    codes = agreement.rating_codes(frame, domain)
    both = agreement.chance_corrected(counts, w, "gwet", ratings=codes)
    fixed = agreement.chance_corrected(counts, w, "gwet", variance="units")
    assert (both["se"], both["df"]) == (fixed["se"], fixed["df"])

