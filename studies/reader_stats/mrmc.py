"""Multi-reader multi-case (MRMC) inference for any figure of merit: Obuchowski-Rockette.

A reader study's conclusion should hold for new readers and new cases. The Obuchowski-
Rockette (OR) model treats the figure of merit (FOM) of reader j in modality i as
theta_ij = mu_i + R_j + (TR)_ij + e_ij, where the errors e of one case sample are
correlated: Var(e) and Cov1 (same reader, other modality), Cov2 (same modality, other
reader), Cov3 (other reader and modality). The covariances come from resampling cases
(jackknife, as OR-DBM MRMC and MRMCaov do, or bootstrap) or, when each reader reads only a
subset of the cases (split-plot and other incomplete designs), from U-statistic estimates
over the cases two FOMs share (iMRMC's approach). The tests and intervals follow Hillis
(2007, 2008): random readers and random cases (RRRC, Hillis denominator df), fixed readers
(FRRC, chi-square and z) and fixed cases (RRFC, the conventional ANOVA).

The input is the long format `reader, case, modality, score` (plus `truth` for AUC): one
row per reading. Figures of merit: `auc` (trapezoidal / Mann-Whitney AUC of the scores
against truth), `mean` (mean score, e.g. a Likert rating), `proportion` (share of 1s, e.g.
harm or the right surveillance interval) and `winrate` (share of wins against a named
baseline, ties counting one half; from pairwise judgments or from scores).

Validated against the Van Dyke et al. (1993) ROC study: OR-DBM MRMC 2.5 and MRMCaov
output is reproduced (tests/studies/test_reader_stats_mrmc.py). Research software.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

FOMS: dict[str, str] = {
    "auc": "AUC (trapezoidal, against truth)",
    "mean": "mean score",
    "proportion": "proportion",
    "winrate": "win rate against the baseline",
}
ANALYSES: dict[str, str] = {
    "rrrc": "random readers and random cases",
    "frrc": "fixed readers, random cases",
    "rrfc": "random readers, fixed cases",
}
COVARIANCES: tuple[str, ...] = ("jackknife", "bootstrap", "ustat")
COVARIANCE_LABELS: dict[str, str] = {
    "jackknife": "jackknife",
    "bootstrap": "bootstrap",
    "ustat": "U-statistic",
}
LONG_COLUMNS: tuple[str, ...] = ("reader", "case", "modality", "score")
# Below this many readers the reader variance rests on too few values to trust the df.
FEW_READERS = 4


class MRMCError(ValueError):
    """Readings that cannot be analysed; the message names the rows (from 1) to fix."""


def _rows_text(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _row_numbers(mask: pd.Series | np.ndarray) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(np.asarray(mask))]


# --- the readings table ---------------------------------------------------------------


def prepare_readings(
    frame: pd.DataFrame,
    fom: str,
    *,
    baseline: str | None = None,
    source: str = "readings",
) -> pd.DataFrame:
    """Check the long-format readings for `fom` and return a clean copy.

    Columns: reader, case, modality, score (and truth, 0/1 per case, for AUC). Rows are
    numbered from 1 in the order given. For `winrate`, `baseline` names the comparator: when
    it is one of the modalities, a modality wins a (reader, case) when its score is higher
    than the baseline's (ties one half); otherwise each score already is the outcome
    against the baseline (1 win, 0.5 tie, 0 loss). Raises MRMCError listing every problem.
    """
    if fom not in FOMS:
        raise MRMCError(f"unknown figure of merit {fom!r}; use one of {', '.join(FOMS)}")
    frame = frame.reset_index(drop=True)
    needed = LONG_COLUMNS + (("truth",) if fom == "auc" else ())
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise MRMCError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (required: {', '.join(needed)})"
        )
    if frame.empty:
        raise MRMCError(f"{source}: no readings")
    if fom == "winrate" and not baseline:
        raise MRMCError("the win rate needs --baseline: the modality every other is compared with")
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)
    for column in ("reader", "case", "modality"):
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            problems.append(
                f"{source}: column '{column}' is empty in {_rows_text(_row_numbers(empty))}"
            )
        out[column] = values.astype(str).str.strip().where(~empty, "")
    score = pd.to_numeric(frame["score"], errors="coerce")
    bad = score.isna() | ~np.isfinite(score.fillna(0.0))
    if bad.any():
        problems.append(
            f"{source}: column 'score' in {_rows_text(_row_numbers(bad))}: not a number"
        )
    if fom == "proportion":
        off = ~bad & ~score.isin([0, 1])
        if off.any():
            problems.append(
                f"{source}: column 'score' in {_rows_text(_row_numbers(off))}: a proportion "
                "needs 0 or 1"
            )
    out["score"] = score.astype(float)
    if fom == "winrate" and baseline not in set(out["modality"]):
        off = ~bad & ~score.isin([0, 0.5, 1])
        if off.any():
            problems.append(
                f"{source}: column 'score' in {_rows_text(_row_numbers(off))}: with baseline "
                f"{baseline!r} not among the modalities, a score is the outcome against it "
                "(1 win, 0.5 tie, 0 loss)"
            )
    if fom == "auc":
        truth = pd.to_numeric(frame["truth"], errors="coerce")
        no_truth = truth.isna()
        if no_truth.any():
            cases = sorted(set(out.loc[no_truth, "case"]))
            problems.append(
                f"{source}: column 'truth' is empty or not a number in "
                f"{_rows_text(_row_numbers(no_truth))} (case{'s' if len(cases) > 1 else ''} "
                f"{', '.join(cases[:8])}): every case needs its truth, 0 or 1"
            )
        off = ~no_truth & ~truth.isin([0, 1])
        if off.any():
            problems.append(
                f"{source}: column 'truth' in {_rows_text(_row_numbers(off))}: expected 0 or 1"
            )
        out["truth"] = truth
        if not problems:
            spread = out.groupby("case")["truth"].nunique()
            mixed = spread[spread > 1].index
            if len(mixed):
                rows = _row_numbers(out["case"].isin(mixed))
                problems.append(
                    f"{source}: case{'s' if len(mixed) > 1 else ''} "
                    f"{', '.join(map(str, mixed[:8]))} ha{'ve' if len(mixed) > 1 else 's'} "
                    f"more than one truth ({_rows_text(rows)})"
                )
    if problems:
        raise MRMCError("\n".join(problems))
    twice = out.duplicated(["reader", "case", "modality"], keep=False)
    if twice.any():
        raise MRMCError(
            f"{source}: the same reader, case and modality appear more than once in "
            f"{_rows_text(_row_numbers(twice))}; keep one reading each (a repeat reading "
            "belongs in an intra-reader analysis)"
        )
    out["_row"] = np.arange(1, len(out) + 1)
    if fom == "winrate" and baseline in set(out["modality"]):
        out = _wins_from_scores(out, baseline, source)
    _check_design(out, fom, source)
    out.attrs["fom"] = fom
    out.attrs["baseline"] = baseline
    out.attrs["synthetic"] = bool(frame.attrs.get("synthetic", False))
    return out


def _wins_from_scores(readings: pd.DataFrame, baseline: str, source: str) -> pd.DataFrame:
    """Each non-baseline reading against the baseline's reading of the same reader and case."""
    base = readings[readings["modality"] == baseline].set_index(["reader", "case"])["score"]
    others = readings[readings["modality"] != baseline].copy()
    if others.empty:
        raise MRMCError(f"{source}: no modality besides the baseline {baseline!r}")
    keys = pd.MultiIndex.from_frame(others[["reader", "case"]])
    against = base.reindex(keys).to_numpy()
    unmatched = np.isnan(against)
    if unmatched.any():
        rows = others["_row"].to_numpy()[unmatched].tolist()
        raise MRMCError(
            f"{source}: {_rows_text(rows)} have no reading of the baseline {baseline!r} by the "
            "same reader of the same case, so there is nothing to win against"
        )
    score = others["score"].to_numpy()
    others["score"] = np.where(score > against, 1.0, np.where(score < against, 0.0, 0.5))
    return others.reset_index(drop=True)


def _check_design(readings: pd.DataFrame, fom: str, source: str) -> None:
    """The design problems OR cannot work around, each naming its rows.

    Every modality needs two readers (the reader variance), every reader every modality
    (the reader x modality table of FOMs), and every (reader, modality) FOM two cases (two
    of each truth for an AUC) for its case variance.
    """
    modalities = sorted(set(readings["modality"]))
    readers = sorted(set(readings["reader"]))
    m_code = pd.Categorical(readings["modality"], categories=modalities).codes
    r_code = pd.Categorical(readings["reader"], categories=readers).codes
    counts = np.zeros((len(readers), len(modalities)), dtype=int)
    np.add.at(counts, (r_code, m_code), 1)
    positives = np.zeros_like(counts)
    if fom == "auc":
        np.add.at(positives, (r_code, m_code), readings["truth"].to_numpy() == 1)
    rows = readings["_row"].to_numpy()

    def rows_of(mask: np.ndarray) -> str:
        return _rows_text(rows[mask].tolist())

    problems: list[str] = []
    for m in np.flatnonzero((counts > 0).sum(axis=0) < 2):
        mask = m_code == m
        reader = readers[int(r_code[mask][0])]
        problems.append(
            f"{source}: modality {modalities[m]!r} is read by one reader only ({reader!r}, "
            f"{rows_of(mask)}); the reader variance needs at least two readers per modality"
        )
    for j in np.flatnonzero((counts == 0).any(axis=1)):
        absent = [modalities[m] for m in np.flatnonzero(counts[j] == 0)]
        problems.append(
            f"{source}: reader {readers[j]!r} has no cases in modalit"
            f"{'ies' if len(absent) > 1 else 'y'} {', '.join(map(repr, absent))} "
            f"(their readings: {rows_of(r_code == j)}); every reader must read every modality "
            "(drop the reader or add the readings)"
        )
    if not problems:
        if fom == "auc":
            short = (positives < 2) | (counts - positives < 2)
            need = "two positive and two negative cases (an AUC needs both kinds)"
        else:
            short = counts < 2
            need = "two cases"
        for j, m in zip(*np.nonzero(short), strict=True):
            problems.append(
                f"{source}: reader {readers[j]!r} in modality {modalities[m]!r} read too few "
                f"cases ({rows_of((r_code == j) & (m_code == m))}); the case variance of a "
                f"reader's figure of merit needs at least {need}"
            )
    if problems:
        raise MRMCError("\n".join(problems))


def readings_from_judgments(judgments: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Pairwise judgments -> long-format win readings against `baseline`.

    Each current judgment of a system against the baseline becomes one row (rater as
    reader, the other system as modality, score 1 win, 0.5 tie or both unacceptable, 0
    loss); gold items and repeat readings are left out. A rater who judged the same case
    and pair twice (two items) counts once, with the mean outcome.
    """
    frame = judgments
    if "is_gold" in frame.columns:
        frame = frame[~frame["is_gold"].astype(bool)]
    if "is_duplicate" in frame.columns:
        frame = frame[~frame["is_duplicate"].astype(bool)]
    with_base = frame[(frame["system_a"] == baseline) | (frame["system_b"] == baseline)]
    if with_base.empty:
        systems = sorted(set(frame["system_a"]) | set(frame["system_b"]))
        raise MRMCError(
            f"no judgment compares the baseline {baseline!r}; the systems are {', '.join(systems)}"
        )
    base_is_a = (with_base["system_a"] == baseline).to_numpy()
    other = np.where(base_is_a, with_base["system_b"], with_base["system_a"])
    winner = with_base["winner"].to_numpy()
    other_won = np.where(base_is_a, winner == "b", winner == "a")
    base_won = np.where(base_is_a, winner == "a", winner == "b")
    score = np.where(other_won, 1.0, np.where(base_won, 0.0, 0.5))
    long = pd.DataFrame(
        {
            "reader": with_base["rater"].astype(str).to_numpy(),
            "case": with_base["case"].astype(str).to_numpy(),
            "modality": other,
            "score": score,
        }
    )
    long = long.groupby(["reader", "case", "modality"], as_index=False)["score"].mean()
    long.attrs["synthetic"] = bool(judgments.attrs.get("synthetic", False))
    return long


def likert_readings_from_judgments(judgments: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """One Likert criterion of pairwise judgments as long-format readings (rater as reader,
    system as modality); a report a rater scored in several pairs counts once, with its
    mean score. Gold items and repeat readings are left out."""
    from studies.reader_stats.data import criteria_of

    if criterion not in criteria_of(judgments):
        raise MRMCError(
            f"no Likert criterion {criterion!r}; the judgments have "
            f"{', '.join(criteria_of(judgments)) or 'none'}"
        )
    frame = judgments
    for flag in ("is_gold", "is_duplicate"):
        if flag in frame.columns:
            frame = frame[~frame[flag].astype(bool)]
    sides = [
        frame[["rater", "case", f"system_{s}", f"likert_{s}_{criterion}"]].set_axis(
            ["reader", "case", "modality", "score"], axis=1
        )
        for s in ("a", "b")
    ]
    long = pd.concat(sides, ignore_index=True).dropna(subset=["score"])
    long = long.groupby(["reader", "case", "modality"], as_index=False)["score"].mean()
    long.attrs["synthetic"] = bool(judgments.attrs.get("synthetic", False))
    return long


# --- reading files (long format, iMRMC) --------------------------------------------------


def read_imrmc(path: str | Path) -> pd.DataFrame:
    """An iMRMC input file -> long-format readings with truth (reader, case, modality, score).

    The format: free description lines, optional `N0:`/`N1:`/`NR:`/`NM:` lines, a
    `BEGIN DATA:` line, then `readerID,caseID,modalityID,score` rows; truth rows have reader
    -1 (modality `truth` or 0) and score 0 or 1.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip().upper() == "BEGIN DATA:")
    except StopIteration as exc:
        raise MRMCError(f"{Path(path).name}: no 'BEGIN DATA:' line (not an iMRMC file)") from exc
    rows = []
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise MRMCError(f"{Path(path).name}: line {number} has {len(parts)} fields, not 4")
        rows.append(parts)
    data = pd.DataFrame(rows, columns=["reader", "case", "modality", "score"])
    is_truth = data["reader"] == "-1"
    truth = data[is_truth].set_index("case")["score"].astype(float)
    readings = data[~is_truth].copy()
    readings["truth"] = readings["case"].map(truth)
    return readings.reset_index(drop=True)


def load_readings_file(path: str | Path) -> pd.DataFrame:
    """Read long-format readings (.csv, .jsonl) or an iMRMC file (.imrmc)."""
    path = Path(path)
    if not path.exists():
        raise MRMCError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".imrmc":
        return read_imrmc(path)
    if suffix == ".csv":
        try:
            return pd.read_csv(path, dtype=str, comment="#")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise MRMCError(f"{path}: not a readable CSV file ({exc})") from exc
    if suffix in (".jsonl", ".ndjson"):
        try:
            return pd.read_json(path, lines=True, dtype=False)
        except ValueError as exc:
            raise MRMCError(f"{path}: not readable JSON lines ({exc})") from exc
    raise MRMCError(f"{path}: expected a .csv, .jsonl or .imrmc file, not '{suffix or path.name}'")


def imrmc_text(readings: pd.DataFrame, description: str) -> str:
    """Long-format readings with truth as an iMRMC input file (truth rows first)."""
    truth = readings.drop_duplicates("case")[["case", "truth"]]
    lines = [description.replace("\n", " "), ""]
    positives = int((truth["truth"] == 1).sum())
    lines += [
        f"N0:{len(truth) - positives}",
        f"N1:{positives}",
        f"NR:{readings['reader'].nunique()}",
        f"NM:{readings['modality'].nunique()}",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{c},truth,{int(t)}" for c, t in zip(truth["case"], truth["truth"], strict=True)]
    lines += [
        f"{r},{c},{m},{float(s):g}"
        for r, c, m, s in readings[["reader", "case", "modality", "score"]].itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


# --- figures of merit and their case covariances -------------------------------------------


@dataclass
class Cell:
    """One (modality, reader) cell: what its FOM is made of, as arrays over case indices."""

    cases: np.ndarray  # indices into the study's case list
    values: np.ndarray  # per-case score (mean-type FOMs)
    psi: np.ndarray | None = None  # AUC kernel, positives x negatives
    pos: np.ndarray | None = None  # case indices of the positives (AUC)
    neg: np.ndarray | None = None


def _psi(pos_scores: np.ndarray, neg_scores: np.ndarray) -> np.ndarray:
    diff = pos_scores[:, None] - neg_scores[None, :]
    return (diff > 0).astype(float) + 0.5 * (diff == 0)


def _cells(
    readings: pd.DataFrame, fom: str, modalities: list[str], readers: list[str], cases: list[str]
) -> dict[tuple[int, int], Cell]:
    m_code = pd.Categorical(readings["modality"], categories=modalities).codes
    r_code = pd.Categorical(readings["reader"], categories=readers).codes
    c_code = pd.Categorical(readings["case"], categories=cases).codes.astype(np.int64)
    scores = readings["score"].to_numpy(dtype=float)
    truth = readings["truth"].to_numpy(dtype=float) if fom == "auc" else None
    order = np.lexsort((c_code, r_code, m_code))
    key = m_code[order].astype(np.int64) * len(readers) + r_code[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    cells: dict[tuple[int, int], Cell] = {}
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        rows = order[start:stop]
        idx, values = c_code[rows], scores[rows]
        cell = Cell(cases=idx, values=values)
        if truth is not None:
            positive = truth[rows] == 1
            cell.pos, cell.neg = idx[positive], idx[~positive]
            cell.psi = _psi(values[positive], values[~positive])
        cells[(int(m_code[rows[0]]), int(r_code[rows[0]]))] = cell
    return cells


def _fom(cell: Cell) -> float:
    if cell.psi is not None:
        return float(cell.psi.mean())
    return float(cell.values.mean())


def _jackknife(cells: dict[tuple[int, int], Cell], n_cases: int) -> np.ndarray:
    """Leave-one-case-out FOMs, (cells x cases), in closed form for every FOM."""
    out = np.empty((len(cells), n_cases))
    for row, cell in enumerate(cells.values()):
        theta = _fom(cell)
        out[row] = theta  # a case the cell did not read leaves its FOM unchanged
        if cell.psi is not None:
            n1, n0 = cell.psi.shape
            total = cell.psi.sum()
            out[row, cell.pos] = (total - cell.psi.sum(axis=1)) / ((n1 - 1) * n0)
            out[row, cell.neg] = (total - cell.psi.sum(axis=0)) / (n1 * (n0 - 1))
        else:
            n = len(cell.values)
            out[row, cell.cases] = (cell.values.sum() - cell.values) / (n - 1)
    return out


def _jackknife_covariance(cells: dict[tuple[int, int], Cell], n_cases: int) -> np.ndarray:
    pseudo = _jackknife(cells, n_cases)
    centred = pseudo - pseudo.mean(axis=1, keepdims=True)
    return (n_cases - 1) / n_cases * centred @ centred.T


def _bootstrap_covariance(
    cells: dict[tuple[int, int], Cell],
    n_cases: int,
    strata: np.ndarray | None,
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """Covariance of the FOMs over case resamples (within truth strata for AUC)."""
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_resamples, n_cases))
    groups = (
        [np.arange(n_cases)] if strata is None else [np.flatnonzero(strata == s) for s in (0, 1)]
    )
    for members in groups:
        counts = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), n_resamples)
        weights[:, members] = counts
    foms = np.empty((len(cells), n_resamples))
    for row, cell in enumerate(cells.values()):
        if cell.psi is not None:
            w1, w0 = weights[:, cell.pos], weights[:, cell.neg]
            num = ((w1 @ cell.psi) * w0).sum(axis=1)
            den = w1.sum(axis=1) * w0.sum(axis=1)
        else:
            w = weights[:, cell.cases]
            num, den = w @ cell.values, w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            foms[row] = num / den
    keep = np.isfinite(foms).all(axis=0)  # a resample without any of a cell's cases
    return np.cov(foms[:, keep])


def _ustat_covariance(cells: dict[tuple[int, int], Cell], n_cases: int) -> np.ndarray:
    """Unbiased covariances of mean-type FOMs over the cases each pair of cells shares.

    For theta_A = mean of x_A over its n_A cases, Cov(theta_A, theta_B) = n_AB sigma_AB /
    (n_A n_B), sigma_AB the within-case covariance, estimated without bias by the sample
    covariance over the n_AB shared cases (Gallas's one-shot approach; iMRMC).
    """
    keys = list(cells)
    values = np.zeros((len(keys), n_cases))
    read = np.zeros((len(keys), n_cases))
    for row, key in enumerate(keys):
        values[row, cells[key].cases] = cells[key].values
        read[row, cells[key].cases] = 1.0
    # Over the shared cases of each pair: sum x_a x_b - (sum x_a)(sum x_b) / n_ab, as
    # matrix products (every pair at once).
    n_ab = read @ read.T
    cross = values @ values.T
    sum_a = values @ read.T  # [a, b]: sum of x_a over the cases b also read
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = (cross - sum_a * sum_a.T / n_ab) / (n_ab - 1)
        cov = n_ab * sigma / np.outer(read.sum(axis=1), read.sum(axis=1))
    # nothing shared (or one case): no covariance through cases
    return np.where(n_ab >= 2, cov, 0.0)


# --- the OR analysis ------------------------------------------------------------------------


@dataclass
class MRMCResult:
    """An OR analysis of one reader study.

    fom_table: FOM per reader (rows) and modality (columns). modalities: the reader-averaged
    FOM per modality with its single-modality SE, df and CI. differences: every pair of
    modalities (first minus second) with SE, df, CI, statistic (t, or z for FRRC) and p.
    test: the global test of equal modalities (F with df1/df2, or chi-square for FRRC).
    components: the OR variance components and mean squares. warnings: what a reader of
    the table must know (df at its floor, few readers, negative components).
    """

    fom: str
    analysis: str
    covariance: str
    design: str
    readers: list[str]
    modalities_order: list[str]
    n_cases: int
    fom_table: pd.DataFrame
    modalities: pd.DataFrame
    differences: pd.DataFrame
    test: dict[str, Any]
    components: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    baseline: str | None = None
    level: float = 0.95
    synthetic: bool = False
    # per-case variance and covariances (FOM covariance x n_A n_B / n_AB), for power
    case_moments: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [
                {
                    k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in r.items()
                }
                for r in frame.to_dict(orient="records")
            ]

        return {
            "fom": self.fom,
            "fom_label": FOMS[self.fom],
            "baseline": self.baseline,
            "analysis": self.analysis,
            "analysis_label": ANALYSES[self.analysis],
            "covariance": self.covariance,
            "design": self.design,
            "level": self.level,
            "readers": self.readers,
            "n_cases": self.n_cases,
            "fom_by_reader": {
                m: {r: float(v) for r, v in self.fom_table[m].items()} for m in self.fom_table
            },
            "modalities": records(self.modalities),
            "differences": records(self.differences),
            "test": _finite(self.test),
            "components": _finite(self.components),
            "case_moments": _finite(self.case_moments),
            "warnings": self.warnings,
            "synthetic": self.synthetic,
        }


def _kinds(keys: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Masks over pairs of cells: the variance (a cell with itself), Cov1 (same reader,
    other modality), Cov2 (same modality, other reader), Cov3 (other reader and modality)."""
    modality = np.array([i for i, _ in keys])
    reader = np.array([j for _, j in keys])
    same_m = modality[:, None] == modality[None, :]
    same_r = reader[:, None] == reader[None, :]
    return {
        "var": same_m & same_r,
        "cov1": ~same_m & same_r,
        "cov2": same_m & ~same_r,
        "cov3": ~same_m & ~same_r,
    }


def _average(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean over the pairs of one kind (0 when the design has none)."""
    chosen = values[mask & np.isfinite(values)]
    return float(chosen.mean()) if chosen.size else 0.0


def mrmc(
    readings: pd.DataFrame,
    fom: str = "auc",
    *,
    analysis: str = "rrrc",
    covariance: str | None = None,
    baseline: str | None = None,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
    source: str = "readings",
) -> MRMCResult:
    """Obuchowski-Rockette analysis of long-format readings (see `prepare_readings`).

    covariance: "jackknife" (default for a factorial design), "bootstrap" (cases resampled,
    within truth for AUC) or "ustat" (default for an incomplete design: each reader reads
    only some cases; mean-type FOMs). An AUC in an incomplete design is refused with the
    reason. For the win rate, the baseline is not a modality of the result: each modality's
    win rate is tested against 0.5 (no preference) and modalities are compared with each
    other.
    """
    if analysis not in ANALYSES:
        raise MRMCError(f"unknown analysis {analysis!r}; use one of {', '.join(ANALYSES)}")
    if covariance is not None and covariance not in COVARIANCES:
        raise MRMCError(f"unknown covariance {covariance!r}; use one of {', '.join(COVARIANCES)}")
    if not 0.5 < level < 1:
        raise MRMCError(f"level must be between 0.5 and 1, not {level}")
    if "_row" not in readings.columns:
        readings = prepare_readings(readings, fom, baseline=baseline, source=source)
    modalities = sorted(set(readings["modality"]))
    readers = sorted(set(readings["reader"]))
    cases = sorted(set(readings["case"]))
    t, r, n = len(modalities), len(readers), len(cases)
    factorial = len(readings) == t * r * n
    design = "factorial" if factorial else "incomplete"
    if covariance is None:
        # The jackknife over all cases is MRMCaov's estimate for any design; for mean-type
        # FOMs in an incomplete design the U-statistic estimate is unbiased (iMRMC).
        covariance = "jackknife" if factorial or fom == "auc" else "ustat"
    if covariance == "ustat" and fom == "auc":
        raise MRMCError(
            "the U-statistic covariance here is for mean-type figures of merit (mean, "
            "proportion, win rate); for an AUC use the jackknife or the bootstrap"
        )
    cells = _cells(readings, fom, modalities, readers, cases)
    strata = None
    if fom == "auc" and covariance == "bootstrap":
        truth = readings.drop_duplicates("case").set_index("case")["truth"]
        strata = truth.reindex(cases).to_numpy().astype(int)
    return analyse_cells(
        cells,
        fom,
        modalities,
        readers,
        n,
        analysis=analysis,
        covariance=covariance,
        design=design,
        strata=strata,
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        baseline=readings.attrs.get("baseline") or baseline,
        synthetic=bool(readings.attrs.get("synthetic", False)),
    )


def analyse_cells(
    cells: dict[tuple[int, int], Cell],
    fom: str,
    modalities: list[str],
    readers: list[str],
    n: int,
    *,
    analysis: str = "rrrc",
    covariance: str = "jackknife",
    design: str = "factorial",
    strata: np.ndarray | None = None,
    level: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
    baseline: str | None = None,
    synthetic: bool = False,
) -> MRMCResult:
    """The OR analysis of checked cells (what `mrmc` runs after checking its readings;
    simulation benches call it on arrays they built themselves)."""
    t, r = len(modalities), len(readers)
    keys = list(cells)
    theta = np.full((t, r), np.nan)
    for (i, j), cell in cells.items():
        theta[i, j] = _fom(cell)
    if covariance == "jackknife":
        cov = _jackknife_covariance(cells, n)
    elif covariance == "bootstrap":
        cov = _bootstrap_covariance(cells, n, strata, n_resamples, seed)
    else:
        cov = _ustat_covariance(cells, n)

    kinds = _kinds(keys)
    var_e = _average(cov, kinds["var"])
    cov1 = _average(cov, kinds["cov1"])
    cov2 = _average(cov, kinds["cov2"])
    cov3 = _average(cov, kinds["cov3"])
    # Per-case moments (a FOM covariance times n_A n_B / n_AB, over pairs that share cases):
    # what a study of another size or overlap would have (studies.reader_stats.power).
    read = np.zeros((len(keys), n), dtype=float)
    for row, key in enumerate(keys):
        read[row, cells[key].cases] = 1.0
    shared = read @ read.T
    counts = read.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_case = np.where(shared > 0, cov * np.outer(counts, counts) / shared, np.nan)
    case_moments = {kind: _average(per_case, mask) for kind, mask in kinds.items()}
    means = theta.mean(axis=1)
    grand = theta.mean()
    reader_means = theta.mean(axis=0)
    ms_t = r * float(((means - grand) ** 2).sum()) / (t - 1) if t > 1 else float("nan")
    ms_r = t * float(((reader_means - grand) ** 2).sum()) / (r - 1)
    resid = theta - means[:, None] - reader_means[None, :] + grand
    ms_tr = float((resid**2).sum()) / ((t - 1) * (r - 1)) if t > 1 else float("nan")
    ms_r_each = theta.var(axis=1, ddof=1)
    var_tr = ms_tr - var_e + cov1 + cov2 - cov3 if t > 1 else float("nan")
    var_r = (
        (ms_r - (var_tr if t > 1 else 0.0) - var_e - (t - 1) * cov1 + cov2 + (t - 1) * cov3) / t
        if t > 1
        else ms_r - var_e + cov2
    )
    components = {
        "var_reader": float(var_r),
        "var_treatment_reader": float(var_tr),
        "var_error": var_e,
        "cov1": cov1,
        "cov2": cov2,
        "cov3": cov3,
        "ms_t": ms_t,
        "ms_r": ms_r,
        "ms_tr": ms_tr,
    }
    warnings: list[str] = []
    alpha = 1 - level

    # Each modality alone (Hillis's single-treatment analysis), on its own Cov2.
    rows = []
    for i, modality in enumerate(modalities):
        own = [(a, key) for a, key in enumerate(keys) if key[0] == i]
        pair_covs = [cov[a, b] for (a, ka), (b, kb) in itertools.combinations(own, 2)]
        cov2_i = float(np.mean(pair_covs)) if pair_covs else 0.0
        var_i = float(np.mean([cov[a, a] for a, _ in own]))
        if analysis == "rrrc":
            spread = ms_r_each[i] + r * max(cov2_i, 0.0)
            se = math.sqrt(spread / r)
            df = spread**2 / (ms_r_each[i] ** 2 / (r - 1)) if ms_r_each[i] > 0 else math.inf
        elif analysis == "frrc":
            se = math.sqrt((var_i + (r - 1) * max(cov2_i, 0.0)) / r)
            df = math.inf
        else:
            se = math.sqrt(ms_r_each[i] / r)
            df = float(r - 1)
        crit = sps.norm.ppf(1 - alpha / 2) if math.isinf(df) else sps.t.ppf(1 - alpha / 2, df)
        row = {
            "modality": modality,
            "estimate": float(means[i]),
            "se": se,
            "df": df,
            "ci_low": float(means[i] - crit * se),
            "ci_high": float(means[i] + crit * se),
            "cov2": cov2_i,
            "ms_r": float(ms_r_each[i]),
        }
        if fom == "winrate":
            # No preference between a modality and the baseline is a win rate of one half.
            stat = (means[i] - 0.5) / se if se > 0 else math.nan
            row["statistic"] = stat
            row["p"] = _two_sided(stat, df)
        rows.append(row)
    modality_table = pd.DataFrame(rows)
    from studies.reader_stats.pairwise import adjust_pvalues

    if fom == "winrate":
        # every modality against the baseline is one family (Holm)
        modality_table["p_holm"] = adjust_pvalues(modality_table["p"].to_numpy(), "holm")

    diff_rows = []
    test: dict[str, Any] = {}
    if t > 1:
        shared = max(cov2 - cov3, 0.0)
        if analysis == "rrrc":
            denominator = ms_tr + r * shared
            df = denominator**2 / (ms_tr**2 / ((t - 1) * (r - 1))) if ms_tr > 0 else math.inf
            floor = (t - 1) * (r - 1)
            test = {"statistic": "F", "value": _ratio(ms_t, denominator), "df1": t - 1, "df2": df}
            test["p"] = float(sps.f.sf(test["value"], t - 1, df))
            se_diff = math.sqrt(2 / r * max(denominator, 0.0))
            if cov2 - cov3 <= 0:
                warnings.append(
                    f"Cov2 - Cov3 = {cov2 - cov3:.3g} is not positive, so the case term drops out "
                    f"and the Hillis denominator df sits at its floor (t-1)(r-1) = {floor}: the "
                    "test then ignores case variability beyond the reader-by-modality term"
                )
            elif df < floor + 1:
                warnings.append(
                    f"the Hillis denominator df ({df:.1f}) is near its floor (t-1)(r-1) = {floor}"
                )
        elif analysis == "frrc":
            denominator = var_e - cov1 + (r - 1) * shared
            df = math.inf
            value = _ratio((t - 1) * ms_t, denominator)
            test = {"statistic": "X2", "value": value, "df1": t - 1, "df2": None}
            test["p"] = float(sps.chi2.sf(value, t - 1))
            se_diff = math.sqrt(2 / r * max(denominator, 0.0))
        else:
            df = float((t - 1) * (r - 1))
            denominator = ms_tr
            test = {"statistic": "F", "value": _ratio(ms_t, ms_tr), "df1": t - 1, "df2": df}
            test["p"] = float(sps.f.sf(test["value"], t - 1, df))
            se_diff = math.sqrt(2 / r * max(ms_tr, 0.0))
        if not denominator > 0:
            warnings.append(
                "the figures of merit do not vary between readers and cases beyond the "
                "modality means (the test's denominator is 0): no test and no interval"
            )
            test["p"] = math.nan
            se_diff = math.nan
        crit = sps.norm.ppf(1 - alpha / 2) if math.isinf(df) else sps.t.ppf(1 - alpha / 2, df)
        for a, b in itertools.combinations(range(t), 2):
            estimate = float(means[a] - means[b])
            stat = estimate / se_diff if se_diff > 0 else math.nan  # NaN se: NaN too
            diff_rows.append(
                {
                    "comparison": f"{modalities[a]} - {modalities[b]}",
                    "estimate": estimate,
                    "se": se_diff,
                    "df": df,
                    "ci_low": estimate - crit * se_diff,
                    "ci_high": estimate + crit * se_diff,
                    "statistic": stat,
                    "p": _two_sided(stat, df),
                }
            )
    differences = pd.DataFrame(
        diff_rows,
        columns=["comparison", "estimate", "se", "df", "ci_low", "ci_high", "statistic", "p"],
    )
    differences["p_holm"] = adjust_pvalues(differences["p"].to_numpy(), "holm")
    if analysis != "frrc" and r < FEW_READERS:
        warnings.append(
            f"only {r} readers: the reader variance and the df rest on {r - 1} degree"
            f"{'s' if r > 2 else ''} of freedom; conclusions about new readers are fragile"
        )
    if analysis == "rrrc" and t > 1 and var_r < 0:
        warnings.append(
            "the reader variance estimate is negative (an ANOVA estimate); read it as 0"
        )
    fom_table = pd.DataFrame(theta.T, index=readers, columns=modalities)
    fom_table.index.name = "reader"
    return MRMCResult(
        fom=fom,
        analysis=analysis,
        covariance=covariance,
        design=design,
        readers=readers,
        modalities_order=modalities,
        n_cases=n,
        fom_table=fom_table,
        modalities=modality_table,
        differences=differences,
        test=test,
        components=components,
        warnings=warnings,
        baseline=baseline,
        level=level,
        synthetic=synthetic,
        case_moments=case_moments,
    )


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.nan


def _finite(values: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN or infinity: null instead (a term the design does not have)."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


def _two_sided(stat: float, df: float) -> float:
    if not math.isfinite(stat):
        return math.nan
    if math.isinf(df):
        return float(2 * sps.norm.sf(abs(stat)))
    return float(2 * sps.t.sf(abs(stat), df))


# --- tables (rendered by studies.exports.render) ---------------------------------------------


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–" if value is None or math.isnan(value) else "∞"
    return f"{value:.{digits}f}"


def _p(value: Any) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


def _footer(result: MRMCResult) -> list[str]:
    from model.notice import RESEARCH_NOTICE

    lines = [
        f"Obuchowski-Rockette analysis, {ANALYSES[result.analysis]} ({result.analysis.upper()}); "
        f"{len(result.readers)} readers, {result.n_cases} cases, {result.design} design; "
        f"{COVARIANCE_LABELS[result.covariance]} covariances of the figures of merit over cases.",
    ]
    if result.analysis == "rrrc":
        lines.append(
            "df: Hillis (2007) denominator degrees of freedom; CIs for each modality use its "
            "own reader mean square and Cov2."
        )
    elif result.analysis == "frrc":
        lines.append(
            "Readers fixed: chi-square and z (normal) tests; results hold for these readers."
        )
    else:
        lines.append("Cases fixed: the conventional reader ANOVA; results hold for these cases.")
    if result.fom == "winrate":
        lines.append(
            f"Win rate: share of judgments each modality wins against {result.baseline!r} "
            "(ties and 'both unacceptable' count one half); p tests a win rate of 0.5."
        )
    lines += [f"Warning: {w}." for w in result.warnings]
    if result.synthetic:
        lines.append("SYNTHETIC data: simulated or synthetic readings, not a clinical result.")
    lines.append(RESEARCH_NOTICE)
    return lines


def result_tables(result: MRMCResult) -> list[Any]:
    """The analysis as tables for `studies.exports.render.render`: modalities, differences
    (with the global test), the variance components and each reader's figure of merit."""
    from studies.exports.render import Table

    level = f"{round(result.level * 100)}% CI"
    label = FOMS[result.fom]
    footer = _footer(result)
    mod = result.modalities
    headers = ["Modality", label[0].upper() + label[1:], "SE", "df", level]
    columns = ["modality", "estimate", "se", "df", "ci_low", "ci_high"]
    if "p" in mod.columns:
        headers += ["p (win rate 0.5)", "p (Holm)"]
        columns += ["p", "p_holm"]
    rows = []
    for r in mod.itertuples(index=False):
        row = [r.modality, _num(r.estimate), _num(r.se), _num(r.df, 2)]
        row.append(f"[{_num(r.ci_low)}, {_num(r.ci_high)}]")
        if "p" in mod.columns:
            row += [_p(r.p), _p(r.p_holm)]
        rows.append(row)
    tables = [
        Table(
            headers=headers,
            rows=rows,
            title=f"MRMC: reader-averaged {label} by modality",
            footer=footer,
            name="mrmc_modalities",
            data=mod[columns],
            align="l" + "r" * (len(headers) - 1),
        )
    ]
    if len(result.differences):
        stat = "z" if result.analysis == "frrc" else "t"
        test = result.test
        df2 = "" if test.get("df2") is None else f", {test['df2']:.2f}"
        global_line = (
            f"Global test of equal modalities: {test['statistic']}({test['df1']}{df2}) = "
            f"{test['value']:.4f}, p = {_p(test['p'])}."
        )
        rows = [
            [
                r.comparison,
                _num(r.estimate),
                _num(r.se),
                _num(r.df, 2),
                f"[{_num(r.ci_low)}, {_num(r.ci_high)}]",
                _num(r.statistic, 3),
                _p(r.p),
                _p(r.p_holm),
            ]
            for r in result.differences.itertuples(index=False)
        ]
        tables.append(
            Table(
                headers=["Comparison", "Difference", "SE", "df", level, stat, "p", "p (Holm)"],
                rows=rows,
                title=f"MRMC: differences of the reader-averaged {label}",
                footer=[global_line, *footer],
                name="mrmc_differences",
                data=result.differences,
                align="lrrrrrrr",
            )
        )
    names = {
        "var_reader": "Var(R)",
        "var_treatment_reader": "Var(T×R)",
        "var_error": "Var(error)",
        "cov1": "Cov1 (same reader)",
        "cov2": "Cov2 (same modality)",
        "cov3": "Cov3 (neither)",
        "ms_t": "MS(T)",
        "ms_r": "MS(R)",
        "ms_tr": "MS(T×R)",
    }
    comp = [(names[k], v) for k, v in result.components.items()]
    tables.append(
        Table(
            headers=["Component", "Estimate"],
            rows=[[n, f"{v:.6g}" if math.isfinite(v) else "–"] for n, v in comp],
            title="MRMC: Obuchowski-Rockette variance components and mean squares",
            footer=[
                "ANOVA estimates (can be negative); the pilot values for a power analysis.",
                *footer,
            ],
            name="mrmc_components",
            data=(["component", "estimate"], [[k, v] for k, v in result.components.items()]),
            align="lr",
        )
    )
    by_reader = result.fom_table.reset_index()
    tables.append(
        Table(
            headers=["Reader", *result.fom_table.columns],
            rows=[[r[0], *(_num(v) for v in r[1:])] for r in by_reader.itertuples(index=False)],
            title=f"MRMC: {label} of each reader",
            footer=footer,
            name="mrmc_readers",
            data=by_reader,
            align="l" + "r" * len(result.fom_table.columns),
        )
    )
    return tables


def study_mrmc(
    judgments: pd.DataFrame, comparator: str | None = None, criteria: list[str] | None = None
) -> list[tuple[str, MRMCResult | str]]:
    """The MRMC analyses the Analysis page shows for a study's judgments (RRRC).

    The win rate of every system against `comparator` (when one is set) and the mean of
    each Likert criterion in `criteria`, each with a title; where the design is refused,
    the message instead of a result.
    """
    found: list[tuple[str, MRMCResult | str]] = []
    jobs: list[tuple[str, Any]] = []
    if comparator:
        jobs.append(
            (
                f"Win rate against {comparator}",
                lambda: mrmc(
                    readings_from_judgments(judgments, comparator), "winrate", baseline=comparator
                ),
            )
        )
    for key in criteria or []:
        jobs.append(
            (
                f"Likert {key}: mean score",
                lambda key=key: mrmc(likert_readings_from_judgments(judgments, key), "mean"),
            )
        )
    for title, job in jobs:
        try:
            found.append((title, job()))
        except MRMCError as exc:
            found.append((title, str(exc)))
    return found
