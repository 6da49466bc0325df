"""Likert ratings: means with CIs, paired Wilcoxon tests, mixed and ordinal models, harm
non-inferiority. Higher is better on every criterion (the harm criterion: 5 = no potential
for harm). The criteria are the table's `likert_a_<key>` / `likert_b_<key>` columns."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from studies.reader_stats.data import criteria_of, harm_criterion_of
from studies.reader_stats.pairwise import adjust_pvalues, regular


def likert_long(judgments: pd.DataFrame) -> pd.DataFrame:
    """One row per (judgment, side, criterion) with a score: rater, case, item, system, score."""
    frame = regular(judgments).reset_index(drop=True)
    parts = []
    for side in ("a", "b"):
        for criterion in criteria_of(frame):
            column = f"likert_{side}_{criterion}"
            if column not in frame:
                continue
            part = pd.DataFrame(
                {
                    "judgment": frame.index,
                    "rater": frame["rater"],
                    "case": frame["case"],
                    "item": frame["item"],
                    "side": side,
                    "system": frame[f"system_{side}"],
                    "criterion": criterion,
                    "score": frame[column],
                }
            )
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["judgment", "rater", "case", "item", "side", "system"])
    long = pd.concat(parts, ignore_index=True)
    return long[long["score"].notna()].reset_index(drop=True)


def has_likert(judgments: pd.DataFrame) -> bool:
    return not likert_long(judgments).empty


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    se = values.std(ddof=1) / np.sqrt(len(values))
    t = stats.t.ppf(1.0 - (1.0 - level) / 2.0, len(values) - 1)
    return mean, mean - t * se, mean + t * se


def likert_means(judgments: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Mean score per criterion and system with a t interval over case-level means.

    Scores are first averaged within each case, because the same case is read many times.
    """
    long = likert_long(judgments)
    records = []
    for (criterion, system), group in long.groupby(["criterion", "system"], sort=True):
        per_case = group.groupby("case")["score"].mean().to_numpy()
        mean, low, high = _t_interval(per_case, level)
        records.append(
            {
                "criterion": criterion,
                "system": system,
                "n_ratings": len(group),
                "n_cases": len(per_case),
                "mean": float(group["score"].mean()),
                "sd": float(group["score"].std(ddof=1)) if len(group) > 1 else float("nan"),
                "ci_low": low,
                "ci_high": high,
            }
        )
    columns = ["criterion", "system", "n_ratings", "n_cases", "mean", "sd", "ci_low", "ci_high"]
    return pd.DataFrame.from_records(records, columns=columns)


def likert_distribution(judgments: pd.DataFrame) -> pd.DataFrame:
    """Share of each score 1-5 per criterion and system (rows), for the distribution plot."""
    long = likert_long(judgments)
    if long.empty:
        return pd.DataFrame()
    counts = long.groupby(["criterion", "system"])["score"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=[1.0, 2.0, 3.0, 4.0, 5.0], fill_value=0)
    counts.columns = [str(int(c)) for c in counts.columns]
    return counts.div(counts.sum(axis=1), axis=0)


def _paired(judgments: pd.DataFrame, criterion: str) -> pd.DataFrame:
    frame = regular(judgments)
    a, b = f"likert_a_{criterion}", f"likert_b_{criterion}"
    frame = frame[frame[a].notna() & frame[b].notna()]
    return frame.assign(diff=frame[a] - frame[b])


def paired_differences(
    judgments: pd.DataFrame, *, level: float = 0.95, correction: str = "holm"
) -> pd.DataFrame:
    """Per comparison and criterion: mean and median of a - b, Wilcoxon signed-rank test.

    The family adjusted by `correction` is every (comparison, criterion) row.
    """
    records = []
    for criterion in criteria_of(judgments):
        frame = _paired(judgments, criterion)
        for (a, b), group in frame.groupby(["system_a", "system_b"], sort=True):
            diff = group["diff"].to_numpy(dtype=float)
            mean, low, high = _t_interval(diff, level)
            if len(diff) and np.any(diff != 0):
                p = float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
            else:
                p = float("nan") if len(diff) == 0 else 1.0
            records.append(
                {
                    "criterion": criterion,
                    "system_a": a,
                    "system_b": b,
                    "n": len(diff),
                    "mean_diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "median_diff": float(np.median(diff)) if len(diff) else float("nan"),
                    "p_wilcoxon": p,
                }
            )
    columns = [
        "criterion",
        "system_a",
        "system_b",
        "n",
        "mean_diff",
        "ci_low",
        "ci_high",
        "median_diff",
        "p_wilcoxon",
    ]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adj"] = adjust_pvalues(table["p_wilcoxon"], correction)
    return table


@dataclass
class ModelFit:
    """Fixed effects of a system against the reference, plus variance components."""

    criterion: str
    model: str
    reference: str
    effects: pd.DataFrame  # term, estimate, ci_low, ci_high, p
    variance: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n: int = 0


def _reference(long: pd.DataFrame, reference: str | None) -> str:
    systems = sorted(long["system"].unique())
    if reference is None:
        return systems[0]
    if reference not in systems:
        raise ValueError(f"reference system {reference!r} is not in the study ({systems})")
    return reference


@dataclass
class CrossedREML:
    """REML fit of y = X b + Z_1 u_1 + Z_2 u_2 + e with crossed random intercepts."""

    beta: np.ndarray
    cov_beta: np.ndarray
    components: dict[str, float]
    residual: float
    converged: bool


def crossed_reml(y: np.ndarray, design: np.ndarray, factors: dict[str, np.ndarray]) -> CrossedREML:
    """Restricted maximum likelihood with crossed random intercepts (e.g. rater and case).

    The residual variance is profiled out and the variance ratios are optimised on the log
    scale; each evaluation works on the small (levels x levels) system
    Lambda^-1 + Z'Z (Henderson's mixed-model equations), so thousands of ratings with
    hundreds of cases fit in well under a second. Equal to statsmodels' MixedLM with
    variance components (one group), which is much slower on this crossed design.
    """
    from scipy import linalg, optimize

    y = np.asarray(y, dtype=float)
    n, p = design.shape
    # The factor with most levels (cases) forms a diagonal block of the mixed-model
    # equations and is eliminated analytically; the others (raters) stay a small dense block.
    names = sorted(factors, key=lambda name: -(np.asarray(factors[name]).max() + 1))
    sizes = [int(np.asarray(factors[name]).max()) + 1 for name in names]

    def onehot(codes: np.ndarray, levels: int) -> np.ndarray:
        matrix = np.zeros((n, levels))
        matrix[np.arange(n), np.asarray(codes)] = 1.0
        return matrix

    z1 = onehot(factors[names[0]], sizes[0])
    rest = [onehot(factors[name], size) for name, size in zip(names[1:], sizes[1:], strict=True)]
    z2 = np.concatenate(rest, axis=1) if rest else np.zeros((n, 0))
    counts1 = z1.sum(axis=0)
    cross = z1.T @ z2
    z2tz2 = z2.T @ z2
    rhs1 = z1.T @ np.column_stack([design, y])
    rhs2 = z2.T @ np.column_stack([design, y])
    xtx, xty, yty = design.T @ design, design.T @ y, float(y @ y)
    sizes_array = np.asarray(sizes, dtype=float)

    def solve(theta: np.ndarray) -> tuple[float, np.ndarray, float, np.ndarray]:
        ratio = np.exp(theta)
        diagonal = counts1 + 1.0 / ratio[0]
        logdet_m = float(np.log(diagonal).sum())
        scaled = cross / diagonal[:, None]
        first = rhs1 / diagonal[:, None]
        if z2.shape[1]:
            block = z2tz2 + np.diag(1.0 / np.repeat(ratio[1:], sizes[1:]))
            schur = linalg.cho_factor(block - cross.T @ scaled, lower=True)
            logdet_m += 2.0 * float(np.log(np.diag(schur[0])).sum())
            second = linalg.cho_solve(schur, rhs2 - cross.T @ first)
            solution1 = first - scaled @ second
            # (Z'[X y])' M^-1 Z'[X y]
            quadratic = rhs1.T @ solution1 + rhs2.T @ second
        else:
            quadratic = rhs1.T @ first
        xvx = xtx - quadratic[:p, :p]
        xvy = xty - quadratic[:p, p]
        yvy = yty - quadratic[p, p]
        inner = linalg.cho_factor(xvx, lower=True)
        beta = linalg.cho_solve(inner, xvy)
        sigma2 = max((yvy - beta @ xvy) / (n - p), 1e-300)
        logdet_v = float(sizes_array @ theta) + logdet_m
        objective = (n - p) * np.log(sigma2) + logdet_v + 2.0 * np.log(np.diag(inner[0])).sum()
        return float(objective), beta, float(sigma2), xvx

    bounds = [(-18.0, 6.0)] * len(names)
    best = None
    # A few starting points guard against a local optimum at a boundary.
    for start in (-3.0, -1.0, 0.5):
        result = optimize.minimize(
            lambda t: solve(t)[0],
            np.full(len(names), start),
            method="L-BFGS-B",
            bounds=bounds,
        )
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    _, beta, sigma2, xvx = solve(best.x)
    ratios = np.exp(best.x)
    components = {
        name: float(sigma2 * r) if r > np.exp(-17.0) else 0.0
        for name, r in zip(names, ratios, strict=True)
    }
    return CrossedREML(
        beta=beta,
        cov_beta=sigma2 * np.linalg.inv(xvx),
        components=components,
        residual=sigma2,
        converged=bool(best.success),
    )


def mixed_model(
    judgments: pd.DataFrame,
    criterion: str,
    *,
    reference: str | None = None,
    level: float = 0.95,
    engine: str = "reml",
) -> ModelFit:
    """Linear mixed model score ~ system + (1|rater) + (1|case), crossed random intercepts.

    engine "reml" uses `crossed_reml` (fast); "statsmodels" fits MixedLM with variance
    components (one group, sparse) and gives the same numbers more slowly.
    """
    long = likert_long(judgments)
    long = long[long["criterion"] == criterion].copy()
    if long["system"].nunique() < 2:
        raise ValueError(f"criterion {criterion!r}: need ratings of at least two systems")
    reference = _reference(long, reference)
    others = [s for s in sorted(long["system"].unique()) if s != reference]
    terms = [f"{s} - {reference}" for s in others]
    z = stats.norm.ppf(1.0 - (1.0 - level) / 2.0)
    caught: list[str] = []
    if engine == "reml":
        design = np.column_stack(
            [np.ones(len(long))] + [(long["system"] == s).to_numpy(dtype=float) for s in others]
        )
        factors = {
            "rater": pd.factorize(long["rater"])[0],
            "case": pd.factorize(long["case"])[0],
        }
        fit = crossed_reml(long["score"].to_numpy(dtype=float), design, factors)
        estimate = fit.beta[1:]
        se = np.sqrt(np.diag(fit.cov_beta))[1:]
        variance = dict(fit.components)
        variance["residual"] = fit.residual
        if not fit.converged:
            caught.append("REML optimisation did not report convergence")
    elif engine == "statsmodels":
        import statsmodels.formula.api as smf

        long["one"] = 1
        long["rater"] = long["rater"].astype(str)
        long["case"] = long["case"].astype(str)
        formula = f"score ~ C(system, Treatment(reference={reference!r}))"
        components = {"rater": "0 + C(rater)", "case": "0 + C(case)"}
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            model = smf.mixedlm(
                formula,
                long,
                groups="one",
                re_formula="0",
                vc_formula=components,
                use_sparse=True,
            )
            result = model.fit(reml=True, method=["bfgs", "lbfgs"])
            caught = sorted({str(w.message).split("\n")[0] for w in record})
        names = [f"C(system, Treatment(reference={reference!r}))[T.{s}]" for s in others]
        estimate = result.fe_params[names].to_numpy()
        se = result.bse_fe[names].to_numpy()
        variance = {
            name: float(v) for name, v in zip(model.exog_vc.names, result.vcomp, strict=True)
        }
        variance["residual"] = float(result.scale)
    else:
        raise ValueError(f"engine must be 'reml' or 'statsmodels', not {engine!r}")
    effects = pd.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "ci_low": estimate - z * se,
            "ci_high": estimate + z * se,
            "p": 2.0 * stats.norm.sf(np.abs(estimate / se)),
        }
    )
    return ModelFit(
        criterion=criterion,
        model="mixedlm",
        reference=reference,
        effects=effects,
        variance=variance,
        warnings=caught,
        n=len(long),
    )


def ordinal_model(
    judgments: pd.DataFrame, criterion: str, *, reference: str | None = None, level: float = 0.95
) -> ModelFit:
    """Cumulative-logit (proportional odds) sensitivity analysis: log odds ratios vs reference."""
    from statsmodels.miscmodels.ordinal_model import OrderedModel

    long = likert_long(judgments)
    long = long[long["criterion"] == criterion]
    if long["system"].nunique() < 2:
        raise ValueError(f"criterion {criterion!r}: need ratings of at least two systems")
    reference = _reference(long, reference)
    others = [s for s in sorted(long["system"].unique()) if s != reference]
    exog = pd.DataFrame({s: (long["system"] == s).astype(float) for s in others})
    levels = sorted(long["score"].unique())
    endog = pd.Series(pd.Categorical(long["score"], categories=levels, ordered=True))
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = OrderedModel(endog, exog.reset_index(drop=True), distr="logit").fit(
            method="bfgs", disp=False, maxiter=500
        )
        caught = sorted({str(w.message).split("\n")[0] for w in record})
    intervals = result.conf_int(alpha=1.0 - level)
    records = [
        {
            "term": f"{s} - {reference}",
            "estimate": float(result.params[s]),
            "ci_low": float(intervals.loc[s, 0]),
            "ci_high": float(intervals.loc[s, 1]),
            "p": float(result.pvalues[s]),
        }
        for s in others
    ]
    return ModelFit(
        criterion=criterion,
        model="ordered_logit",
        reference=reference,
        effects=pd.DataFrame.from_records(
            records, columns=["term", "estimate", "ci_low", "ci_high", "p"]
        ),
        warnings=caught,
        n=len(long),
    )


def harm_noninferiority(
    judgments: pd.DataFrame,
    *,
    comparator: str | None = None,
    margin: float = 0.5,
    level: float = 0.95,
    criterion: str | None = None,
    correction: str = "holm",
) -> pd.DataFrame:
    """Is each system's harm rating no worse than the comparator's by more than `margin`?

    `criterion` defaults to the criterion the judgments' form declares as the harm
    criterion (ValueError when there is none).
    Paired differences (system - comparator) are averaged within each case first; the
    one-sided t test is H0: mean difference <= -margin. Non-inferior when the lower bound of
    the two-sided `level` interval lies above -margin (equivalently p < (1 - level) / 2).
    Without a comparator every compared pair is tested in both directions.
    """
    if margin <= 0:
        raise ValueError("the non-inferiority margin must be positive")
    criterion = criterion or harm_criterion_of(judgments)
    if criterion is None or criterion not in criteria_of(judgments):
        raise ValueError(
            f"harm non-inferiority: no {'harm' if criterion is None else repr(criterion)} "
            "criterion in these judgments; declare one with harm = true in the form"
        )
    frame = _paired(judgments, criterion)
    records = []
    for (a, b), group in frame.groupby(["system_a", "system_b"], sort=True):
        for candidate, reference, sign in ((a, b, 1.0), (b, a, -1.0)):
            if comparator is not None and reference != comparator:
                continue
            per_case = (sign * group["diff"]).groupby(group["case"]).mean().to_numpy()
            mean, low, high = _t_interval(per_case, level)
            if len(per_case) >= 2 and per_case.std(ddof=1) > 0:
                se = per_case.std(ddof=1) / np.sqrt(len(per_case))
                p = float(stats.t.sf((mean + margin) / se, len(per_case) - 1))
            elif len(per_case) >= 1:
                p = 0.0 if mean > -margin else 1.0
            else:
                p = float("nan")
            records.append(
                {
                    "system": candidate,
                    "comparator": reference,
                    "criterion": criterion,
                    "n_cases": len(per_case),
                    "n_pairs": len(group),
                    "mean_diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "margin": margin,
                    "p_noninferiority": p,
                }
            )
    columns = [
        "system",
        "comparator",
        "criterion",
        "n_cases",
        "n_pairs",
        "mean_diff",
        "ci_low",
        "ci_high",
        "margin",
        "p_noninferiority",
    ]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adj"] = adjust_pvalues(table["p_noninferiority"], correction)
    table["non_inferior"] = table["ci_low"] > -margin
    return table
