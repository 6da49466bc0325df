"""The simulated reader study: known truth, the stats contract, and the random effects it claims."""

from __future__ import annotations

import numpy as np
import pandas as pd

from studies.reader_stats.data import criteria_of, is_synthetic
from studies.reader_stats.simulation import (
    SCENARIOS,
    StudyScenario,
    null_version,
    population_version,
    simulate_study,
)


def _per_rater_win_rate(frame: pd.DataFrame, a: str, b: str) -> pd.Series:
    pair = frame[(frame["system_a"] == a) & (frame["system_b"] == b)]
    return (pair["winner"] == "a").groupby(pair["rater"]).mean()


def test_every_scenario_follows_the_contract_and_is_labelled_synthetic() -> None:
    for scenario in SCENARIOS.values():
        frame = simulate_study(scenario, seed=3)
        assert is_synthetic(frame)
        assert set(frame["winner"]) <= {"a", "b", "tie"}
        assert criteria_of(frame)  # Likert columns are found from the columns
        n_pairs = len(scenario.strengths) * (len(scenario.strengths) - 1) // 2
        assert len(frame) == scenario.n_cases * n_pairs * scenario.raters_per_item
        # each item is read by distinct raters
        assert not frame.duplicated(["item", "rater"]).any()
        likert = frame.filter(like="likert_").to_numpy()
        assert likert.min() >= 1 and likert.max() <= 5


def test_same_seed_same_study_and_null_version_is_a_null() -> None:
    scenario = SCENARIOS["rater x system"]
    pd.testing.assert_frame_equal(simulate_study(scenario, 7), simulate_study(scenario, 7))
    null = null_version(scenario)
    assert set(null.strengths.values()) == {0.0}
    frame = simulate_study(population_version(null).scaled(n_cases=1500), seed=1)
    wins = (frame["winner"] == "a").mean()
    assert abs(wins - 0.5) < 0.03


def test_rater_by_system_taste_spreads_the_raters_win_rates() -> None:
    base = StudyScenario("plain", {"A": 0.3, "B": 0.0}, n_cases=400, raters=10)
    plain = _per_rater_win_rate(simulate_study(base, 1), "A", "B")
    taste = _per_rater_win_rate(simulate_study(base.scaled(rater_system_sd=1.0), 1), "A", "B")
    assert taste.std() > 2 * plain.std()


def test_unbalanced_overlap_gives_unequal_workloads() -> None:
    base = StudyScenario("even", {"A": 0.0, "B": 0.0, "C": 0.0}, n_cases=100, raters=8)
    even = simulate_study(base, 2)["rater"].value_counts()
    skewed = simulate_study(base.scaled(unbalanced=1.0), 2)["rater"].value_counts()
    assert skewed.max() / skewed.min() > 2 * even.max() / even.min()


def test_stronger_system_gets_higher_likert_scores() -> None:
    frame = simulate_study(SCENARIOS["report effects"].scaled(n_cases=200), seed=4)
    key = criteria_of(frame)[0]
    a = frame[frame["system_a"] == "A"][f"likert_a_{key}"].mean()
    c = frame[frame["system_b"] == "C"][f"likert_b_{key}"].mean()
    assert a > c + 0.3
    assert np.isfinite(a)
