"""Coverage section of bench/coverage.py: Likert means, paired Likert tests, the Likert mixed
model and harm non-inferiority over simulated reader studies (synthetic judgments).

Rows (see bench/coverage.py for the columns), on the "accuracy" criterion (harm: "safety"):
- Likert mean intervals per system (pooled): the default (one mixed model with rater, case,
  rater x system and report random effects, Satterthwaite t on the logit of the 1-5 scale),
  the same model's plain t interval, the t interval over case means, and the ebb17df
  interval (case means) around the mean of all ratings;
- paired differences (a - b, every pair pooled): coverage of the mean-difference interval and,
  under the null, the Holm family-wise error over the pairs: the default mixed model of the
  differences (rater and case intercepts, Satterthwaite), the t over case means, the
  Wilcoxon test on case means and the ebb17df Wilcoxon test on judgments;
- the mixed model's contrasts against the reference (B): coverage and per-test null rejection,
  the default (rater x system and report random, rater and case as fixed blocks,
  Satterthwaite t) against the same with Kenward-Roger t, lme4's model with all four effects
  random (Satterthwaite t) and the ebb17df model (rater and case intercepts, z tests);
- harm non-inferiority of the worst system (C) against B with the margin set to the true
  difference, so the null holds at its boundary: coverage of the two-sided 95% interval of
  the difference, and the share of studies declaring C non-inferior (the type-I error of a
  one-sided test at 0.025, judged against 0.025 scaled as the 0.06 target: 0.03), for the
  default (two-way cluster-robust mean, adjusted one-sided p), the mixed model of the
  differences, the case-level t, and the ebb17df rule (unadjusted case-level interval);
- Fleiss' kappa and Gwet's AC1 on the preferences: coverage of the default linearised
  interval with units and raters sampled and of irrCAC's (units random, raters fixed), of
  the same statistic on a study of 16000 cases and 1600 raters with the scenario's readers
  per item.

The estimand of the Likert rows is the population value: the mean score (or difference of
mean scores) over a population-sized study of the scenario (`population_version`), which
every method here estimates. One study (and its null version) takes about 1.2 s on a 2-core
machine, so `python bench/coverage.py --section likert --studies 30` takes about 4-5 minutes.
"""

from __future__ import annotations

import gc
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from montecarlo import pooled  # noqa: E402

from studies.reader_stats import agreement, likert  # noqa: E402
from studies.reader_stats.pairwise import adjust_pvalues  # noqa: E402
from studies.reader_stats.simulation import (  # noqa: E402
    StudyScenario,
    population_version,
    simulate_study,
)

CRITERION = "accuracy"
HARM = "safety"
REFERENCE = "B"
WORST = "C"
ALPHA = 0.05
# Harm non-inferiority is one-sided at (1 - 0.95) / 2: its rejection at the margin is
# judged against 0.025 (bench/coverage.py scales the 0.06 target by nominal / 0.05).
HARM_QUANTITY = "harm NI at the margin (one-sided 0.025)"
HARM_NOMINAL = 0.025

# The parts a run measures (bench/coverage.py --only): None for all of them.
PARTS = ("means", "paired", "mixed", "mixed-kr", "harm", "agreement")
ONLY: set[str] | None = None


def _wanted(part: str) -> bool:
    return ONLY is None or part in ONLY


def _part(quantity: str, method: str = "") -> str:
    """The part of the section a row belongs to ("mixed-kr": the Kenward-Roger model, about
    nine times slower than the rest of the mixed part, measured on its own)."""
    if "Kenward-Roger" in method:
        return "mixed-kr"
    if quantity == "Likert mean":
        return "means"
    if quantity.startswith("paired"):
        return "paired"
    if quantity.startswith("mixed"):
        return "mixed"
    if quantity.startswith("harm"):
        return "harm"
    return "agreement"


_POPULATIONS: dict[str, tuple[pd.Series, pd.Series]] = {}
_AGREEMENT: dict[str, dict[str, float]] = {}
AGREEMENT = (("kappa", "Fleiss' kappa (preference)"), ("ac", "Gwet's AC1 (preference)"))


def _agreement(
    judgments: pd.DataFrame, variances: tuple[str, ...] = agreement.AGREEMENT_VARIANCES
) -> dict[str, float | tuple[float, float]]:
    found: dict[str, float | tuple[float, float]] = {}
    for variance in variances:
        kappa = agreement.fleiss_kappa(judgments, variance=variance)
        ac1 = agreement.gwet_ac(judgments, variance=variance)
        found.update(
            {
                "kappa": kappa["kappa"],
                f"kappa_ci {variance}": (kappa["ci_low"], kappa["ci_high"]),
                "ac": ac1["ac"],
                f"ac_ci {variance}": (ac1["ci_low"], ac1["ci_high"]),
            }
        )
    return found


POPULATION_DRAWS = 4


def _agreement_of(scenario: StudyScenario) -> dict[str, float]:
    """Population agreement: the same statistic on studies of 16000 cases and 1600 raters
    with the scenario's readers per item and overlap (agreement needs several readers of
    an item), averaged over `POPULATION_DRAWS` of them. One draw's own Monte Carlo error
    (about 0.004 for AC1 with rater x system effects, a tenth of a study's standard
    error) moved coverage by a point; the mean of four halves it."""
    key = repr(scenario)
    if key not in _AGREEMENT:
        population = scenario.scaled(n_cases=16000, raters=1600, likert=False)
        draws = [
            _agreement(simulate_study(population, seed=2 + k), variances=("units",))
            for k in range(POPULATION_DRAWS)
        ]
        _AGREEMENT[key] = {
            name: float(np.mean([found[name] for found in draws])) for name in ("kappa", "ac")
        }
    return _AGREEMENT[key]


def _likert(scenario: StudyScenario) -> StudyScenario:
    return scenario.scaled(criteria=(CRITERION, HARM))


def _population_of(scenario: StudyScenario) -> tuple[pd.Series, pd.Series]:
    """Population mean score per system, for the criterion and the harm criterion."""
    key = repr(scenario)
    if key not in _POPULATIONS:
        study = simulate_study(population_version(scenario), seed=1)
        long = likert.likert_long(study)
        means = long.groupby(["criterion", "system"])["score"].mean()
        _POPULATIONS[key] = (means[CRITERION], means[HARM])
    return _POPULATIONS[key]


def _covered(low: float, high: float, truth: float) -> float:
    if not (np.isfinite(low) and np.isfinite(high)):
        return 0.0  # no interval covers nothing
    return float(low <= truth <= high)


def _only(study: pd.DataFrame, criterion: str) -> pd.DataFrame:
    keep = [c for c in study.columns if not c.startswith("likert_") or c.endswith(criterion)]
    frame = study[keep]
    frame.attrs = dict(study.attrs)
    return frame


def _old_wilcoxon_fwer(study: pd.DataFrame) -> bool:
    """ebb17df: Wilcoxon signed-rank on every judgment's difference, Holm over the pairs."""
    frame = likert._paired(study, CRITERION)
    p = []
    for _, group in frame.groupby(["system_a", "system_b"], sort=True):
        diff = group["diff"].to_numpy(float)
        p.append(float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0)
    return bool((adjust_pvalues(pd.Series(p), "holm") < ALPHA).any())


def _study_rows(
    study: pd.DataFrame,
    means: pd.Series,
    harm: pd.Series,
    margin: float,
    agreeing: dict[str, float],
) -> dict:
    """Coverage indicators of one study of the scenario (lists per method)."""
    out: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    if _wanted("agreement"):
        found = _agreement(study)
        for key, name in AGREEMENT:
            for variance in agreement.AGREEMENT_VARIANCES:
                low, high = found[f"{key}_ci {variance}"]  # type: ignore[misc]
                add(f"{name} {variance}", _covered(low, high, agreeing[key]))

    accuracy = _only(study, CRITERION)
    if _wanted("means"):
        table = likert.likert_means(accuracy)
        for row in table.itertuples(index=False):
            truth = float(means[row.system])
            add("mean: model (logit t)", _covered(row.ci_low, row.ci_high, truth))
            half = stats.t.ppf(0.975, row.df) * row.se if np.isfinite(row.se) else np.nan
            add("mean: model (plain t)", _covered(row.mean - half, row.mean + half, truth))
        cases = likert.likert_means(accuracy, method="cases")
        for row in cases.itertuples(index=False):
            truth = float(means[row.system])
            add("mean: t over case means", _covered(row.ci_low, row.ci_high, truth))
            # ebb17df reported this interval around the mean of all ratings: covers the same.
            add(
                "mean: ebb17df (ratings mean, case-mean CI)",
                _covered(row.ci_low, row.ci_high, truth),
            )
    for method in ("cluster", "model", "cases") if _wanted("paired") else ():
        paired = likert.paired_differences(accuracy, method=method)
        for row in paired.itertuples(index=False):
            truth = float(means[row.system_a] - means[row.system_b])
            add(f"paired: {method}", _covered(row.ci_low, row.ci_high, truth))
    for name, kwargs in _models():
        fit = likert.mixed_model(accuracy, CRITERION, reference=REFERENCE, **kwargs)
        for row in fit.effects.itertuples(index=False):
            system = row.term.split(" - ")[0]
            truth = float(means[system] - means[REFERENCE])
            add(name, _covered(row.ci_low, row.ci_high, truth))
    if margin > 0 and _wanted("harm"):
        safety = _only(study, HARM)
        truth = float(harm[WORST] - harm[REFERENCE])
        for method in ("cluster", "model", "cases"):
            table = likert.harm_noninferiority(
                safety, comparator=REFERENCE, margin=margin, criterion=HARM, method=method
            ).set_index("system")
            row = table.loc[WORST]
            add(f"harm CI: {method}", _covered(row["ci_low"], row["ci_high"], truth))
            add(f"harm NI at margin: {method}", float(row["non_inferior"]))
            if method == "cases":
                add("harm NI at margin: ebb17df", float(row["ci_low"] > -margin))
    return out


MODELS: tuple[tuple[str, dict[str, str]], ...] = (
    ("mixed: default", {}),
    ("mixed: full", {"random": "full"}),
    ("mixed: Kenward-Roger", {"ddf": "kenward-roger"}),
    ("mixed: ebb17df", {"random": "intercepts", "ddf": "z"}),
)


def _models() -> list[tuple[str, dict[str, str]]]:
    return [
        (name, kwargs)
        for name, kwargs in MODELS
        if _wanted("mixed-kr" if kwargs.get("ddf") == "kenward-roger" else "mixed")
    ]


def _null_rows(study: pd.DataFrame) -> dict:
    out: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    accuracy = _only(study, CRITERION)
    for method in ("cluster", "model", "cases") if _wanted("paired") else ():
        paired = likert.paired_differences(accuracy, method=method)
        add(f"paired: {method}", float((paired["p_adj"] < ALPHA).any()))
        if method == "model":
            add("paired: Wilcoxon, case means", float((paired["p_wilcoxon_adj"] < ALPHA).any()))
    if _wanted("paired"):
        add("paired: Wilcoxon, judgments (ebb17df)", float(_old_wilcoxon_fwer(accuracy)))
    for name, kwargs in _models():
        fit = likert.mixed_model(accuracy, CRITERION, reference=REFERENCE, **kwargs)
        for p in fit.effects["p"]:
            add(name, float(p < ALPHA))
    return out


METHODS: tuple[tuple[str, str, bool, str | None, str | None], ...] = (
    # (method, quantity, default, coverage key, rejection key)
    (
        "mixed model, logit-scale t (Satterthwaite)",
        "Likert mean",
        True,
        "mean: model (logit t)",
        None,
    ),
    ("mixed model, plain t", "Likert mean", False, "mean: model (plain t)", None),
    ("t over case means", "Likert mean", False, "mean: t over case means", None),
    (
        "ebb17df: ratings mean, case-mean CI",
        "Likert mean",
        False,
        "mean: ebb17df (ratings mean, case-mean CI)",
        None,
    ),
    (
        "two-way cluster-robust (case, rater)",
        "paired difference (Holm FWER)",
        True,
        "paired: cluster",
        "paired: cluster",
    ),
    (
        "mixed model of differences (rater, case)",
        "paired difference (Holm FWER)",
        False,
        "paired: model",
        "paired: model",
    ),
    ("t over case means", "paired difference (Holm FWER)", False, "paired: cases", "paired: cases"),
    (
        "Wilcoxon on case means",
        "paired difference (Holm FWER)",
        False,
        None,
        "paired: Wilcoxon, case means",
    ),
    (
        "ebb17df: Wilcoxon on judgments",
        "paired difference (Holm FWER)",
        False,
        None,
        "paired: Wilcoxon, judgments (ebb17df)",
    ),
    (
        "within rater and case, Satterthwaite t",
        "mixed-model contrast (per test)",
        True,
        "mixed: default",
        "mixed: default",
    ),
    (
        "4 random effects (lme4's), Satterthwaite t",
        "mixed-model contrast (per test)",
        False,
        "mixed: full",
        "mixed: full",
    ),
    (
        "within rater and case, Kenward-Roger t",
        "mixed-model contrast (per test)",
        False,
        "mixed: Kenward-Roger",
        "mixed: Kenward-Roger",
    ),
    (
        "ebb17df: rater+case intercepts, z",
        "mixed-model contrast (per test)",
        False,
        "mixed: ebb17df",
        "mixed: ebb17df",
    ),
    (
        "two-way cluster-robust (case, rater), adjusted one-sided p",
        HARM_QUANTITY,
        True,
        "harm CI: cluster",
        "harm NI at margin: cluster",
    ),
    (
        "mixed model of differences (rater, case), adjusted one-sided p",
        HARM_QUANTITY,
        False,
        "harm CI: model",
        "harm NI at margin: model",
    ),
    ("case-level t", HARM_QUANTITY, False, "harm CI: cases", "harm NI at margin: cases"),
    (
        "ebb17df: unadjusted case-level CI",
        HARM_QUANTITY,
        False,
        None,
        "harm NI at margin: ebb17df",
    ),
    (
        "linearised, units and raters sampled (two-way)",
        AGREEMENT[0][1],
        True,
        f"{AGREEMENT[0][1]} units+raters",
        None,
    ),
    (
        "Gwet linearised t, raters fixed (irrCAC)",
        AGREEMENT[0][1],
        False,
        f"{AGREEMENT[0][1]} units",
        None,
    ),
    (
        "linearised, units and raters sampled (two-way)",
        AGREEMENT[1][1],
        True,
        f"{AGREEMENT[1][1]} units+raters",
        None,
    ),
    (
        "Gwet linearised t, raters fixed (irrCAC)",
        AGREEMENT[1][1],
        False,
        f"{AGREEMENT[1][1]} units",
        None,
    ),
)


def section_rows(
    scenario: StudyScenario, null: StudyScenario, n_studies: int, seed: int
) -> list[dict[str, Any]]:
    """One row per Likert method: coverage on `scenario`, null rejection on `null` (harm:
    on `scenario` with the margin at the true difference)."""
    scenario, null = _likert(scenario), _likert(null)
    # The scenarios share their random streams for a given seed; an offset per scenario
    # keeps one unlucky set of studies from repeating in every row.
    seed += zlib.crc32(scenario.name.encode()) % 1_000_000
    means, harm = _population_of(scenario)
    agreeing = _agreement_of(scenario) if _wanted("agreement") else {}
    margin = float(harm[REFERENCE] - harm[WORST])
    # statsmodels' Holm adjustment runs gc.collect(); frozen objects make that cheap.
    gc.freeze()
    # Per method, one list of outcomes per study (`montecarlo.pooled` clusters on studies).
    covered: dict[str, list[list[float]]] = {}
    rejected: dict[str, list[list[float]]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n_studies):
            for key, values in _study_rows(
                simulate_study(scenario, seed + k), means, harm, margin, agreeing
            ).items():
                covered.setdefault(key, []).append(values)
            if not (_wanted("paired") or _wanted("mixed") or _wanted("mixed-kr")):
                continue  # the other parts measure nothing on null studies
            for key, values in _null_rows(simulate_study(null, seed + 100_000 + k)).items():
                rejected.setdefault(key, []).append(values)
    rows = []
    for method, quantity, default, cover_key, reject_key in METHODS:
        if not _wanted(_part(quantity, method)):
            continue
        coverage = covered.get(cover_key) if cover_key else None
        if reject_key and reject_key.startswith("harm"):
            rejection = covered.get(reject_key)
        else:
            rejection = rejected.get(reject_key) if reject_key else None
        coverage_rate, coverage_se = pooled(coverage) if coverage else (None, None)
        rejection_rate, rejection_se = pooled(rejection) if rejection else (None, None)
        rows.append(
            {
                "method": method,
                "default": default,
                "quantity": quantity,
                "coverage": coverage_rate,
                "coverage_se": coverage_se,
                "rejection": rejection_rate,
                "rejection_se": rejection_se,
                "nominal": HARM_NOMINAL if quantity == HARM_QUANTITY else ALPHA,
            }
        )
    return rows


if __name__ == "__main__":
    import time

    from studies.reader_stats.simulation import SCENARIOS, null_version

    name = sys.argv[1] if len(sys.argv) > 1 else "rater x system"
    studies = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    start = time.perf_counter()
    for row in section_rows(SCENARIOS[name], null_version(SCENARIOS[name]), studies, 1):
        print(row)
    print(f"{time.perf_counter() - start:.1f} s")
