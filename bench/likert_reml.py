"""Speed of the Likert mixed model: `crossed_reml` (Henderson's equations, Satterthwaite df)
against statsmodels' MixedLM with the same variance components, in the same process, on
synthetic studies of 6 raters x 60 cases x 3 systems (3 readers per item).

Prints seconds per fit and the ratio statsmodels / crossed_reml, for the default model
(rater x system and report random, rater and case as fixed blocks), lme4's full model (rater,
case, rater x system, report random) and the ebb17df one (rater and case intercepts).

Usage: python bench/likert_reml.py [--repeats 3] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs_section import cpu_name, write_section  # noqa: E402

from studies.reader_stats import likert  # noqa: E402
from studies.reader_stats.likert import ModelFit, mixed_model  # noqa: E402
from studies.reader_stats.simulation import StudyScenario, simulate_study  # noqa: E402

SECTION = "## Likert mixed model: REML speed"
LABELS = {
    "within": "rater x system, report; rater and case fixed (default)",
    "full": "rater, case, rater x system, report",
    "intercepts": "rater, case (ebb17df)",
}
SCENARIO = StudyScenario(
    "6 raters x 60 cases x 3 systems",
    {"A": 0.4, "B": 0.0, "C": -0.4},
    n_cases=60,
    raters=6,
    raters_per_item=3,
    case_sd=0.6,
    rater_sd=0.5,
    rater_system_sd=0.5,
    report_sd=0.4,
    criteria=("accuracy",),
)


def seconds(fit: Callable[[], ModelFit], repeats: int) -> tuple[float, ModelFit]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def deviance(study: pd.DataFrame, random: str, variance: dict[str, float]) -> float:
    """-2 REML (constants dropped) of the Likert model at the given variance components."""
    long = likert.likert_long(study).reset_index(drop=True)
    others = sorted(long["system"].unique())[1:]
    design = np.column_stack(
        [np.ones(len(long))] + [(long["system"] == s).to_numpy(float) for s in others]
    )
    fixed = likert.FIXED_BLOCKS.get(random, ())
    blocks = likert.random_factors(long, fixed)
    factors = likert.random_factors(long, likert.RANDOM_EFFECTS[random])
    system = likert._Henderson(long["score"].to_numpy(float), design, factors, blocks)
    varpar = np.array([max(variance[n], 1e-12) for n in system.free] + [variance["residual"]])
    return system.deviance(varpar)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    study = simulate_study(SCENARIO, seed=7)
    rows = []
    for random in ("within", "full", "intercepts"):
        ours, fast = seconds(
            lambda r=random: mixed_model(study, "accuracy", random=r), args.repeats
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs, slow = seconds(
                lambda r=random: mixed_model(study, "accuracy", random=r, engine="statsmodels"),
                args.repeats,
            )
        gap = float((fast.effects["estimate"] - slow.effects["estimate"]).abs().max())
        converged = not any("converge" in w or "failed" in w for w in slow.warnings)
        excess = deviance(study, random, slow.variance) - deviance(study, random, fast.variance)
        rows.append((random, ours, theirs, gap, converged, excess))
        print(
            f"{random}: crossed_reml {ours:.3f} s, statsmodels {theirs:.3f} s, {theirs / ours:.1f}x"
        )
    n = len(study) * 2
    table = "\n".join(
        [
            "| random effects | crossed_reml (s) | statsmodels MixedLM (s) | ratio "
            "| max abs difference of the contrasts | statsmodels converged "
            "| -2 REML, statsmodels minus crossed_reml |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {LABELS[r]} | {o:.3f} | {t:.3f} | {t / o:.1f}x | {g:.1e} "
                f"| {'yes' if c else 'no'} | {d:.2f} |"
                for r, o, t, g, c, d in rows
            ),
        ]
    )
    print(table)
    if args.write_docs:
        write_section(
            SECTION,
            f"{SECTION}\n\n`python bench/likert_reml.py --repeats {args.repeats}` on {cpu_name()} "
            f"({os.cpu_count()} cores, no GPU): one criterion of a synthetic study of "
            f"{SCENARIO.name} ({n} ratings), median of {args.repeats} fits; crossed_reml "
            "includes the Satterthwaite degrees of freedom, statsmodels gives z tests.\n\n"
            f"{table}\n",
        )


if __name__ == "__main__":
    main()
