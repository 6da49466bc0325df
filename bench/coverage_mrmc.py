"""Coverage section "mrmc" of bench/coverage.py: MRMC (Obuchowski-Rockette) intervals and
tests on simulated reader studies, and predicted against simulated power.

Two kinds of rows per scenario:

1. The scenario's own simulated studies (`simulate_study`, SYNTHETIC judgments), analysed
   as the workbench analyses a study: win rate against the baseline system (the weakest,
   "C") and the mean Likert accuracy, each by RRRC with U-statistic covariances (the
   default for these incomplete designs: each case and pair is read by a few raters), and
   FRRC as the alternative that treats the raters as fixed. Coverage: the 95% CI of each
   modality's reader-averaged FOM (win rate) or of each difference (Likert) covers the
   estimand, the same estimate on a population-sized study of the scenario; rejection: the
   global test (Likert) or any win rate's test against 0.5 rejects on the null version.
2. A fully crossed study with the scenario's readers and cases, simulated here in long
   format from a linear model whose OR parameters are known (case, reader x modality,
   case x modality, reader x case variances from the scenario's standard deviations):
   the RRRC CI coverage of the difference, the null rejection, and the power that
   `studies.reader_stats.power.power` predicts (for the difference it gives 70% power)
   against the share of studies that reject (the bar: within 3 points).

Run alone: python bench/coverage_mrmc.py [--studies 1000] [--write-docs] prints the power
check for every scenario and writes its own docs/benchmarks.md section.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from montecarlo import pooled  # noqa: E402

from studies.reader_stats.mrmc import (  # noqa: E402
    Cell,
    MRMCError,
    analyse_cells,
    likert_readings_from_judgments,
    mrmc,
    readings_from_judgments,
)
from studies.reader_stats.power import ORParameters, power  # noqa: E402
from studies.reader_stats.simulation import (  # noqa: E402
    StudyScenario,
    population_version,
    simulate_study,
)

ALPHA = 0.05
CRITERION = "accuracy"
POWER_BAR = 0.03
TARGET_POWER = 0.7
# Fully crossed OR-model studies per scenario in the section, at least.
POWER_STUDIES = 1000


def _effect_for(params: ORParameters, readers: int, cases: int, target: float) -> float:
    """The difference with `target` predicted power (bisection; power grows with it)."""
    low, high = 0.0, 5.0
    for _ in range(60):
        middle = (low + high) / 2
        if power(params, middle, readers, cases, alpha=ALPHA) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _baseline(scenario: StudyScenario) -> str:
    return min(scenario.strengths, key=lambda s: (scenario.strengths[s], s))


def _likert(judgments: Any) -> Any:
    return likert_readings_from_judgments(judgments, CRITERION)


def _analyses(judgments: Any, baseline: str) -> dict[str, Any]:
    """The MRMC analyses of one simulated study (None where the design is refused)."""
    out: dict[str, Any] = {}
    wins = readings_from_judgments(judgments, baseline)
    likert = _likert(judgments)
    for analysis in ("rrrc", "frrc"):
        try:
            out[("winrate", analysis)] = mrmc(wins, "winrate", baseline=baseline, analysis=analysis)
        except MRMCError:
            out[("winrate", analysis)] = None
        try:
            out[("mean", analysis)] = mrmc(likert, "mean", analysis=analysis)
        except MRMCError:
            out[("mean", analysis)] = None
    return out


_ESTIMANDS: dict[tuple[str, int], dict[str, Any]] = {}


def _estimands(scenario: StudyScenario, seed: int) -> dict[str, Any]:
    """The point estimates on a population-sized study of the scenario (simulated once)."""
    key = (repr(scenario), seed)
    if key not in _ESTIMANDS:
        _ESTIMANDS[key] = _population_estimates(scenario, seed)
    return _ESTIMANDS[key]


def _complete(readings: Any) -> Any:
    """Readers with two cases or more in every modality: in a population study with very
    unequal workloads some raters read too little to have a figure of merit of their own."""
    counts = readings.groupby(["reader", "modality"]).size().unstack(fill_value=0)
    keep = counts.index[(counts >= 2).all(axis=1)]
    kept = readings[readings["reader"].isin(keep)].reset_index(drop=True)
    kept.attrs = dict(readings.attrs)
    return kept


def _population_estimates(scenario: StudyScenario, seed: int) -> dict[str, Any]:
    baseline = _baseline(scenario)
    population = simulate_study(population_version(scenario), seed=seed + 9_000_000)
    wins = mrmc(
        _complete(readings_from_judgments(population, baseline)), "winrate", baseline=baseline
    )
    likert = mrmc(_complete(_likert(population)), "mean")
    return {
        "winrate": wins.modalities.set_index("modality")["estimate"],
        "mean": likert.differences.set_index("comparison")["estimate"],
    }


def _judgment_rows(scenario: StudyScenario, null: StudyScenario, n_studies: int, seed: int):
    baseline = _baseline(scenario)
    truth = _estimands(scenario, seed)
    # One list of outcomes per study (`montecarlo.pooled` clusters on studies).
    covered: dict[tuple[str, str], list[list[bool]]] = {}
    rejected: dict[tuple[str, str], list[list[bool]]] = {}
    refused = 0
    for i in range(n_studies):
        study = _analyses(simulate_study(scenario, seed=seed + i), baseline)
        nulls = _analyses(simulate_study(null, seed=seed + 500_000 + i), baseline)
        for key, result in study.items():
            if result is None:
                refused += 1
                continue
            fom, _ = key
            if fom == "winrate":
                table = result.modalities.set_index("modality")
            else:
                table = result.differences.set_index("comparison")
            target = truth[fom].reindex(table.index).to_numpy()
            hits = (table["ci_low"].to_numpy() <= target) & (target <= table["ci_high"].to_numpy())
            covered.setdefault(key, []).append(hits.tolist())
        for key, result in nulls.items():
            if result is None:
                continue
            fom, _ = key
            if fom == "winrate":
                hit = bool((result.modalities["p_holm"] < ALPHA).any())
            else:
                hit = bool(result.test["p"] < ALPHA)
            rejected.setdefault(key, []).append([hit])
    rows = []
    labels = {
        ("winrate", "rrrc"): "MRMC win rate vs baseline, RRRC (U-statistic)",
        ("winrate", "frrc"): "MRMC win rate vs baseline, FRRC (readers fixed)",
        ("mean", "rrrc"): f"MRMC Likert {CRITERION} mean, RRRC (U-statistic)",
        ("mean", "frrc"): f"MRMC Likert {CRITERION} mean, FRRC (readers fixed)",
    }
    quantity = {
        "winrate": "each system's win rate; null: any vs 0.5 (Holm)",
        "mean": "differences; null: global F",
    }
    for key, label in labels.items():
        coverage, coverage_se = pooled(covered.get(key, []))
        rejection, rejection_se = pooled(rejected.get(key, []))
        rows.append(
            {
                "method": label + (f" [{refused} refused]" if refused and key[1] == "rrrc" else ""),
                "default": key[1] == "rrrc",
                "quantity": quantity[key[0]],
                "coverage": coverage,
                "coverage_se": coverage_se,
                "rejection": rejection,
                "rejection_se": rejection_se,
            }
        )
    return rows


# --- the OR-model simulation: predicted and simulated power -------------------------------


def or_model(scenario: StudyScenario) -> dict[str, float]:
    """Variance components of a Likert-like score for the scenario's random effects.

    score = mu_m + tr + case + case x modality + reader x case + noise, with the
    scenario's standard deviations (rater x system as reader x modality, report effects as
    case x modality, scaled by the Likert slope); a reader x case term of half the rater
    spread. (Case and reader x case effects cancel in the paired difference; they are there
    for the single-modality intervals.)
    """
    slope = scenario.likert_slope
    return {
        "var_tr": (slope * scenario.rater_system_sd) ** 2,
        "case": scenario.case_sd**2 + 0.05,
        "case_modality": (slope * scenario.report_sd) ** 2,
        "reader_case": (0.5 * max(scenario.rater_sd, 0.2)) ** 2,
        "noise": scenario.likert_noise**2,
    }


def or_parameters(model: dict[str, float], cases: int) -> ORParameters:
    per_case = model["case"] + model["case_modality"] + model["reader_case"] + model["noise"]
    return ORParameters(
        var_tr=model["var_tr"],
        var_error=per_case / cases,
        corr1=(model["case"] + model["reader_case"]) / per_case,
        corr2=(model["case"] + model["case_modality"]) / per_case,
        corr3=model["case"] / per_case,
        cases=cases,
        source="the simulation model",
    )


def _simulated_or(
    model: dict[str, float], readers: int, cases: int, effect: float, rng: np.random.Generator
):
    sd = {k: math.sqrt(v) for k, v in model.items()}
    case = rng.normal(0, sd["case"], cases)
    reader_case = rng.normal(0, sd["reader_case"], (readers, cases))
    cells = {}
    index = np.arange(cases)
    for m, shift in enumerate((0.0, effect)):
        tr = rng.normal(0, sd["var_tr"], readers)[:, None]
        case_modality = rng.normal(0, sd["case_modality"], cases)[None, :]
        noise = rng.normal(0, sd["noise"], (readers, cases))
        score = shift + tr + case[None, :] + case_modality + reader_case + noise
        for j in range(readers):
            cells[(m, j)] = Cell(cases=index, values=score[j])
    names = [f"r{j}" for j in range(readers)]
    return analyse_cells(cells, "mean", ["M0", "M1"], names, cases)


def power_check(scenario: StudyScenario, n_studies: int, seed: int) -> dict[str, float]:
    """Predicted and simulated power, CI coverage and null rejection of the OR RRRC test."""
    model = or_model(scenario)
    readers, cases = scenario.raters, scenario.n_cases
    params = or_parameters(model, cases)
    # The difference the design detects with 70% power: where a wrong formula shows most
    # (near 0 or 1 every formula agrees).
    effect = _effect_for(params, readers, cases, TARGET_POWER)
    predicted = power(params, effect, readers, cases, alpha=ALPHA)
    rng = np.random.default_rng(seed)
    rejected, covered, null_rejected = 0, 0, 0
    for _ in range(n_studies):
        result = _simulated_or(model, readers, cases, effect, rng)
        diff = result.differences.iloc[0]  # M0 - M1 = -effect
        rejected += diff["p"] < ALPHA
        covered += diff["ci_low"] <= -effect <= diff["ci_high"]
        null_rejected += _simulated_or(model, readers, cases, 0.0, rng).test["p"] < ALPHA
    return {
        "readers": readers,
        "cases": cases,
        "effect": effect,
        "predicted": predicted,
        "simulated": rejected / n_studies,
        "coverage": covered / n_studies,
        "null_rejection": null_rejected / n_studies,
    }


def _binomial_se(rate: float, n: int) -> float:
    # One interval and one test per OR-model study: independent outcomes.
    return math.sqrt(rate * (1.0 - rate) / n)


def section_rows(
    scenario: StudyScenario, null: StudyScenario, n_studies: int, seed: int
) -> list[dict[str, Any]]:
    rows = _judgment_rows(scenario, null, n_studies, seed)
    # The OR-model studies are cheap (about 0.03 s each): enough of them that a 5% rejection
    # is measured to +-0.014, where 200 left single verdicts of 0.065-0.09 within noise.
    power_studies = max(n_studies, POWER_STUDIES)
    check = power_check(scenario, power_studies, seed)
    gap = check["simulated"] - check["predicted"]
    rows.append(
        {
            "method": f"OR RRRC, fully crossed {check['readers']} readers x {check['cases']} cases "
            "(OR-model simulation)",
            "default": True,
            "quantity": f"difference {check['effect']:.2f}; power predicted "
            f"{check['predicted']:.3f}, simulated {check['simulated']:.3f} "
            f"({'within' if abs(gap) <= POWER_BAR else 'outside'} 3 points; Monte Carlo SE "
            f"{math.sqrt(check['predicted'] * (1 - check['predicted']) / power_studies):.3f}; "
            f"{power_studies} studies)",
            "coverage": check["coverage"],
            "coverage_se": _binomial_se(check["coverage"], power_studies),
            "rejection": check["null_rejection"],
            "rejection_se": _binomial_se(check["null_rejection"], power_studies),
        }
    )
    return rows


def main() -> None:
    from docs_section import cpu_name, write_section

    from studies.reader_stats.simulation import SCENARIOS

    parser = argparse.ArgumentParser(description="MRMC power: predicted against simulated")
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    lines = [
        "| scenario | readers x cases | difference | predicted power | simulated power "
        "| gap | CI coverage | null rejection |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for name, scenario in SCENARIOS.items():
        check = power_check(scenario, args.studies, args.seed)
        gap = check["simulated"] - check["predicted"]
        worst = max(worst, abs(gap))
        lines.append(
            f"| {name} | {check['readers']} x {check['cases']} | {check['effect']:.2f} "
            f"| {check['predicted']:.3f} | {check['simulated']:.3f} | {gap:+.3f} "
            f"| {check['coverage']:.3f} | {check['null_rejection']:.3f} |"
        )
        print(lines[-1], flush=True)
    se = 1.96 * math.sqrt(0.25 / args.studies)
    summary = (
        f"Largest gap between predicted and simulated power: {worst:.3f} "
        f"({'within' if worst <= POWER_BAR else 'outside'} the 3-point bar; Monte Carlo "
        f"95% half-width at most {se:.3f})."
    )
    print(summary)
    if args.write_docs:
        heading = "## MRMC power: predicted and simulated"
        text = (
            f"{heading}\n\n"
            f"`python bench/coverage_mrmc.py --studies {args.studies}` on {cpu_name()} "
            f"({os.cpu_count()} cores, no GPU), {time.perf_counter() - started:.0f} s. For each "
            "scenario of `studies.reader_stats.simulation`, a fully crossed study with its "
            "readers and cases is simulated from a linear model whose Obuchowski-Rockette "
            "parameters are known (SYNTHETIC data); predicted power is "
            "`studies.reader_stats.power.power` (Hillis, Obuchowski & Berbaum 2011), simulated "
            "power the share of studies whose OR RRRC test (jackknife, Hillis df) rejects at "
            "5%; CI coverage is that of the 95% CI of the difference; null rejection uses the "
            "same model without the difference. The difference is the one the design detects "
            "with 70% predicted power.\n\n" + "\n".join(lines) + f"\n\n{summary}\n"
        )
        write_section(heading, text)


if __name__ == "__main__":
    main()
