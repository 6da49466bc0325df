"""Power and sample size of a multi-reader multi-case study (Obuchowski-Rockette, Hillis df).

The method is Hillis, Obuchowski & Berbaum (2011), "Power estimation for multireader ROC
methods: an updated and unified approach" (Acad Radiol 18:129-142): a pilot study's OR
parameters (the reader x modality variance and the error variance and correlations of
the FOMs, which scale with 1/cases) give, for J readers and K cases, the noncentral F
that the RRRC test statistic follows, with Hillis's denominator df. For two modalities
and an effect delta (the difference of the reader-averaged FOMs):

    E[D]      = var_tr + var_e - cov1 + (J - 1) max(cov2 - cov3, 0)       (error term)
    E[MS_TR]  = var_tr + var_e - cov1 - cov2 + cov3
    lambda    = J delta^2 / (2 E[D]),   ddf = E[D]^2 / (E[MS_TR]^2 / (J - 1))
    power     = P(F'(1, ddf, lambda) > F_{1-alpha}(1, ddf)),

where var_e and the covariances are those of a FOM read on K cases. A design in which each
case is read by only k of the J readers (both modalities by the same reader, as in a
paired reader study) has FOMs on fewer cases and readers that share only some cases: the
per-case moments of the pilot are scaled by the share of cases each pair of FOMs has in
common (k/J for one reader, k(k-1)/(J(J-1)) for two readers). FRRC (fixed readers) and
RRFC (fixed cases) have their own error terms. Without a pilot, the parameters may be
stated as ranges; the grid then gives the power at the pessimistic and the optimistic end.
Research software.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from studies.reader_stats.mrmc import ANALYSES, MRMCError, MRMCResult


@dataclass(frozen=True)
class ORParameters:
    """OR parameters of one figure of merit, as estimated on a pilot of `cases` cases.

    var_tr: reader x modality variance (does not shrink with cases). var_error: variance
    of one reader's FOM over case samples; corr1/corr2/corr3: its correlations with the
    same reader in the other modality, another reader in the same modality, another reader
    in the other modality. var_reader only enters the single-modality analysis.
    """

    var_tr: float
    var_error: float
    corr1: float
    corr2: float
    corr3: float
    cases: int
    var_reader: float = 0.0
    source: str = "stated"

    def check(self) -> None:
        problems = []
        if self.var_error <= 0:
            problems.append(f"the error variance must be > 0, not {self.var_error}")
        for name in ("corr1", "corr2", "corr3"):
            value = getattr(self, name)
            if not -1 <= value <= 1:
                problems.append(f"{name} must be between -1 and 1, not {value}")
        if self.cases < 2:
            problems.append(f"the pilot's number of cases must be at least 2, not {self.cases}")
        if problems:
            raise MRMCError("; ".join(problems))

    @classmethod
    def from_result(cls, result: MRMCResult) -> ORParameters:
        """The parameters of an OR analysis (a pilot study), per case read by one reader.

        In an incomplete pilot each FOM rests on fewer cases than the study has; the
        parameters are put on the scale of a fully crossed pilot of `result.n_cases`
        cases through the per-case moments the analysis records.
        """
        c = result.components
        moments = result.case_moments
        cases = result.n_cases
        var_e = moments["var"] / cases
        # clamp: the ANOVA estimate of var_tr can be negative
        return cls(
            var_tr=max(c["var_treatment_reader"], 0.0)
            if math.isfinite(c["var_treatment_reader"])
            else 0.0,
            var_error=var_e,
            corr1=moments["cov1"] / moments["var"],
            corr2=moments["cov2"] / moments["var"],
            corr3=moments["cov3"] / moments["var"],
            cases=cases,
            var_reader=max(c["var_reader"], 0.0),
            source=f"pilot: {len(result.readers)} readers, {cases} cases ({result.covariance})",
        )


def _moments(params: ORParameters, readers: int, cases: int, readers_per_case: int | None):
    """Var(e), Cov1, Cov2, Cov3 of a FOM in a study of `readers` x `cases`."""
    k = readers if readers_per_case is None else readers_per_case
    if not 1 <= k <= readers:
        raise MRMCError(f"readers per case must be between 1 and {readers}, not {k}")
    per_case = params.var_error * params.cases  # the variance of one case's contribution
    n_cell = cases * k / readers  # cases one reader reads (in each modality)
    shared_two = cases * k * (k - 1) / (readers * (readers - 1)) if readers > 1 else 0.0
    var_e = per_case / n_cell
    cov1 = params.corr1 * per_case / n_cell
    scale = shared_two / n_cell**2
    return var_e, cov1, params.corr2 * per_case * scale, params.corr3 * per_case * scale


def power(
    params: ORParameters,
    effect: float,
    readers: int,
    cases: int,
    *,
    analysis: str = "rrrc",
    alpha: float = 0.05,
    readers_per_case: int | None = None,
    against_value: bool = False,
) -> float:
    """Power of the two-modality OR test to detect a difference `effect` of the FOMs.

    against_value: the test of one modality's FOM against a fixed value instead (a win
    rate against 0.5: no preference over the baseline), `effect` away from it; the error
    term is Hillis's single-modality one, var_reader + var_e + (J - 1) max(cov2, 0).
    """
    if analysis not in ANALYSES:
        raise MRMCError(f"unknown analysis {analysis!r}; use one of {', '.join(ANALYSES)}")
    if readers < 2 or cases < 2:
        raise MRMCError("a study needs at least 2 readers and 2 cases")
    var_e, cov1, cov2, cov3 = _moments(params, readers, cases, readers_per_case)
    var_tr = max(params.var_tr, 0.0)
    if against_value:
        var_r, shared = max(params.var_reader, 0.0), max(cov2, 0.0)
        if analysis == "rrrc":
            denominator = var_r + var_e + (readers - 1) * shared
            ms_r = var_r + var_e - shared
            ddf = denominator**2 / (ms_r**2 / (readers - 1)) if ms_r > 0 else math.inf
        elif analysis == "frrc":
            denominator, ddf = var_e + (readers - 1) * shared, math.inf
        else:
            denominator, ddf = var_r + var_e - shared, float(readers - 1)
        # F(1, ddf) = t^2 with noncentrality J delta^2 / error term
        effect = effect * math.sqrt(2)
    elif analysis == "rrrc":
        denominator = var_tr + var_e - cov1 + (readers - 1) * max(cov2 - cov3, 0.0)
        ms_tr = var_tr + var_e - cov1 - max(cov2 - cov3, 0.0)  # Hillis et al. (2011) eq. 10
        ddf = denominator**2 / (ms_tr**2 / (readers - 1)) if ms_tr > 0 else math.inf
    elif analysis == "frrc":
        denominator = var_e - cov1 + (readers - 1) * max(cov2 - cov3, 0.0)
        ddf = math.inf
    else:
        denominator = var_tr + var_e - cov1 - max(cov2 - cov3, 0.0)
        ddf = float(readers - 1)
    if denominator <= 0:
        return 1.0 if effect != 0 else alpha
    noncentrality = readers * effect**2 / (2 * denominator)
    if math.isinf(ddf):
        critical = sps.chi2.ppf(1 - alpha, 1)
        if noncentrality == 0:
            return float(sps.chi2.sf(critical, 1))
        return float(sps.ncx2.sf(critical, 1, noncentrality))
    critical = sps.f.ppf(1 - alpha, 1, ddf)
    if noncentrality == 0:
        return float(sps.f.sf(critical, 1, ddf))  # scipy's ncf is wrong at nc = 0
    return float(sps.ncf.sf(critical, 1, ddf, noncentrality))


def power_grid(
    params: ORParameters | tuple[ORParameters, ORParameters],
    effect: float,
    readers: list[int],
    cases: list[int],
    **options: Any,
) -> pd.DataFrame:
    """Power for every readers x cases design: rows readers, columns cases.

    Given a (pessimistic, optimistic) pair of parameters, each cell is the pessimistic
    power and a second frame `attrs["optimistic"]` holds the other end.
    """
    pair = params if isinstance(params, tuple) else (params, params)
    frames = []
    for p in pair:
        p.check()
        values = [[power(p, effect, j, k, **options) for k in cases] for j in readers]
        frame = pd.DataFrame(values, index=pd.Index(readers, name="readers"), columns=cases)
        frame.columns.name = "cases"
        frames.append(frame)
    grid = frames[0]
    grid.attrs["optimistic"] = frames[1]
    grid.attrs["ranged"] = isinstance(params, tuple)
    return grid


def smallest_designs(grid: pd.DataFrame, target: float = 0.8) -> list[tuple[int, int, float]]:
    """For each number of readers, the fewest cases of the grid that reach `target` power."""
    found = []
    for readers, row in grid.iterrows():
        enough = row[row >= target]
        if len(enough):
            found.append((int(readers), int(enough.index[0]), float(enough.iloc[0])))
    return found


def ranged_parameters(
    ranges: dict[str, tuple[float, float]], cases: int
) -> tuple[ORParameters, ORParameters]:
    """The pessimistic and the optimistic end of stated parameter ranges.

    Power falls with var_tr, var_error, corr2 and rises with corr1 and corr3 (they are
    subtracted from the error term), so the pessimistic end takes the high var_tr,
    var_error, corr2 and the low corr1, corr3.
    """

    def low(name: str) -> float:
        return min(ranges[name])

    def high(name: str) -> float:
        return max(ranges[name])

    var_reader = ranges.get("var_reader", (0.0, 0.0))
    pessimistic = ORParameters(
        var_reader=max(var_reader),
        var_tr=high("var_tr"),
        var_error=high("var_error"),
        corr1=low("corr1"),
        corr2=high("corr2"),
        corr3=low("corr3"),
        cases=cases,
        source="stated ranges (pessimistic end)",
    )
    optimistic = replace(
        pessimistic,
        var_reader=min(var_reader),
        var_tr=low("var_tr"),
        var_error=low("var_error"),
        corr1=high("corr1"),
        corr2=low("corr2"),
        corr3=high("corr3"),
        source="stated ranges (optimistic end)",
    )
    return pessimistic, optimistic


def simulate_power(
    params: ORParameters,
    effect: float,
    readers: int,
    cases: int,
    *,
    n_studies: int = 500,
    seed: int = 0,
    alpha: float = 0.05,
) -> float:
    """Share of simulated fully crossed studies whose OR RRRC test rejects (mean FOM).

    Scores follow the linear model whose OR parameters are `params`: reader x modality
    effects with var_tr, and per-case effects (case, case x modality, reader x case, noise)
    whose variances give var_error and the three correlations at `params.cases` cases.
    Needs corr1 >= corr3, corr2 >= corr3 >= 0 and corr1 + corr2 - corr3 <= 1.
    """
    from studies.reader_stats.mrmc import Cell, analyse_cells

    per_case = params.var_error * params.cases
    s_c = params.corr3 * per_case
    s_rc = (params.corr1 - params.corr3) * per_case
    s_tc = (params.corr2 - params.corr3) * per_case
    s_e = per_case - s_c - s_rc - s_tc
    if min(s_c, s_rc, s_tc, s_e) < 0:
        raise MRMCError("these correlations have no variance-component model (see the docstring)")
    rng = np.random.default_rng(seed)
    case_index = np.arange(cases)
    modalities, reader_names = ["M0", "M1"], [f"r{j}" for j in range(readers)]
    rejected = 0
    for _ in range(n_studies):
        c = rng.normal(0, math.sqrt(s_c), cases)
        rc = rng.normal(0, math.sqrt(s_rc), (readers, cases))
        cells = {}
        for m, shift in enumerate((0.0, effect)):
            tr = rng.normal(0, math.sqrt(max(params.var_tr, 0.0)), readers)[:, None]
            tc = rng.normal(0, math.sqrt(s_tc), cases)[None, :]
            e = rng.normal(0, math.sqrt(s_e), (readers, cases))
            score = shift + tr + c[None, :] + tc + rc + e
            for j in range(readers):
                cells[(m, j)] = Cell(cases=case_index, values=score[j])
        # the same OR analysis `mrmc` runs, on cells built here (no table to check)
        result = analyse_cells(cells, "mean", modalities, reader_names, cases)
        rejected += result.test["p"] < alpha
    return rejected / n_studies


def design_sentence(
    grid: pd.DataFrame, effect: float, target: float = 0.8, label: str = "difference"
) -> str:
    """'To detect a 0.05 difference with 80% power: 6 readers x 200 cases (or ...)'."""
    found = smallest_designs(grid, target)
    head = f"To detect a {effect:g} {label} with {round(target * 100)}% power"
    if not found:
        return f"{head}: no design of this grid is enough (add readers or cases)."
    options = [f"{j} readers x {k} cases" for j, k, _ in found[:3]]
    more = f" (or {', '.join(options[1:])})" if len(options) > 1 else ""
    return f"{head}: {options[0]}{more}."


def power_table(
    grid: pd.DataFrame,
    params: ORParameters | tuple[ORParameters, ORParameters],
    effect: float,
    *,
    target: float = 0.8,
    analysis: str = "rrrc",
    alpha: float = 0.05,
    readers_per_case: int | None = None,
    label: str = "difference",
    against_value: bool = False,
) -> Any:
    """The readers x cases power grid as a table for `studies.exports.render.render`."""
    from model.notice import RESEARCH_NOTICE
    from studies.exports.render import Table

    optimistic = grid.attrs.get("optimistic", grid)
    ranged = bool(grid.attrs.get("ranged"))
    rows = []
    for readers in grid.index:
        cells = []
        for cases in grid.columns:
            low, high = grid.loc[readers, cases], optimistic.loc[readers, cases]
            cells.append(f"{low:.2f}–{high:.2f}" if ranged else f"{low:.2f}")
        rows.append([str(readers), *cells])
    described = "; ".join(
        f"{p.source}: var_reader {p.var_reader:.3g}, var_tr {p.var_tr:.3g}, "
        f"var_error {p.var_error:.3g} at {p.cases} cases, "
        f"corr1 {p.corr1:.3f}, corr2 {p.corr2:.3f}, corr3 {p.corr3:.3f}"
        for p in (params if isinstance(params, tuple) else (params,))
    )
    design = (
        "every reader reads every case in both modalities"
        if readers_per_case is None
        else f"each case read by {readers_per_case} of the readers (both modalities)"
    )
    test = "one-modality test against a fixed value" if against_value else "two-modality OR test"
    footer = [
        design_sentence(grid, effect, target, label)[:-1]
        + (" (pessimistic end of the ranges)." if ranged else "."),
        f"Power of the {test} ({ANALYSES[analysis]}, alpha {alpha:g}) to detect "
        f"a {effect:g} {label}; Hillis, Obuchowski & Berbaum (2011); {design}.",
        f"Parameters: {described}.",
        RESEARCH_NOTICE,
    ]
    data_rows = [
        [int(j), int(k), float(grid.loc[j, k]), float(optimistic.loc[j, k])]
        for j in grid.index
        for k in grid.columns
    ]
    return Table(
        headers=["Readers \\ cases", *[str(k) for k in grid.columns]],
        rows=rows,
        title=f"Power for a {effect:g} {label} (readers x cases)",
        footer=footer,
        name="mrmc_power",
        data=(["readers", "cases", "power", "power_optimistic"], data_rows),
        align="r" * (1 + len(grid.columns)),
    )


# Without a pilot: assumed OR parameters for a win rate against a baseline, per judgment of
# one case (a win, tie or loss has variance about 0.22 with a few ties), readers' win rates
# spread by about 0.07, reports shared by the readers of a case correlating 0.15. These are
# assumptions to start from; a pilot study's own estimates replace them.
ASSUMED_WIN_RATE = ORParameters(
    var_tr=0.002,
    var_error=0.22 / 100,
    corr1=0.3,
    corr2=0.15,
    corr3=0.05,
    cases=100,
    var_reader=0.005,
    source="assumed values for a win rate (no pilot)",
)


def win_rate_power(
    judgments: pd.DataFrame | None,
    comparator: str | None,
    effect: float,
    readers: list[int],
    cases: list[int],
    *,
    readers_per_case: int | None = None,
    target: float = 0.8,
) -> tuple[pd.DataFrame, str, ORParameters]:
    """Power of a win rate against the comparator (the test against 0.5) for a grid of
    designs, from a pilot study's judgments or, with none, from ASSUMED_WIN_RATE; with the
    design sentence ("To detect a 0.05 win-rate difference with 80% power: ...")."""
    from studies.reader_stats.mrmc import mrmc, readings_from_judgments

    if judgments is None:
        params = ASSUMED_WIN_RATE
    else:
        if not comparator:
            raise MRMCError("a pilot's win rate needs its comparator system")
        pilot = mrmc(readings_from_judgments(judgments, comparator), "winrate", baseline=comparator)
        params = ORParameters.from_result(pilot)
    usable = [j for j in readers if j >= max(2, readers_per_case or 2)]
    if not usable:
        raise MRMCError(f"every number of readers is below {readers_per_case} readers per case")
    grid = power_grid(
        params, effect, usable, cases, readers_per_case=readers_per_case, against_value=True
    )
    return grid, design_sentence(grid, effect, target, "win-rate difference"), params
