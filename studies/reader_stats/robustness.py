"""How many judgments hold a Bradley-Terry conclusion up: the fewest whose removal flips it.

Two conclusions are checked: the top rank (the best system stays ahead of the runner-up)
and the primary comparison's significance (the top system against the runner-up, Wald z
of their log-strength difference against 1.96). A first-order influence approximation
ranks the readings (one (case, rater, pair) row of the fit each) by how much removing
each moves the difference (the approximate maximum influence perturbation of Broderick,
Giordano & Meager, 2020): beta without row r is about beta + I^-1 s_r with s_r the row's
score, I the information. The fewest rows whose summed influence crosses the line are
then removed and the model refitted; if the refit has not flipped, the next rows are
added, refit by refit, so the number reported is one a refit confirms (or None when
removing a quarter of the readings does not flip it).

The line under the BT table says, for example, "Robustness: removing 4 of 240 judgments
(1.7%) flips the top rank (sys-a above sys-b); 2 make sys-a vs sys-b non-significant".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studies.reader_stats.bradley_terry import (
    BTRows,
    _information,
    _row_derivatives,
    build_rows,
    fit_batch,
)

Z_CRITICAL = 1.959963984540054
MAX_SHARE = 0.25  # stop looking beyond removing a quarter of the readings


@dataclass(frozen=True)
class Flip:
    """The fewest readings whose removal flips one conclusion."""

    conclusion: str
    approximate: int | None  # from the first-order influence
    verified: int | None  # confirmed by a refit (None: not within MAX_SHARE)
    removed: tuple[int, ...]  # row indices of the fit, most influential first


@dataclass(frozen=True)
class Robustness:
    top: str
    runner_up: str
    n_readings: int
    z: float
    top_rank: Flip
    significance: Flip

    def line(self) -> str:
        """The sentence shown under the BT table."""

        def part(flip: Flip, does: str, do: str) -> str:
            if flip.verified is None:
                limit = math.floor(MAX_SHARE * self.n_readings)
                return f"removing up to {limit} readings does not {do}"
            share = 100 * flip.verified / self.n_readings
            return f"removing {flip.verified} of {self.n_readings} readings ({share:.1f}%) {does}"

        rank = f"the top rank ({self.top} above {self.runner_up})"
        state = "non-significant" if abs(self.z) >= Z_CRITICAL else "significant"
        return (
            f"Robustness: {part(self.top_rank, f'flips {rank}', f'flip {rank}')}; "
            f"{part(self.significance, f'makes it {state}', f'make it {state}')} "
            f"({self.top} vs {self.runner_up}, z = {self.z:.2f}). Readings are (case, rater, "
            "pair) rows; first-order influence confirmed by refits."
        )


def _fit(rows: BTRows, keep: np.ndarray, tie_model: str) -> np.ndarray:
    beta, _ = fit_batch(rows, keep[None, :].astype(float), tie_model=tie_model)
    return beta[0]


def _strengths(rows: BTRows, beta: np.ndarray) -> np.ndarray:
    k = len(rows.systems)
    return np.concatenate([[0.0], beta[: k - 1]])


def _contrast(n_params: int, top: int, second: int) -> np.ndarray:
    c = np.zeros(n_params)
    for index, sign in ((top, 1.0), (second, -1.0)):
        if index > 0:  # system 0 is the reference (log-strength 0)
            c[index - 1] += sign
    return c


def _z(rows: BTRows, beta: np.ndarray, keep: np.ndarray, tie_model: str, top: int, second: int):
    sub = _subset(rows, keep)
    info = _information(sub, beta, tie_model, 1e-4)
    c = _contrast(len(beta), top, second)
    theta = _strengths(rows, beta)
    se = math.sqrt(float(c @ np.linalg.solve(info, c)))
    return (theta[top] - theta[second]) / se


def _subset(rows: BTRows, keep: np.ndarray) -> BTRows:
    mask = keep.astype(bool)
    return BTRows(
        systems=rows.systems,
        index_a=rows.index_a[mask],
        index_b=rows.index_b[mask],
        wins_a=rows.wins_a[mask],
        wins_b=rows.wins_b[mask],
        ties=rows.ties[mask],
        case_index=rows.case_index[mask],
        rater_index=rows.rater_index[mask],
        n_cases=rows.n_cases,
        n_raters=rows.n_raters,
        style=rows.style[mask],
        style_names=rows.style_names,
    )


def _influence(rows: BTRows, beta: np.ndarray, tie_model: str, c: np.ndarray) -> np.ndarray:
    """First-order change of c'beta when each row is removed: -c' I^-1 s_r."""
    g_d, g_eta = _row_derivatives(rows, beta, tie_model)
    info = _information(rows, beta, tie_model, 1e-4)
    w = np.linalg.solve(info, c)  # I^-1 c (I is symmetric)
    # s_r along the parameters: g_d (e_a - e_b) (+ g_eta on log nu)
    wa = np.where(rows.index_a > 0, w[np.maximum(rows.index_a - 1, 0)], 0.0)
    wb = np.where(rows.index_b > 0, w[np.maximum(rows.index_b - 1, 0)], 0.0)
    along = g_d * (wa - wb)
    if g_eta is not None:
        along = along + g_eta * w[-1]
    return -along


def _fewest(
    rows: BTRows,
    order: np.ndarray,
    needed: np.ndarray,
    flipped,  # (keep mask) -> bool, by a refit
    conclusion: str,
) -> Flip:
    limit = int(MAX_SHARE * len(order))
    reached = np.flatnonzero(np.cumsum(needed[order]) <= -1.0)
    approx_value = int(reached[0]) + 1 if reached.size and reached[0] < limit else None
    start = approx_value or 1
    keep = np.ones(len(order), dtype=bool)
    tried = 0
    for count in range(max(start, 1), limit + 1):
        keep[:] = True
        keep[order[:count]] = False
        tried += 1
        if flipped(keep):
            # step back while fewer still flip (the approximation may overshoot)
            while count > 1:
                keep[:] = True
                keep[order[: count - 1]] = False
                if not flipped(keep):
                    break
                count -= 1
            return Flip(conclusion, approx_value, count, tuple(int(i) for i in order[:count]))
        if tried > 40:
            break
    return Flip(conclusion, approx_value, None, ())


def robustness(
    judgments: pd.DataFrame, *, tie_model: str = "half", both_bad: str = "tie"
) -> Robustness:
    """The fewest readings whose removal flips the top rank or the top comparison's
    significance (see the module's docstring). Style control is not modelled here."""
    rows = build_rows(judgments, both_bad=both_bad)  # type: ignore[arg-type]
    n = len(rows.index_a)
    everything = np.ones(n, dtype=bool)
    beta = _fit(rows, everything, tie_model)
    theta = _strengths(rows, beta)
    ranked = np.argsort(-theta, kind="stable")
    top, second = int(ranked[0]), int(ranked[1])
    c = _contrast(len(beta), top, second)
    gap = float(theta[top] - theta[second])
    z = _z(rows, beta, everything, tie_model, top, second)
    delta = _influence(rows, beta, tie_model, c)

    def refit_gap(keep: np.ndarray) -> tuple[float, float]:
        fitted = _fit(rows, keep, tie_model)
        t = _strengths(rows, fitted)
        return float(t[top] - t[second]), _z(rows, fitted, keep, tie_model, top, second)

    # Top rank: the gap must fall to 0 -> remove the rows that shrink it most.
    order = np.argsort(delta, kind="stable")
    # needed: each row's contribution, scaled so the cumulative sum crosses 0 at the flip
    top_flip = _fewest(rows, order, delta / gap, lambda keep: refit_gap(keep)[0] <= 0, "top rank")
    # Significance: z must cross 1.96 (down if significant, up if not), SE held fixed.
    se = gap / z if z else math.inf
    target = Z_CRITICAL * se
    if abs(z) >= Z_CRITICAL:
        sig_order = order
        needed = delta / (gap - target)
        test = lambda keep: abs(refit_gap(keep)[1]) < Z_CRITICAL  # noqa: E731
    else:
        sig_order = np.argsort(-delta, kind="stable")
        needed = -delta / (target - gap)
        test = lambda keep: abs(refit_gap(keep)[1]) >= Z_CRITICAL  # noqa: E731
    sig_flip = _fewest(rows, sig_order, needed, test, "significance")
    return Robustness(
        top=rows.systems[top],
        runner_up=rows.systems[second],
        n_readings=n,
        z=float(z),
        top_rank=top_flip,
        significance=sig_flip,
    )


def robustness_note(analysis: Any) -> str | None:
    """The robustness line for a study analysis's BT table (None where it does not apply:
    no judgments at hand, style control, a disconnected comparison graph, a failed fit)."""
    judgments = getattr(analysis, "judgments", None)
    settings = analysis.settings
    if judgments is None or judgments.empty or settings.style:
        return None
    component = getattr(analysis.bt, "component", np.zeros(0))
    if len(component) and int(np.max(component)) > 1:
        return None  # ranks are only within components there
    try:
        found = robustness(judgments, tie_model=settings.tie_model, both_bad=settings.both_bad)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return found.line()
