"""Simulated null reader studies (every system equally strong) with rater x system taste,
drawn once per test run and shared by the Bradley-Terry and the sign-test tests.

Under the null the true centred strengths are 0 by symmetry, so coverage needs no
population fit.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from studies.reader_stats.simulation import SCENARIOS, null_version, simulate_study

N_STUDIES = 60


@lru_cache(maxsize=1)
def rater_system_null_studies(n_studies: int = N_STUDIES) -> tuple[pd.DataFrame, ...]:
    """`n_studies` studies of the "rater x system" scenario's null version, without Likert."""
    scenario = null_version(SCENARIOS["rater x system"]).scaled(likert=False)
    return tuple(simulate_study(scenario, seed=1000 + i) for i in range(n_studies))
