"""Likert ratings: means with CIs, paired tests, mixed and ordinal models, harm
non-inferiority. Higher is better on every criterion (the harm criterion: 5 = no potential
for harm). The criteria are the table's `likert_a_<key>` / `likert_b_<key>` columns."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studies.reader_stats.data import criteria_of, harm_criterion_of
from studies.reader_stats.pairwise import adjust_pvalues, clustered_mean, regular


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


# Likert scores live on 1-5, so paired differences on -4..4.
SCALE = (1.0, 5.0)
# Random effects of the Likert models: raters, cases, each rater's taste per system
# (rater x system) and each report's own quality (case x system), as in MRMC practice.
RANDOM_EFFECTS: dict[str, tuple[str, ...]] = {
    "within": ("rater:system", "case:system"),
    "full": ("rater", "case", "rater:system", "case:system"),
    "intercepts": ("rater", "case"),
}
# The fixed blocks of each model: "within" compares systems within rater and within case.
# A system contrast does not depend on rater or case main effects, but their REML estimates,
# held at zero when the data pull them below it, take variance from rater x system and
# report: with no rater or case effects (bench/coverage.py 'ties+position', 3600 null
# studies) the full model estimates rater x system at 0.049 against 0.056 with fixed
# blocks, its standard errors fall 5% short and it rejects a true null 0.061 (this model
# 0.049; docs/benchmarks.md).
FIXED_BLOCKS: dict[str, tuple[str, ...]] = {"within": ("rater", "case")}
# A fixed block enters Henderson's equations as a random factor with this variance ratio
# (component / residual), held, not estimated, less a reference level: near the limit of an
# unpenalised effect, about 1e-6 (relative) from the fit with the blocks' indicators in the
# design (a test checks 1e-4). With 1e6, 1 in 200 'ties+position' fits stopped elsewhere
# on a flat likelihood; with 1e4, none.
BLOCK_RATIO = 1e4
DF_METHODS = ("satterthwaite", "kenward-roger", "z")
# Kenward-Roger works on the dense n x n covariance of the ratings: above this many ratings
# the Satterthwaite df are used (with a warning).
KENWARD_ROGER_MAX_N = 6000


def _t_interval(values: np.ndarray, level: float) -> tuple[float, float, float]:
    values = np.asarray(values, dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    se = values.std(ddof=1) / np.sqrt(len(values))
    t = stats.t.ppf(1.0 - (1.0 - level) / 2.0, len(values) - 1)
    return mean, mean - t * se, mean + t * se


def _quantile(df: float, level: float) -> float:
    tail = 1.0 - (1.0 - level) / 2.0
    return float(stats.norm.ppf(tail) if not np.isfinite(df) else stats.t.ppf(tail, df))


def bounded_interval(
    estimate: float, se: float, df: float, level: float, bounds: tuple[float, float] = SCALE
) -> tuple[float, float]:
    """A t interval computed on the logit of the position within `bounds` and mapped back,
    so it never leaves the scale; NaN at the ends of the scale (no spread to scale)."""
    low, high = bounds
    width = high - low
    share = (estimate - low) / width
    if not (np.isfinite(se) and se > 0 and 1e-9 < share < 1 - 1e-9):
        return float("nan"), float("nan")
    centre = np.log(share / (1.0 - share))
    spread = _quantile(df, level) * se / (width * share * (1.0 - share))
    ends = 1.0 / (1.0 + np.exp(-np.array([centre - spread, centre + spread])))
    return float(low + width * ends[0]), float(low + width * ends[1])


def _block_parameters(design: np.ndarray, blocks: dict[str, np.ndarray]) -> int:
    """The parameters fixed blocks add beyond the design: rank [X Z_blocks] - rank X (levels
    - 1 per block where the design has an intercept and the blocks are connected)."""
    if not blocks:
        return 0
    from scipy import sparse

    n = design.shape[0]
    z = sparse.hstack(
        [
            sparse.csr_matrix((np.ones(n), (np.arange(n), np.asarray(codes))))
            for codes in blocks.values()
        ]
    ).tocsr()
    zx = np.asarray(z.T @ design)
    gram = np.block([[design.T @ design, zx.T], [zx, (z.T @ z).toarray()]])

    def rank(matrix: np.ndarray) -> int:
        eigen = np.linalg.eigvalsh(matrix)
        return int((eigen > max(float(eigen.max()), 1.0) * 1e-10).sum())

    return rank(gram) - rank(design.T @ design)


def _reference_levels_out(
    design: np.ndarray, blocks: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The blocks' codes with a reference level (the first) coded -1, no indicator: for
    every block where the design has an intercept, for all but the first otherwise. Then
    the blocks and the design do not alias, and X'H^-1 X holds no difference of two nearly
    equal numbers (with the intercept aliased, the REML criterion carries their rounding
    noise, and the held ratio shrinks the overall level)."""
    if not blocks:
        return {}
    ones = np.ones(design.shape[0])
    constant = np.linalg.lstsq(design, ones, rcond=None)[0] if design.shape[1] else None
    drop = constant is not None and bool(np.allclose(design @ constant, ones))
    reduced = {}
    for name, codes in blocks.items():
        codes = np.asarray(codes)
        reduced[name] = codes - 1 if drop else codes
        drop = True
    return reduced


class _Henderson:
    """Henderson's mixed-model equations for y = X b + sum_k Z_k u_k + e with crossed random
    intercepts, evaluated for given variance ratios (component / residual).

    The factor with most levels forms a diagonal block and is eliminated analytically; the
    others stay one small dense block, so each evaluation costs one Cholesky factorisation
    of (levels of the other factors) squared. `blocks` are fixed effects given as factors:
    their ratio is held at `block_ratio`; the ratios and gradients that the methods take
    and return are those of `free` (the factors, in the order of `names`).
    """

    def __init__(
        self,
        y: np.ndarray,
        design: np.ndarray,
        factors: dict[str, np.ndarray],
        blocks: dict[str, np.ndarray] | None = None,
    ):
        self.y = np.asarray(y, dtype=float)
        self.n, self.p = design.shape
        self.block_parameters = _block_parameters(design, blocks or {})
        factors = {**factors, **_reference_levels_out(design, blocks or {})}
        self.names = sorted(factors, key=lambda name: -(int(np.max(factors[name])) + 1))
        self.sizes = [int(np.max(factors[name])) + 1 for name in self.names]
        self.held = np.array([name in (blocks or {}) for name in self.names], dtype=bool)
        self.free = [name for name, held in zip(self.names, self.held, strict=True) if not held]
        self.block_ratio = BLOCK_RATIO
        # The residual df: the blocks' parameters are spent like the design's.
        self.residual_df = self.n - self.p - self.block_parameters
        n = self.n

        def onehot(codes: np.ndarray, levels: int) -> np.ndarray:
            matrix = np.zeros((n, levels))
            codes = np.asarray(codes)
            rows = codes >= 0  # -1: a block's reference level, no indicator
            matrix[np.flatnonzero(rows), codes[rows]] = 1.0
            return matrix

        if self.names:
            z1 = onehot(factors[self.names[0]], self.sizes[0])
            rest = [
                onehot(factors[name], size)
                for name, size in zip(self.names[1:], self.sizes[1:], strict=True)
            ]
        else:
            z1, rest = np.zeros((n, 0)), []
        z2 = np.concatenate(rest, axis=1) if rest else np.zeros((n, 0))
        self.counts1 = z1.sum(axis=0)
        self.cross = z1.T @ z2
        self.z2tz2 = z2.T @ z2
        self.rhs1 = z1.T @ np.column_stack([design, self.y])
        self.rhs2 = z2.T @ np.column_stack([design, self.y])
        self.xtx, self.xty = design.T @ design, design.T @ self.y
        self.yty = float(self.y @ self.y)
        self.dense = z2.shape[1]

    def _all(self, ratios: np.ndarray) -> np.ndarray:
        """The ratios of every factor in `names` from those of the free ones."""
        full = np.full(len(self.names), float(self.block_ratio))
        full[~self.held] = np.asarray(ratios, dtype=float)
        return full

    def evaluate(self, ratios: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """(log|H|, residual sum of squares, X'H^-1 X, its Cholesky) with V = sigma^2 H."""
        from scipy import linalg

        p = self.p
        if not self.names:
            quadratic = np.zeros((p + 1, p + 1))
            logdet_h = 0.0
        else:
            ratios = self._all(ratios)
            diagonal = self.counts1 + 1.0 / ratios[0]
            logdet_m = float(np.log(diagonal).sum())
            scaled = self.cross / diagonal[:, None]
            first = self.rhs1 / diagonal[:, None]
            if self.dense:
                block = self.z2tz2 + np.diag(1.0 / np.repeat(ratios[1:], self.sizes[1:]))
                schur = linalg.cho_factor(
                    block - self.cross.T @ scaled, lower=True, check_finite=False
                )
                logdet_m += 2.0 * float(np.log(np.diag(schur[0])).sum())
                second = linalg.cho_solve(
                    schur, self.rhs2 - self.cross.T @ first, check_finite=False
                )
                quadratic = self.rhs1.T @ (first - scaled @ second) + self.rhs2.T @ second
            else:
                quadratic = self.rhs1.T @ first
            # |H| = |Lambda| |Lambda^-1 + Z'Z|
            logdet_h = float(np.log(ratios) @ np.asarray(self.sizes, dtype=float)) + logdet_m
        xvx = self.xtx - quadratic[:p, :p]
        xvy = self.xty - quadratic[:p, p]
        yvy = self.yty - quadratic[p, p]
        inner = linalg.cho_factor(xvx, lower=True, check_finite=False)
        beta = linalg.cho_solve(inner, xvy, check_finite=False)
        rss = float(yvy - beta @ xvy)
        return logdet_h, rss, beta, inner

    def profiled_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """`profiled` and its gradient in the log ratios, from the same factorisation.

        With M = Lambda^-1 + Z'Z, W = M^-1 Z'X, u = M^-1 Z'(y - Xb) and A = X'H^-1 X:
        d/d theta_k = q_k - (tr M^-1_kk + tr(A^-1 W_k'W_k) + d |u_k|^2 / rss) / lambda_k,
        d the residual df (n - p less the blocks' parameters).
        """
        from scipy import linalg

        p, ratios = self.p, self._all(np.exp(theta))
        theta = np.log(ratios)
        diagonal = self.counts1 + 1.0 / ratios[0]
        scaled = self.cross / diagonal[:, None]
        first = self.rhs1 / diagonal[:, None]
        logdet_m = float(np.log(diagonal).sum())
        if self.dense:
            block = self.z2tz2 + np.diag(1.0 / np.repeat(ratios[1:], self.sizes[1:]))
            schur = linalg.cho_factor(block - self.cross.T @ scaled, lower=True, check_finite=False)
            logdet_m += 2.0 * float(np.log(np.diag(schur[0])).sum())
            inverse = linalg.cho_solve(schur, np.eye(self.dense), check_finite=False)
            # Solved, not multiplied by the inverse: the value stays the one `evaluate`
            # gives to rounding, which the line search needs with fixed blocks.
            second = linalg.cho_solve(schur, self.rhs2 - self.cross.T @ first, check_finite=False)
            solution = np.vstack([first - scaled @ second, second])
            spread = scaled @ inverse
            m_diagonal = np.concatenate(
                [1.0 / diagonal + (spread * scaled).sum(axis=1), np.diag(inverse)]
            )
        else:
            solution = first
            m_diagonal = 1.0 / diagonal
        quadratic = np.vstack([self.rhs1, self.rhs2]).T @ solution
        xvx = self.xtx - quadratic[:p, :p]
        xvy = self.xty - quadratic[:p, p]
        yvy = self.yty - quadratic[p, p]
        inner = linalg.cho_factor(xvx, lower=True, check_finite=False)
        beta = linalg.cho_solve(inner, xvy, check_finite=False)
        rss = max(float(yvy - beta @ xvy), 1e-300)
        sigma2 = max(rss / self.residual_df, 1e-300)
        logdet_h = float(theta @ np.asarray(self.sizes, dtype=float)) + logdet_m
        logdet_x = 2.0 * float(np.log(np.diag(inner[0])).sum())
        value = self.residual_df * np.log(sigma2) + logdet_h + logdet_x
        w = solution[:, :p]
        u = solution[:, p] - w @ beta
        w_a = linalg.cho_solve(inner, w.T, check_finite=False).T
        per_level = m_diagonal + (w * w_a).sum(axis=1) + self.residual_df * u**2 / rss
        bounds = np.cumsum([0, *self.sizes])
        sums = np.array(
            [per_level[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        )
        return value, (np.asarray(self.sizes, dtype=float) - sums / ratios)[~self.held]

    def profiled(self, theta: np.ndarray) -> float:
        """-2 log restricted likelihood with sigma^2 profiled out (constants dropped)."""
        logdet_h, rss, _, inner = self.evaluate(np.exp(theta))
        sigma2 = max(rss / self.residual_df, 1e-300)
        logdet_x = 2.0 * float(np.log(np.diag(inner[0])).sum())
        return self.residual_df * np.log(sigma2) + logdet_h + logdet_x

    def deviance(self, varpar: np.ndarray) -> float:
        """-2 log restricted likelihood in (component variances..., residual variance)."""
        sigma2 = varpar[-1]
        logdet_h, rss, _, inner = self.evaluate(varpar[:-1] / sigma2)
        logdet_x = 2.0 * float(np.log(np.diag(inner[0])).sum())
        return self.residual_df * np.log(sigma2) + logdet_h + logdet_x + rss / sigma2

    def cov_beta(self, varpar: np.ndarray) -> np.ndarray:
        from scipy import linalg

        _, _, _, inner = self.evaluate(varpar[:-1] / varpar[-1])
        return varpar[-1] * linalg.cho_solve(inner, np.eye(self.p))


@dataclass
class CrossedREML:
    """REML fit of y = X b + Z_1 u_1 + ... + Z_k u_k + e with crossed random intercepts.

    `vcov_varpar` (asymptotic covariance of the variance parameters: the components with a
    positive estimate, then the residual) and `jacobian` (d cov(b) / d each of them) give
    Satterthwaite degrees of freedom for any contrast (`satterthwaite`).
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    components: dict[str, float]
    residual: float
    converged: bool
    n: int = 0
    vcov_varpar: np.ndarray | None = None
    jacobian: list[np.ndarray] = field(default_factory=list)
    # The parameters that fixed blocks (`crossed_reml`'s `blocks`) add beyond b, their rank
    # beyond the design's: the residual df are n - p - those.
    block_parameters: int = 0
    # Kenward-Roger (`kenward_roger`): the adjusted cov(b), each P_i and W (pbkrtest's), and
    # cov(b) itself, over b and the blocks' indicators where there are blocks.
    kr_cov: np.ndarray | None = None
    kr_p: list[np.ndarray] = field(default_factory=list)
    kr_w: np.ndarray | None = None
    kr_phi: np.ndarray | None = None

    def kenward_roger(self, contrast: np.ndarray) -> tuple[float, float]:
        """(standard error, df) of contrast' beta by Kenward and Roger (1997) as pbkrtest
        computes them for one contrast: the small-sample adjusted covariance, the df of the
        scaled F(1, m), and the scaling folded into the standard error, so that
        estimate / se is t on m df. Satterthwaite where the adjustment is not available."""
        if self.kr_cov is None or self.kr_w is None or self.kr_phi is None:
            return self.satterthwaite(contrast)
        original = np.asarray(contrast, dtype=float)
        # The blocks' indicators follow b in the Kenward-Roger covariance: zero weight.
        contrast = np.concatenate([original, np.zeros(len(self.kr_phi) - len(original))])
        phi = self.kr_phi
        variance = float(contrast @ phi @ contrast)
        adjusted = float(contrast @ self.kr_cov @ contrast)
        if not (variance > 0 and adjusted > 0):
            return self.satterthwaite(original)
        theta = np.outer(contrast, contrast) / variance
        u = [theta @ phi @ p_i @ phi for p_i in self.kr_p]
        a1 = a2 = 0.0
        for i in range(len(u)):
            for j in range(i, len(u)):
                e = 1.0 if i == j else 2.0
                a1 += e * self.kr_w[i, j] * float(np.trace(u[i]) * np.trace(u[j]))
                a2 += e * self.kr_w[i, j] * float((u[i] * u[j].T).sum())
        q = 1.0
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2) if a2 != 0 else 0.0
        denominator = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denominator, (q - g) / denominator, (q + 2.0 - g) / denominator
        v0, v1, v2 = 1.0 + c1 * b, 1.0 - c2 * b, 1.0 - c3 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        if v1 == 0 or v2 == 0:
            return self.satterthwaite(original)
        rho = ((1.0 - a2 / q) / v1) ** 2 * v0 / v2 / q
        if not np.isfinite(rho) or q * rho - 1.0 <= 0:
            return self.satterthwaite(original)
        df = 4.0 + (q + 2.0) / (q * rho - 1.0)
        scaling = 1.0 if abs(df - 4.0) < 1e-2 else df * (1.0 - a2 / q) / (df - 2.0)
        if not (np.isfinite(df) and scaling > 0):
            return self.satterthwaite(original)
        residual_df = float(self.n - len(self.kr_phi))
        return float(np.sqrt(adjusted / scaling)), float(np.clip(df, 1.0, residual_df))

    def satterthwaite(self, contrast: np.ndarray) -> tuple[float, float]:
        """(standard error, Satterthwaite df) of contrast' beta (Kuznetsova et al. 2017)."""
        contrast = np.asarray(contrast, dtype=float)
        variance = float(contrast @ self.cov_beta @ contrast)
        se = float(np.sqrt(max(variance, 0.0)))
        residual_df = float(self.n - len(self.beta) - self.block_parameters)
        if self.vcov_varpar is None or not self.jacobian:
            return se, residual_df
        gradient = np.array([contrast @ j @ contrast for j in self.jacobian])
        denominator = float(gradient @ self.vcov_varpar @ gradient)
        if not np.isfinite(denominator) or denominator <= 0:
            return se, residual_df
        return se, float(np.clip(2.0 * variance**2 / denominator, 1.0, residual_df))


def _one_blas_thread() -> AbstractContextManager[object]:
    # The solves are small (levels x levels): a multi-threaded BLAS spends more time
    # synchronising than computing, 100x slower on a busy machine.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an optional speed-up only
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


def crossed_reml(
    y: np.ndarray,
    design: np.ndarray,
    factors: dict[str, np.ndarray],
    *,
    ddf: bool = True,
    blocks: dict[str, np.ndarray] | None = None,
) -> CrossedREML:
    """Restricted maximum likelihood with crossed random intercepts (e.g. rater, case,
    rater x system, case x system), and `blocks`: factors fitted as fixed effects (codes as
    in `factors`; e.g. rater and case, to compare systems within rater and within case).

    The residual variance is profiled out and the variance ratios are optimised on the log
    scale (Henderson's mixed-model equations, `_Henderson`). With `ddf`, the Hessian of the
    REML deviance in the variance parameters and the Jacobian of cov(b) are taken
    numerically at the estimate (as lmerTest does) for Satterthwaite degrees of freedom.
    Equal to lme4's lmer (and statsmodels' MixedLM with variance components) on the same model.
    """
    with _one_blas_thread():
        return _crossed_reml(y, design, factors, ddf=ddf, blocks=blocks or {})


def _crossed_reml(
    y: np.ndarray,
    design: np.ndarray,
    factors: dict[str, np.ndarray],
    *,
    ddf: bool,
    blocks: dict[str, np.ndarray],
) -> CrossedREML:

    from scipy import optimize

    y = np.asarray(y, dtype=float)
    system = _Henderson(y, design, factors, blocks)
    names = system.free
    n, p = design.shape
    best_x = np.zeros(0)
    converged = True
    if names:
        bounds = [(-18.0, 6.0)] * len(names)

        def minimise(start: np.ndarray) -> optimize.OptimizeResult:
            return optimize.minimize(
                system.profiled_gradient,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-10, "gtol": 1e-6, "maxiter": 500},
            )

        best = None
        # A second start guards against a local optimum at the boundary: tried when the
        # first fit puts a component at zero.
        for start in (-1.0, 0.5):
            if best is not None and np.all(best.x > -15.0):
                break
            result = minimise(np.full(len(names), start))
            if best is None or result.fun < best.fun:
                best = result
        assert best is not None
        best = _leave_false_boundaries(system, best, minimise)
        best_x, converged = best.x, bool(best.success)
    _, rss, beta, inner = system.evaluate(np.exp(best_x))
    sigma2 = max(rss / system.residual_df, 1e-300)
    ratios = np.exp(best_x)
    components = {
        name: float(sigma2 * r) if r > np.exp(-16.0) else 0.0
        for name, r in zip(names, ratios, strict=True)
    }
    from scipy import linalg

    fit = CrossedREML(
        beta=beta,
        cov_beta=sigma2 * linalg.cho_solve(inner, np.eye(p)),
        components=components,
        residual=sigma2,
        converged=converged,
        n=n,
        block_parameters=system.block_parameters,
    )
    if ddf and system.residual_df > 0 and sigma2 > 1e-12:
        _add_satterthwaite(fit, y, design, factors, blocks)
    return fit


# Log variance ratios tried for a component the optimiser left at zero.
_BOUNDARY_PROBES = (-8.0, -6.0, -4.5, -3.5, -2.5, -1.5, -0.5, 0.5)


def _leave_false_boundaries(
    system: _Henderson, best: Any, minimise: Callable[[np.ndarray], Any]
) -> Any:
    """The fit with no component held at zero that the likelihood wants positive.

    On the log scale the criterion is flat towards zero variance, so a step that lands
    there stays (bench/coverage.py 'ties+position': the report variance at zero with a
    REML deviance 4-16 above a positive one, in about 1 study in 10). Each component at
    the bound is probed at `_BOUNDARY_PROBES` with the others held; from the best point
    that lowers the deviance, the optimiser starts again."""
    for _ in range(len(best.x)):
        trials = []
        for k in np.flatnonzero(best.x < -15.0):
            for value in _BOUNDARY_PROBES:
                trial = best.x.copy()
                trial[k] = value
                trials.append((system.profiled(trial), trial))
        if not trials:
            break
        value, start = min(trials, key=lambda pair: pair[0])
        if value >= best.fun - 1e-6:
            break
        result = minimise(start)
        if result.fun >= best.fun - 1e-6:
            break
        best = result
    return best


def _add_satterthwaite(
    fit: CrossedREML,
    y: np.ndarray,
    design: np.ndarray,
    factors: dict[str, np.ndarray],
    blocks: dict[str, np.ndarray],
) -> None:
    # Components estimated at zero sit on the boundary: they are held at zero (left out of
    # the variance parameters), as their derivative is not defined there.
    active = {name: factors[name] for name, value in fit.components.items() if value > 0}
    system = _Henderson(y, design, active, blocks)
    varpar = np.array([fit.components[name] for name in system.free] + [fit.residual])
    # 1e-3: central differences stay exact to about 1e-6, and above the rounding noise
    # that fixed blocks (a held variance ratio of 1e4) leave in the deviance.
    steps = 1e-3 * varpar
    k = len(varpar)
    hessian = np.zeros((k, k))
    base = system.deviance(varpar)
    for i in range(k):
        for j in range(i, k):
            if i == j:
                e = np.zeros(k)
                e[i] = steps[i]
                value = (
                    system.deviance(varpar + e) - 2.0 * base + system.deviance(varpar - e)
                ) / steps[i] ** 2
            else:
                ei, ej = np.zeros(k), np.zeros(k)
                ei[i], ej[j] = steps[i], steps[j]
                value = (
                    system.deviance(varpar + ei + ej)
                    - system.deviance(varpar + ei - ej)
                    - system.deviance(varpar - ei + ej)
                    + system.deviance(varpar - ei - ej)
                ) / (4.0 * steps[i] * steps[j])
            hessian[i, j] = hessian[j, i] = value
    eigen, vectors = np.linalg.eigh(hessian)
    if not np.all(eigen > 0):
        return
    fit.vcov_varpar = 2.0 * (vectors / eigen) @ vectors.T
    jacobian = []
    for i in range(k):
        e = np.zeros(k)
        e[i] = steps[i]
        jacobian.append(
            (system.cov_beta(varpar + e) - system.cov_beta(varpar - e)) / (2 * steps[i])
        )
    fit.jacobian = jacobian


def _add_kenward_roger(
    fit: CrossedREML,
    design: np.ndarray,
    factors: dict[str, np.ndarray],
    blocks: dict[str, np.ndarray] | None = None,
) -> None:
    """Kenward and Roger's adjusted covariance of the fixed effects (pbkrtest's vcovAdj):
    Phi_A = Phi + 2 Phi U Phi, U = sum_ij W_ij (Q_ij - P_i Phi P_j), W twice the inverse of
    the expected information of the variance parameters (the components with a positive
    estimate, then the residual), held in `fit` for `CrossedREML.kenward_roger`. The blocks
    enter as indicators after the design's columns, less their reference levels
    (`_reference_levels_out`)."""
    from scipy import linalg

    n = design.shape[0]
    if n > KENWARD_ROGER_MAX_N or fit.residual <= 0:
        return
    indicators = [
        (codes[:, None] == np.arange(int(np.max(codes)) + 1)).astype(float)
        for codes in _reference_levels_out(design, blocks or {}).values()
    ]
    design = np.column_stack([design, *indicators])
    p = design.shape[1]
    if indicators and np.linalg.matrix_rank(design) < p:
        return  # the blocks alias each other (disconnected): no Kenward-Roger
    active = [name for name, value in fit.components.items() if value > 0]
    zs = []
    for name in active:
        codes = np.asarray(factors[name])
        z = np.zeros((n, int(codes.max()) + 1))
        z[np.arange(n), codes] = 1.0
        zs.append(z)
    variances = [fit.components[name] for name in active]
    sigma = fit.residual * np.eye(n)
    for z, v in zip(zs, variances, strict=True):
        sigma += v * (z @ z.T)
    inverse = linalg.cho_solve(linalg.cho_factor(sigma, lower=True), np.eye(n))
    phi = linalg.inv(design.T @ inverse @ design)
    tt = inverse @ design
    # G_i = Z_i Z_i' for the components, I for the residual; H_i = G_i Sigma^-1.
    hh = [z @ (z.T @ inverse) for z in zs] + [inverse]
    oo = [h @ design for h in hh]
    k = len(hh)
    pp = [-(o.T @ tt) for o in oo]
    pp = [(m + m.T) / 2.0 for m in pp]
    qq = {(i, j): oo[i].T @ inverse @ oo[j] for i in range(k) for j in range(i, k)}
    information = np.zeros((k, k))
    for i in range(k):
        phi_p = phi @ pp[i]
        for j in range(i, k):
            trace = float((hh[i].T * hh[j]).sum())
            value = (
                trace - 2.0 * float((phi * qq[(i, j)]).sum()) + float((phi_p * (pp[j] @ phi)).sum())
            )
            information[i, j] = information[j, i] = value
    eigen = np.linalg.eigvalsh(information)
    if np.min(np.abs(eigen)) <= 1e-10:
        return
    w = 2.0 * np.linalg.inv(information)
    u = np.zeros((p, p))
    for i in range(k):
        for j in range(i, k):
            term = w[i, j] * (qq[(i, j)] - pp[i] @ phi @ pp[j])
            u += term if i == j else term + term.T
    fit.kr_cov = phi + 2.0 * phi @ u @ phi
    fit.kr_p = pp
    fit.kr_w = w
    fit.kr_phi = phi


def random_factors(long: pd.DataFrame, effects: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Codes of each random factor ("rater", "case", "rater:system", "case:system") that the
    data can identify: more than one level, not every level a single rating (that is the
    residual), and not the same grouping as a factor already kept."""
    factors: dict[str, np.ndarray] = {}
    groupings: list[np.ndarray] = []
    for name in effects:
        parts = name.split(":")
        key = long[parts[0]].astype(str)
        for part in parts[1:]:
            key = key + "|" + long[part].astype(str)
        codes = pd.factorize(key)[0]
        levels = codes.max() + 1 if len(codes) else 0
        if levels < 2 or levels == len(codes):
            continue
        if any(
            pd.Series(codes).groupby(g).nunique().max() == 1
            and pd.Series(g).groupby(codes).nunique().max() == 1
            for g in groupings
        ):
            continue
        factors[name] = codes
        groupings.append(codes)
    return factors


def estimable_within(
    design: np.ndarray, blocks: dict[str, np.ndarray], contrasts: np.ndarray
) -> np.ndarray:
    """Whether each row of `contrasts` (of the design's coefficients) is estimable with
    `blocks` as fixed effects: its variance stays put when the blocks' ratio drops a
    thousandfold, and grows with the ratio where the blocks alias it (e.g. two systems
    never rated by one rater, or never on one case, in a chain of such comparisons)."""
    from scipy import linalg

    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    if not blocks:
        return np.ones(len(contrasts), dtype=bool)
    probe = _Henderson(np.zeros(len(design)), design, {}, blocks)
    variances = []
    for ratio in (BLOCK_RATIO, BLOCK_RATIO / 1e3):
        probe.block_ratio = ratio
        inner = probe.evaluate(np.zeros(0))[3]
        cov = linalg.cho_solve(inner, np.eye(design.shape[1]), check_finite=False)
        variances.append(np.einsum("ij,jk,ik->i", contrasts, cov, contrasts))
    return np.asarray(variances[0] < 10.0 * variances[1])


def _estimate(
    y: np.ndarray,
    design: np.ndarray,
    factors: dict[str, np.ndarray],
    contrasts: np.ndarray,
    ddf: str,
    blocks: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, CrossedREML]:
    """Estimates, standard errors and degrees of freedom of each row of `contrasts`."""
    fit = crossed_reml(y, design, factors, ddf=ddf != "z", blocks=blocks)
    if ddf == "kenward-roger":
        _add_kenward_roger(fit, design, factors, blocks)
    estimates, ses, dfs = [], [], []
    for contrast in np.atleast_2d(contrasts):
        se, df = (
            fit.kenward_roger(contrast) if ddf == "kenward-roger" else fit.satterthwaite(contrast)
        )
        estimates.append(float(contrast @ fit.beta))
        ses.append(se)
        dfs.append(df if ddf != "z" else float("inf"))
    return np.array(estimates), np.array(ses), np.array(dfs), fit


def _check_ddf(ddf: str, random: str) -> None:
    if ddf not in DF_METHODS:
        raise ValueError(f"ddf must be one of {', '.join(DF_METHODS)}, not {ddf!r}")
    if random not in RANDOM_EFFECTS:
        raise ValueError(f"random must be one of {', '.join(RANDOM_EFFECTS)}, not {random!r}")


def _mean_of_differences(
    group: pd.DataFrame, values: np.ndarray, level: float, method: str
) -> tuple[float, float, float, float, float, int]:
    """Mean of per-judgment paired differences: (estimate, se, df, low, high, n_cases).

    "cluster" (default): the mean with the two-way (case and rater) cluster-robust standard
    error, floored at that of independent judgments (pairwise.clustered_mean), and t on the
    fewest effective clusters - 1, the rule of the Bradley-Terry intervals, or n - 1 where
    the floor binds (bench/coverage.py, 300 studies: 0.937-0.972 coverage and a Holm
    family-wise null rejection of 0.027-0.050 in every scenario);
    "model": REML with rater and case random intercepts and a Satterthwaite t, so raters'
    system-specific taste and report effects, shared by many judgments, count once;
    "cases": t over case means (the judgments of a case are averaged first; ignores raters).
    """
    n_cases = int(group["case"].nunique())
    nan = float("nan")
    if len(values) == 0:
        return nan, nan, nan, nan, nan, 0
    if method == "cases":
        per_case = pd.Series(values).groupby(group["case"].to_numpy()).mean().to_numpy()
        mean, low, high = _t_interval(per_case, level)
        if len(per_case) < 2 or per_case.std(ddof=1) == 0:
            return mean, nan, nan, nan, nan, n_cases
        se = per_case.std(ddof=1) / np.sqrt(len(per_case))
        return mean, float(se), float(len(per_case) - 1), low, high, n_cases
    if method == "cluster":
        if len(values) < 2 or np.ptp(values) == 0:
            return float(np.mean(values)), nan, nan, nan, nan, n_cases
        mean, se, df = clustered_mean(values, group["case"].to_numpy(), group["rater"].to_numpy())
        half = _quantile(df, level) * se
        return mean, se, df, mean - half, mean + half, n_cases
    if method != "model":
        raise ValueError(f"method must be 'cluster', 'model' or 'cases', not {method!r}")
    if len(values) < 2 or np.ptp(values) == 0:
        # No spread: no interval and no test (not p = 0).
        return float(np.mean(values)), nan, nan, nan, nan, n_cases
    frame = group.reset_index(drop=True)
    factors = random_factors(frame, ("rater", "case"))
    estimate, se, df, _ = _estimate(
        values, np.ones((len(values), 1)), factors, np.ones((1, 1)), "satterthwaite"
    )
    half = _quantile(df[0], level) * se[0]
    return (
        float(estimate[0]),
        float(se[0]),
        float(df[0]),
        estimate[0] - half,
        estimate[0] + half,
        n_cases,
    )


def likert_means(
    judgments: pd.DataFrame, *, level: float = 0.95, method: str = "model"
) -> pd.DataFrame:
    """Mean score per criterion and system, point and interval from one estimator.

    "model" (default): the system's mean in a linear mixed model with rater, case,
    rater x system and report (case x system) random effects (REML), its interval a
    Satterthwaite t interval on the logit of the position within 1-5, so it stays on the
    scale; at the ends of the scale (every rating 1 or 5) there is no interval (NaN, with a
    note in `interval_note`). "model-wald": the same mean with a plain t interval (may leave
    the scale). "cases": mean of case means with a t interval over case means (ignores
    rater effects).
    """
    if method not in ("model", "model-wald", "cases"):
        raise ValueError(f"method must be 'model', 'model-wald' or 'cases', not {method!r}")
    long = likert_long(judgments)
    records = []
    for criterion, part in long.groupby("criterion", sort=True):
        part = part.reset_index(drop=True)
        systems = sorted(part["system"].unique())
        fitted: dict[str, tuple[float, float, float]] = {}
        if method != "cases" and len(part) > len(systems) and np.ptp(part["score"]) > 0:
            design = np.column_stack([(part["system"] == s).to_numpy(float) for s in systems])
            factors = random_factors(part, RANDOM_EFFECTS["full"])
            estimates, ses, dfs, _ = _estimate(
                part["score"].to_numpy(float),
                design,
                factors,
                np.eye(len(systems)),
                "satterthwaite",
            )
            fitted = {
                s: (e, se, df) for s, e, se, df in zip(systems, estimates, ses, dfs, strict=True)
            }
        for system in systems:
            group = part[part["system"] == system]
            per_case = group.groupby("case")["score"].mean().to_numpy()
            note = ""
            se = df = float("nan")
            if method == "cases":
                mean, low, high = _t_interval(per_case, level)
                if len(per_case) > 1:
                    se, df = stats.sem(per_case), float(len(per_case) - 1)
            elif np.ptp(group["score"]) == 0:
                # All ratings equal: that is the mean; there is no spread to make an interval.
                mean, low, high = float(group["score"].iloc[0]), float("nan"), float("nan")
            elif system in fitted:
                mean, se, df = fitted[system]
                if method == "model":
                    low, high = bounded_interval(mean, se, df, level)
                else:
                    half = _quantile(df, level) * se
                    low, high = mean - half, mean + half
            else:
                mean, low, high = float(group["score"].mean()), float("nan"), float("nan")
            if np.isnan(low):
                if np.ptp(group["score"]) > 0:
                    note = "too few ratings for an interval"
                elif group["score"].iloc[0] in SCALE:
                    note = "every rating at the end of the scale: no interval"
                else:
                    note = "all ratings equal: no interval"

            elif low < SCALE[0] or high > SCALE[1]:
                note = "interval reaches beyond the 1-5 scale"
            records.append(
                {
                    "criterion": criterion,
                    "system": system,
                    "n_ratings": len(group),
                    "n_cases": len(per_case),
                    "mean": mean,
                    "sd": float(group["score"].std(ddof=1)) if len(group) > 1 else float("nan"),
                    "ci_low": low,
                    "ci_high": high,
                    "se": float(se),
                    "df": float(df),
                    "method": method,
                    "interval_note": note,
                }
            )
    columns = [
        "criterion",
        "system",
        "n_ratings",
        "n_cases",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
        "se",
        "df",
        "method",
        "interval_note",
    ]
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
    judgments: pd.DataFrame,
    *,
    level: float = 0.95,
    correction: str = "holm",
    method: str = "cluster",
) -> pd.DataFrame:
    """Per comparison and criterion: mean and median of a - b, a test of no difference.

    The mean difference, its interval and `p` come from `method` ("cluster", the default:
    two-way cluster-robust standard error over cases and raters; "model": REML with rater
    and case random intercepts on the paired differences, Satterthwaite t; "cases": t over
    case means). `p_wilcoxon` is the Wilcoxon signed-rank test on case-mean differences
    (judgments of a case averaged first, as a sensitivity analysis: it still treats raters
    as fixed). `p_adj` / `p_wilcoxon_adj`: adjusted by `correction` over every
    (comparison, criterion) row.
    """
    records = []
    for criterion in criteria_of(judgments):
        frame = _paired(judgments, criterion)
        for (a, b), group in frame.groupby(["system_a", "system_b"], sort=True):
            diff = group["diff"].to_numpy(dtype=float)
            mean, se, df, low, high, n_cases = _mean_of_differences(group, diff, level, method)
            p = float("nan")
            if np.isfinite(se) and se > 0:
                p = float(2.0 * stats.t.sf(abs(mean / se), df))
            per_case = group.groupby("case")["diff"].mean().to_numpy(dtype=float)
            if len(per_case) and np.any(per_case != 0):
                p_wilcoxon = float(stats.wilcoxon(per_case, zero_method="wilcox").pvalue)
            else:
                p_wilcoxon = float("nan") if len(per_case) == 0 else 1.0
            records.append(
                {
                    "criterion": criterion,
                    "system_a": a,
                    "system_b": b,
                    "n": len(diff),
                    "n_cases": n_cases,
                    "mean_diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "df": df,
                    "p": p,
                    "median_diff": float(np.median(diff)) if len(diff) else float("nan"),
                    "p_wilcoxon": p_wilcoxon,
                }
            )
    columns = [
        "criterion",
        "system_a",
        "system_b",
        "n",
        "n_cases",
        "mean_diff",
        "ci_low",
        "ci_high",
        "df",
        "p",
        "median_diff",
        "p_wilcoxon",
    ]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adj"] = adjust_pvalues(table["p"], correction)
    table["p_wilcoxon_adj"] = adjust_pvalues(table["p_wilcoxon"], correction)
    table.attrs["method"] = method
    return table


@dataclass
class ModelFit:
    """Fixed effects of a system against the reference, plus variance components."""

    criterion: str
    model: str
    reference: str
    effects: pd.DataFrame  # term, estimate, se, df, ci_low, ci_high, p
    variance: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n: int = 0
    # How the p-values and intervals were made (for the table's notes).
    method: str = ""


def _reference(long: pd.DataFrame, reference: str | None) -> str:
    systems = sorted(long["system"].unique())
    if reference is None:
        return systems[0]
    if reference not in systems:
        raise ValueError(f"reference system {reference!r} is not in the study ({systems})")
    return reference


def mixed_model(
    judgments: pd.DataFrame,
    criterion: str,
    *,
    reference: str | None = None,
    level: float = 0.95,
    engine: str = "reml",
    random: str = "within",
    ddf: str = "satterthwaite",
) -> ModelFit:
    """Linear mixed model of the score with each rater's taste per system (rater x system)
    and each report (case x system) as random effects, comparing systems within rater and
    within case: score ~ system + rater + case + (1|rater:system) + (1|case:system), rater
    and case as fixed blocks (`FIXED_BLOCKS`; bench/coverage.py: the full model below
    rejected a true null 0.061 without rater or case effects, this one 0.049).
    random="full": rater and case as random effects too, score ~ system + (1|rater) +
    (1|case) + (1|rater:system) + (1|case:system), lme4's model (and the default's fallback,
    with a warning, where a contrast is not estimable within rater and case);
    random="intercepts": rater and case intercepts only (the ebb17df model).

    Contrasts against the reference are tested on t with Satterthwaite degrees of freedom
    (ddf="kenward-roger": Kenward and Roger's adjusted standard errors and df, as pbkrtest;
    on the coverage bench's studies it moved neither, about 1%; ddf="z": normal reference,
    the large-sample test). A random effect the data cannot
    identify (one level, or one rating per level) is left out. engine "reml" uses
    `crossed_reml` (fast); "statsmodels" fits MixedLM with variance components (one group,
    sparse) and gives the same estimates more slowly, with z tests.
    """
    _check_ddf(ddf, random)
    long = likert_long(judgments)
    long = long[long["criterion"] == criterion].reset_index(drop=True)
    if long["system"].nunique() < 2:
        raise ValueError(f"criterion {criterion!r}: need ratings of at least two systems")
    reference = _reference(long, reference)
    others = [s for s in sorted(long["system"].unique()) if s != reference]
    terms = [f"{s} - {reference}" for s in others]
    caught: list[str] = []
    design = np.column_stack(
        [np.ones(len(long))] + [(long["system"] == s).to_numpy(dtype=float) for s in others]
    )
    contrasts = np.eye(len(others) + 1)[1:]
    # Blocks first: a random factor with a block's grouping is that block, and left out.
    fixed = FIXED_BLOCKS.get(random, ())
    identified = random_factors(long, fixed + RANDOM_EFFECTS[random])
    blocks = {name: codes for name, codes in identified.items() if name in fixed}
    factors = {name: codes for name, codes in identified.items() if name not in fixed}
    if blocks and not estimable_within(design, blocks, contrasts).all():
        caught.append(
            "systems not all compared within one rater and one case: rater and case fitted "
            "as random effects"
        )
        random, blocks = "full", {}
        factors = random_factors(long, RANDOM_EFFECTS["full"])
    if engine == "reml":
        estimate, se, df, fit = _estimate(
            long["score"].to_numpy(dtype=float), design, factors, contrasts, ddf, blocks
        )
        variance = dict(fit.components)
        variance["residual"] = fit.residual
        if not fit.converged:
            caught.append("REML optimisation did not report convergence")
        if ddf != "z" and fit.vcov_varpar is None and fit.components:
            caught.append("Satterthwaite df not available (flat likelihood): residual df used")
        if ddf == "kenward-roger" and fit.kr_cov is None:
            caught.append(
                f"Kenward-Roger not available (more than {KENWARD_ROGER_MAX_N} ratings or a "
                "singular information): Satterthwaite df used"
            )
    elif engine == "statsmodels":
        import statsmodels.formula.api as smf

        long["one"] = 1
        components = {}
        for name in factors:
            column = name.replace(":", "_")
            key = long[name.split(":")[0]].astype(str)
            for part in name.split(":")[1:]:
                key = key + "|" + long[part].astype(str)
            long[column] = key
            components[name] = f"0 + C({column})"
        formula = f"score ~ C(system, Treatment(reference={reference!r}))" + "".join(
            f" + C({name})" for name in blocks
        )
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
        df = np.full(len(others), np.inf)
        variance = {
            name: float(v) for name, v in zip(model.exog_vc.names, result.vcomp, strict=True)
        }
        variance["residual"] = float(result.scale)
    else:
        raise ValueError(f"engine must be 'reml' or 'statsmodels', not {engine!r}")
    half = np.array([_quantile(d, level) for d in df]) * se
    t = estimate / se
    p = np.where(
        np.isfinite(df),
        2.0 * stats.t.sf(np.abs(t), np.where(np.isfinite(df), df, 1.0)),
        2.0 * stats.norm.sf(np.abs(t)),
    )
    effects = pd.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "se": se,
            "df": df,
            "ci_low": estimate - half,
            "ci_high": estimate + half,
            "p": p,
        }
    )
    random_text = {
        "within": "rater x system, report (case x system); rater and case as fixed blocks",
        "full": "rater, case, rater x system, report (case x system)",
        "intercepts": "rater, case",
    }[random]
    return ModelFit(
        criterion=criterion,
        model="mixedlm",
        reference=reference,
        effects=effects,
        variance=variance,
        warnings=caught,
        n=len(long),
        method=(
            f"REML, random effects: {random_text}; "
            + (
                {
                    "satterthwaite": "t tests, Satterthwaite df",
                    "kenward-roger": "t tests, Kenward-Roger df and standard errors",
                }.get(ddf, "z tests")
                if engine == "reml"
                else "z tests"
            )
        ),
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
    method: str = "cluster",
) -> pd.DataFrame:
    """Is each system's harm rating no worse than the comparator's by more than `margin`?

    `criterion` defaults to the criterion the judgments' form declares as the harm
    criterion (ValueError when there is none).
    Paired differences (system - comparator) per judgment; the mean difference, its
    two-sided `level` interval and the one-sided t test of H0: mean difference <= -margin
    come from `method` (`_mean_of_differences`: "cluster", the default of the paired
    differences too: two-way (case, rater) cluster-robust standard error, t on the fewest
    effective clusters - 1; "model": REML with rater and case random intercepts,
    Satterthwaite df, which fits spurious components where the differences have none and
    was conservative there, 0.975-0.992 coverage in bench/coverage.py; "cases": t over
    case means). The decision uses the same evidence the table shows:
    non-inferior when the `correction`-adjusted one-sided p lies below (1 - level) / 2.
    Without spread in the differences there is no test (p NaN, not non-inferior).
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
            values = sign * group["diff"].to_numpy(dtype=float)
            mean, se, df, low, high, n_cases = _mean_of_differences(group, values, level, method)
            p = float("nan")
            if np.isfinite(se) and se > 0:
                p = float(stats.t.sf((mean + margin) / se, df))
            records.append(
                {
                    "system": candidate,
                    "comparator": reference,
                    "criterion": criterion,
                    "n_cases": n_cases,
                    "n_pairs": len(group),
                    "mean_diff": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "df": df,
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
        "df",
        "margin",
        "p_noninferiority",
    ]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["p_adj"] = adjust_pvalues(table["p_noninferiority"], correction)
    alpha = (1.0 - level) / 2.0
    table["non_inferior"] = (table["p_adj"] < alpha).fillna(False).astype(bool)
    table.attrs.update(method=method, correction=correction, alpha=alpha)
    return table
