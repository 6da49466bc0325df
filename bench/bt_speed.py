"""Bradley-Terry interval speed: 100,000 judgments x 20 systems.

Measures, in one run:
- the two-way (case and rater) cluster-robust sandwich intervals (`bradley_terry`,
  interval "sandwich"): from prepared judgments, and from the counts (fit + variance);
- a 1,000-resample two-way cluster bootstrap (`bradley_terry`, interval "bootstrap");
- the baseline: FastChat's `compute_bootstrap_bt` (fastchat/serve/monitor/elo_analysis.py),
  re-implemented here from its published description: battles reduced to unique
  (system a, system b, outcome) rows with counts, judgments resampled by one multinomial
  draw per round (unclustered), and each round fitted by L-BFGS-B on the Bradley-Terry
  log-loss (ties half a win each), one round after another.
Prints times and ratios (baseline / ours). `--write-docs` writes the docs/benchmarks.md
section through bench/docs_section.py.

Usage: python bench/bt_speed.py [--judgments 100000] [--systems 20] [--rounds 1000] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs_section import cpu_name, write_section  # noqa: E402

from studies.reader_stats.bradley_terry import (  # noqa: E402
    _RIDGE,
    _layout,
    _newton,
    _to_units,
    bradley_terry,
    build_rows,
    cluster_covariance,
)

SECTION = "## Bradley-Terry intervals: speed"


def synthetic_judgments(n: int, n_systems: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic judgments: 2,000 cases, 40 raters, random pairs, Bradley-Terry outcomes
    with ties (labelled synthetic)."""
    rng = np.random.default_rng(seed)
    strengths = np.linspace(-1.0, 1.0, n_systems)
    a = rng.integers(0, n_systems, n)
    b = (a + rng.integers(1, n_systems, n)) % n_systems
    d = strengths[a] - strengths[b]
    half = np.exp(d / 2.0)
    denominator = half + 1.0 / half + 0.5
    u = rng.random(n)
    winner = np.where(
        u < half / denominator, "a", np.where(u < (half + 0.5) / denominator, "tie", "b")
    )
    names = np.array([f"system{i:02d}" for i in range(n_systems)])
    frame = pd.DataFrame(
        {
            "rater": np.char.add("rater", rng.integers(0, 40, n).astype(str)),
            "case": np.char.add("case", rng.integers(0, 2000, n).astype(str)),
            "system_a": names[a],
            "system_b": names[b],
            "winner": winner,
            "is_gold": False,
            "is_duplicate": False,
        }
    )
    frame.attrs["synthetic"] = True
    return frame


# --- the baseline: FastChat's compute_bootstrap_bt, re-implemented ------------------------


def _unique_battles(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(pairs of system indices, outcome of a, counts, systems) over unique battles."""
    systems = sorted(set(frame["system_a"]) | set(frame["system_b"]))
    index = {s: i for i, s in enumerate(systems)}
    outcome = frame["winner"].map({"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5})
    keys = pd.DataFrame(
        {
            "a": frame["system_a"].map(index),
            "b": frame["system_b"].map(index),
            "y": outcome,
        }
    )
    counted = keys.groupby(["a", "b", "y"], as_index=False).size()
    pairs = counted[["a", "b"]].to_numpy(dtype=int)
    return pairs, counted["y"].to_numpy(dtype=float), counted["size"].to_numpy(float), len(systems)


def _loss_and_gradient(
    ratings: np.ndarray, pairs: np.ndarray, outcome: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray]:
    d = ratings[pairs[:, 0]] - ratings[pairs[:, 1]]
    p = 1.0 / (1.0 + np.exp(-d))
    eps = 1e-12
    loss = -float(
        np.sum(weights * (outcome * np.log(p + eps) + (1 - outcome) * np.log(1 - p + eps)))
    )
    g = weights * (p - outcome)
    gradient = np.zeros_like(ratings)
    np.add.at(gradient, pairs[:, 0], g)
    np.add.at(gradient, pairs[:, 1], -g)
    return loss, gradient


def fastchat_style_bootstrap(frame: pd.DataFrame, rounds: int, seed: int = 0) -> np.ndarray:
    """Rounds x systems natural-scale ratings: one L-BFGS-B fit per multinomial resample."""
    pairs, outcome, counts, n_systems = _unique_battles(frame)
    rng = np.random.default_rng(seed)
    total = int(counts.sum())
    draws = rng.multinomial(total, counts / total, rounds) / total
    ratings = np.empty((rounds, n_systems))
    for r, weights in enumerate(draws):
        result = minimize(
            _loss_and_gradient,
            np.zeros(n_systems),
            args=(pairs, outcome, weights),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 100, "gtol": 1e-6},
        )
        ratings[r] = result.x - result.x.mean()
    return ratings


# --- the run -------------------------------------------------------------------------------


def _best_of(repeats: int, run) -> tuple[float, float]:  # noqa: ANN001
    """(wall, CPU) seconds of the fastest of `repeats` runs: on a shared machine the CPU
    time of this process says what the wall time would be without the others."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        run()
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgments", type=int, default=100_000)
    parser.add_argument("--systems", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap resamples / rounds")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    frame = synthetic_judgments(args.judgments, args.systems)
    rows = build_rows(frame)
    layout = _layout(rows)

    def sandwich_from_counts() -> None:
        counts = [_to_units(layout, c[None]) for c in (rows.wins_a, rows.wins_b, rows.ties)]
        point, _ = _newton(
            rows,
            layout,
            *counts,
            tie_model="half",
            start=None,
            ridge=_RIDGE,
            max_iter=200,
            tol=1e-9,
        )
        cluster_covariance(rows, point[0], cluster="case+rater", ridge=_RIDGE)

    timings = {
        "sandwich, from counts": _best_of(5, sandwich_from_counts),
        "sandwich, from judgments": _best_of(
            3, lambda: bradley_terry(frame, interval="sandwich", cluster="case+rater")
        ),
        f"two-way bootstrap, {args.rounds} resamples": _best_of(
            1,
            lambda: bradley_terry(
                frame, interval="bootstrap", cluster="case+rater", n_resamples=args.rounds
            ),
        ),
    }
    baseline_name = f"FastChat-style bootstrap, {args.rounds} rounds (unclustered)"
    timings[baseline_name] = _best_of(1, lambda: fastchat_style_bootstrap(frame, args.rounds))
    # The same estimand: our unclustered bootstrap's spread against the baseline's.
    ours = bradley_terry(frame, interval="bootstrap", cluster="none", n_resamples=200, seed=1)
    theirs = fastchat_style_bootstrap(frame, 200, seed=1)
    spread = float(np.median(ours.boot.std(axis=0) / theirs.std(axis=0)))
    baseline = timings[baseline_name]
    lines = [
        "| what | wall s | CPU s | baseline / this (wall) | baseline / this (CPU) |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {wall:.3f} | {cpu:.3f} | {baseline[0] / wall:.1f}x "
            f"| {baseline[1] / cpu:.1f}x |"
            for name, (wall, cpu) in timings.items()
        ),
    ]
    table = "\n".join(lines)
    print(table)
    print(f"bootstrap SD, ours (unclustered) / baseline: {spread:.3f} (median over systems)")
    if args.write_docs:
        section = (
            f"{SECTION}\n\n"
            f"`python bench/bt_speed.py --judgments {args.judgments} --systems {args.systems} "
            f"--rounds {args.rounds}` on a 2-core x86-64 CPU VM, no GPU ({cpu_name()}, "
            f"{os.cpu_count()} cores visible). Synthetic judgments (2,000 cases, 40 raters, "
            f"ties). Targets: sandwich intervals under 0.1 s, a 1,000-resample two-way cluster "
            "bootstrap under 10 s. CPU s: this process's CPU time (the machine is shared, so wall "
            "time includes waiting for other processes). Baseline: FastChat's "
            "`compute_bootstrap_bt` (unique battles, "
            "one multinomial resample and one L-BFGS-B fit per round, unclustered), "
            "re-implemented in the bench and run in the same process, one round after another. "
            f"Unclustered bootstrap SD, ours / baseline's: {spread:.3f} (the same estimand).\n\n"
            f"{table}\n"
        )
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
