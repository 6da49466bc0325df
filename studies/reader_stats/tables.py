"""Significance tables and plots from reader analyses: CSV, LaTeX (booktabs), Markdown, PNG/PDF.

Every table carries a footer saying how it was made (cases, raters, judgments, bootstrap
resamples, seed, correction, the research-use line, and 'synthetic' for synthetic data).
CSV files hold the raw numbers with the footer as trailing '#' lines
(`pandas.read_csv(path, comment="#")` reads them back); LaTeX and Markdown hold the
formatted numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from metrics.significance import CORRECTION_LABELS
from model.notice import RESEARCH_NOTICE
from studies.exports.render import (
    EXTENSIONS,
    FORMATS,
    PAPER,
    Table,
    check_format,
    format_number,
    json_text,
    table_document,
)
from studies.exports.render import render as render_table
from studies.exports.synthetic import UNSTATED, synthetic_line
from studies.reader_stats.analysis import PairwiseAnalysis, Provenance, StudyAnalysis
from studies.reader_stats.pairwise import adjust_pvalues


@dataclass
class SignificanceTable:
    name: str
    title: str
    data: pd.DataFrame  # raw numbers (CSV)
    display: pd.DataFrame  # formatted strings (LaTeX, Markdown)
    notes: list[str] = field(default_factory=list)


# --- number formatting ------------------------------------------------------------------


def fmt_number(value: Any, digits: int = 2) -> str:
    # The renderer's one number format: "–" for no value, never "-0.00".
    return format_number(value, digits)


def fmt_ci(estimate: Any, low: Any, high: Any, digits: int = 2) -> str:
    text = fmt_number(estimate, digits)
    if low is None or high is None or (isinstance(low, float) and math.isnan(low)):
        return text
    return f"{text} [{fmt_number(low, digits)}, {fmt_number(high, digits)}]"


def _cis(estimate: pd.Series, low: pd.Series, high: pd.Series) -> list[str]:
    return [fmt_ci(e, lo, hi) for e, lo, hi in zip(estimate, low, high, strict=True)]


def fmt_p(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    value = float(value)
    if value < 0.001:
        return "<0.001"
    return f"{value:.3f}"


# Below either number, every reader-statistics footer says the study is small: intervals
# and tests that treat cases and raters as random then rest on few clusters.
SMALL_STUDY: dict[str, int] = {"cases": 30, "raters": 5}


def small_study_note(n_cases: int, n_raters: int) -> str | None:
    """The footer's small-sample note, or None when the study reaches SMALL_STUDY."""
    short = []
    if n_cases < SMALL_STUDY["cases"]:
        short.append(f"{n_cases} cases (fewer than {SMALL_STUDY['cases']})")
    if n_raters < SMALL_STUDY["raters"]:
        short.append(f"{n_raters} raters (fewer than {SMALL_STUDY['raters']})")
    if not short:
        return None
    return (
        f"Small study: {' and '.join(short)}. Intervals and tests that treat cases and "
        "raters as random rest on few clusters and may be too narrow or too wide; read them "
        "as rough, and the exact (Clopper-Pearson) intervals for shares."
    )


def _bt_interval_words(settings: dict[str, Any]) -> str:
    cluster = str(settings.get("cluster", "case")).replace("+", " and ")
    if settings.get("interval", "bootstrap") == "sandwich":
        return (
            f"Bradley-Terry intervals: cluster-robust sandwich (clusters: {cluster}; "
            "t with the fewest clusters - 1 df)"
        )
    return f"Bradley-Terry intervals: percentile bootstrap (resampling {cluster})"


def footer_lines(provenance: Provenance) -> list[str]:
    settings = provenance.settings
    level = int(round(100 * settings["level"]))
    resamples = settings["n_resamples"]
    lines = [
        f"n cases = {provenance.n_cases}, n raters = {provenance.n_raters}, "
        f"n judgments = {provenance.n_judgments}, systems = {provenance.n_systems}.",
        f"{level}% intervals; {_bt_interval_words(settings)}; bootstrap resamples = "
        f"{resamples}, seed = {settings['seed']}; "
        f"multiple comparisons: {CORRECTION_LABELS[settings['correction']]}; "
        f"Bradley-Terry ties: "
        f"{'Davidson' if settings['tie_model'] == 'davidson' else 'half wins'}"
        f"{', style (length) control' if settings['style'] else ''}.",
        f"Source: {provenance.source}; made {provenance.generated_at} by "
        f"med-vision-workbench {provenance.version}.",
        RESEARCH_NOTICE,
    ]
    if provenance.amendments:
        lines.insert(-1, provenance.amendments)
    note = small_study_note(provenance.n_cases, provenance.n_raters)
    if note:
        lines.insert(1, note)
    if provenance.synthetic:
        lines.insert(0, synthetic_line(provenance.synthetic_kind or UNSTATED))
    return lines


def _rank_text(rank: Any) -> str:
    return "–" if rank is None or pd.isna(rank) else str(int(rank))


# --- tables -----------------------------------------------------------------------------


def bt_table(analysis: PairwiseAnalysis) -> SignificanceTable:
    bt = analysis.bt
    data = bt.table()
    display = pd.DataFrame(
        {
            "Rank": data["rank"].map(_rank_text),
            "System": data["system"],
            "BT strength [CI]": _cis(data["bt"], data["ci_low"], data["ci_high"]),
        }
    )
    if data["component"].nunique() > 1:
        display.insert(0, "Component", data["component"].astype(str))
    notes = [
        "BT strength: log-strength (log-odds scale), centred to mean 0 within its connected "
        "component of the comparison graph; rank = 1 + number of systems of the same "
        "component whose lower bound lies above this system's upper bound ('–': no interval, "
        "no rank)."
    ]
    if bt.tie_nu is not None:
        notes.append(f"Davidson tie parameter nu = {bt.tie_nu:.3f}.")
    for name, (coef, low, high) in bt.style.items():
        notes.append(f"Style control: {name} coefficient {fmt_ci(coef, low, high)} per SD.")
    notes.extend(f"Warning: {w}." for w in bt.warnings)
    from studies.reader_stats.robustness import robustness_note  # refits: only when shown

    notes += [line for line in (robustness_note(analysis),) if line]
    return SignificanceTable("bradley_terry", "Bradley-Terry strengths", data, display, notes)


def pairwise_table(analysis: PairwiseAnalysis) -> SignificanceTable:
    data = analysis.pairwise
    display = pd.DataFrame(
        {
            "Comparison": data["system_a"] + " vs " + data["system_b"],
            "n": data["n"].astype(str),
            "A wins": data["wins_a"].astype(str),
            "B wins": data["wins_b"].astype(str),
            "Ties": data["ties"].astype(str),
            "Both unacc.": data["both_bad"].astype(str),
            "A win share [CI]": _cis(data["share_a"], data["share_a_low"], data["share_a_high"]),
            "Exact CI": [
                f"[{fmt_number(lo)}, {fmt_number(hi)}]"
                for lo, hi in zip(data["share_a_cp_low"], data["share_a_cp_high"], strict=True)
            ],
            "p sign (adj.)": data["p_sign_adj"].map(fmt_p),
        }
    )
    notes = [
        "A win share: cluster-aware Wilson interval (effective n = n / design effect, with "
        "cases and raters as clusters; a design effect below one is taken as one, judgments "
        "no better than independent); exact CI: Clopper-Pearson, judgments independent (for "
        "small n). Sign test with ties and 'both unacceptable' excluded, clustered on case and "
        "rater (two-way variance of the signs, t with the fewest clusters - 1 df). The raw "
        "numbers add the exact binomial sign test and its ties-split sensitivity analysis "
        "(both treat judgments as independent)."
    ]
    return SignificanceTable("pairwise", "Win, tie and loss per comparison", data, display, notes)


def win_matrix_table(analysis: PairwiseAnalysis) -> SignificanceTable:
    rates = analysis.win_rates
    data = rates.reset_index(names="system")
    display = rates.map(lambda v: fmt_number(v)).reset_index(names="Row beats column")
    notes = ["Observed share of judgments the row system won (ties count half)."]
    return SignificanceTable("win_matrix", "Win-rate matrix", data, display, notes)


def _adjustment(analysis: StudyAnalysis) -> str:
    """The words for the adjustment the settings' correction applies to a table's p-values."""
    label = CORRECTION_LABELS[analysis.settings.correction]
    return "unadjusted" if analysis.settings.correction == "none" else f"adjusted ({label})"


def likert_table(analysis: StudyAnalysis) -> SignificanceTable:
    data = analysis.likert_means
    display = pd.DataFrame(
        {
            "Criterion": data["criterion"],
            "System": data["system"],
            "n": data["n_ratings"].astype(str),
            "Mean [CI]": _cis(data["mean"], data["ci_low"], data["ci_high"]),
        }
    )
    notes = [
        "Likert 1-5, higher is better; mean and interval from one linear mixed model "
        "(random rater, case, rater x system and report effects; REML), a Satterthwaite "
        "t interval on the logit of the position on the 1-5 scale, so it stays on the scale."
    ]
    if "interval_note" in data:
        for row in data[data["interval_note"].fillna("") != ""].itertuples(index=False):
            notes.append(f"{row.criterion}, {row.system}: {row.interval_note}.")
    return SignificanceTable("likert_means", "Likert ratings per criterion", data, display, notes)


def likert_paired_table(analysis: StudyAnalysis) -> SignificanceTable:
    data = analysis.likert_paired
    display = pd.DataFrame(
        {
            "Criterion": data["criterion"],
            "Comparison": data["system_a"] + " - " + data["system_b"],
            "n": data["n"].astype(str),
            "Mean difference [CI]": _cis(data["mean_diff"], data["ci_low"], data["ci_high"]),
            "Median": data["median_diff"].map(fmt_number),
            "p (adj.)": data["p_adj"].map(fmt_p),
            "p Wilcoxon, case means (adj.)": data["p_wilcoxon_adj"].map(fmt_p),
        }
    )
    notes = [
        "Paired differences within a judgment (a - b); mean, interval and p with cases and "
        "raters as crossed clusters (two-way cluster-robust standard error, t on the fewest "
        "effective clusters - 1), so a rater's taste counts once, not once per judgment. "
        "Sensitivity: Wilcoxon signed-rank test on case-mean differences (it does not allow "
        "for rater effects).",
        f"p-values {_adjustment(analysis)} over every (comparison, criterion) row.",
    ]
    outside = data[(data["ci_low"] < -4) | (data["ci_high"] > 4)]
    for row in outside.itertuples(index=False):
        notes.append(
            f"{row.criterion}, {row.system_a} - {row.system_b}: the interval reaches beyond "
            "the possible differences (-4 to 4)."
        )
    return SignificanceTable("likert_paired", "Paired Likert differences", data, display, notes)


def models_table(analysis: StudyAnalysis) -> SignificanceTable:
    frames = []
    methods = {fit.method for fit in analysis.models if fit.model == "mixedlm" and fit.method}
    notes = [
        "mixedlm: linear mixed model"
        + (f" ({'; '.join(sorted(methods))})" if methods else "")
        + "; ordered_logit: cumulative-logit sensitivity analysis (log odds ratios, no "
        "random effects)."
    ]
    for fit in analysis.models:
        effects = fit.effects.assign(criterion=fit.criterion, model=fit.model, n=fit.n)
        frames.append(effects)
        if fit.variance:
            parts = ", ".join(f"{k} {v:.3f}" for k, v in fit.variance.items())
            notes.append(f"Variance components ({fit.criterion}): {parts}.")
    columns = ["criterion", "model", "term", "n", "estimate", "ci_low", "ci_high", "p", "p_adj"]
    if frames:
        data = pd.concat(frames, ignore_index=True)
        # One family per model: every criterion's contrasts.
        data["p_adj"] = data.groupby("model")["p"].transform(
            lambda p: adjust_pvalues(p, analysis.settings.correction)
        )
        data = data[columns + (["df"] if "df" in data else [])]
    else:
        data = pd.DataFrame(columns=columns)
    display = pd.DataFrame(
        {
            "Criterion": data["criterion"],
            "Model": data["model"],
            "Contrast": data["term"],
            "Estimate [CI]": _cis(data["estimate"], data["ci_low"], data["ci_high"]),
            "p (adj.)": data["p_adj"].map(fmt_p),
        }
    )
    notes.append(
        f"p-values {_adjustment(analysis)} within each model over all its criteria and "
        "contrasts; intervals unadjusted."
    )
    return SignificanceTable("likert_models", "Likert models", data, display, notes)


# How harm_noninferiority's `method` makes the difference, its interval and the test.
HARM_METHODS = {
    "cluster": "cases and raters as crossed clusters: two-way cluster-robust standard error, "
    "t on the fewest effective clusters - 1",
    "model": "mixed model with rater and case random intercepts, Satterthwaite df",
    "cases": "t over case means",
}


def harm_table(analysis: StudyAnalysis) -> SignificanceTable:
    data = analysis.harm
    # The form's harm criterion (the default form's is 'safety').
    harm = analysis.harm_criterion or "harm"
    title = f"Harm ({harm.replace('_', ' ')}) non-inferiority"
    if data.empty:
        display = pd.DataFrame(columns=["System", "Comparator"])
        return SignificanceTable("harm", title, data, display)
    margin = float(data["margin"].iloc[0])
    alpha = (1.0 - analysis.settings.level) / 2.0
    display = pd.DataFrame(
        {
            "System": data["system"],
            "Comparator": data["comparator"],
            "Cases": data["n_cases"].astype(str),
            f"{harm.replace('_', ' ').capitalize()} difference [CI]": _cis(
                data["mean_diff"], data["ci_low"], data["ci_high"]
            ),
            "p (adj.)": data["p_adj"].map(fmt_p),
            "Non-inferior": data["non_inferior"].map({True: "yes", False: "no"}),
        }
    )
    evidence = HARM_METHODS.get(str(data.attrs.get("method", "cluster")), "")
    notes = [
        f"{harm.replace('_', ' ').capitalize()} rated separately (5 = no potential for harm); "
        f"non-inferiority margin {margin:g} Likert points. One-sided t test of H0: "
        f"difference <= -{margin:g} on paired differences ({evidence}); non-inferior when "
        "the p shown, "
        f"{_adjustment(analysis)} over every row, is below {alpha:g}. Intervals: unadjusted "
        "two-sided.",
    ]
    if data["p_noninferiority"].isna().any():
        notes.append("p '–': no spread in the paired differences, no test (not non-inferior).")
    return SignificanceTable("harm", title, data, display, notes)


def agreement_table(analysis: StudyAnalysis) -> SignificanceTable:
    data = analysis.agreement
    display = pd.DataFrame(
        {
            "Measure": data["measure"],
            "Ratings": data["ratings"],
            "Units": data["n_units"].astype(str),
            "Value [CI]": _cis(data["value"], data["ci_low"], data["ci_high"]),
        }
    )
    notes = [
        "Preferences coded b < tie/both unacceptable < a; units: items (preference) or "
        "reports (Likert). Fleiss' kappa and Gwet's AC1 (nominal) / AC2 (ordinal, quadratic "
        "weights) in Gwet's form for any number of raters per unit; their intervals: Gwet's "
        "linearised variance with units and raters both sampled (two-way, Satterthwaite t), "
        "capped at 1. Other intervals: bootstrap over units (raters fixed)."
    ]
    return SignificanceTable("agreement", "Inter-rater agreement", data, display, notes)


def kappa_pairs_table(analysis: StudyAnalysis) -> SignificanceTable:
    data = analysis.kappa_pairs
    display = pd.DataFrame(
        {
            "Rater pair": data["rater_1"] + " / " + data["rater_2"],
            "Items": data["n_units"].astype(str),
            "Weighted kappa [CI]": _cis(data["kappa"], data["ci_low"], data["ci_high"]),
        }
    )
    notes = ["Cohen's kappa with linear weights on the preference scale."]
    return SignificanceTable("kappa_pairs", "Cohen's kappa per rater pair", data, display, notes)


def rater_quality_table(analysis: StudyAnalysis) -> SignificanceTable:
    raters = sorted(set(analysis.rushed["rater"]) if not analysis.rushed.empty else [])
    data = pd.DataFrame({"rater": raters})
    if not analysis.gold.empty:
        data = data.merge(analysis.gold[["rater", "n_gold", "accuracy"]], on="rater", how="left")
    else:
        data["n_gold"], data["accuracy"] = 0, np.nan
    intra = analysis.intra_rater
    intra = intra[intra["rater"] != "all"] if not intra.empty else intra
    if not intra.empty:
        data = data.merge(intra[["rater", "n_pairs", "share_same"]], on="rater", how="left")
    else:
        data["n_pairs"], data["share_same"] = 0, np.nan
    position = analysis.position
    position = position[position["rater"] != "all"] if not position.empty else position
    if not position.empty:
        data = data.merge(position[["rater", "share_left", "p_adj"]], on="rater", how="left")
    else:
        data["share_left"], data["p_adj"] = np.nan, np.nan
    rushed = analysis.rushed[["rater", "median_seconds", "share_rushed", "flagged"]]
    data = data.merge(rushed, on="rater", how="left")
    display = pd.DataFrame(
        {
            "Rater": data["rater"],
            "Gold accuracy": data["accuracy"].map(fmt_number),
            "Self-agreement": data["share_same"].map(fmt_number),
            "Left preferred": data["share_left"].map(fmt_number),
            "p left (adj.)": data["p_adj"].map(fmt_p),
            "Median s": data["median_seconds"].map(lambda v: fmt_number(v, 0)),
            "Rushed": data["share_rushed"].map(fmt_number),
            "Flag": data["flagged"].map({True: "rushed", False: ""}).fillna(""),
        }
    )
    notes = []
    overall = analysis.position[analysis.position["rater"] == "all"]
    if not overall.empty:
        row = overall.iloc[0]
        notes.append(
            f"Position bias, all raters: left preferred in "
            f"{fmt_ci(row['share_left'], row['ci_low'], row['ci_high'])} of decided "
            f"judgments (n = {int(row['n_decided'])}, binomial p = {fmt_p(row['p'])})."
        )
    if not analysis.rushed.empty:
        threshold = float(analysis.rushed["threshold_s"].iloc[0])
        notes.append(f"Rushed: answered in under {threshold:.0f} s.")
    return SignificanceTable("rater_quality", "Rater quality", data, display, notes)


def metric_table(analysis: StudyAnalysis) -> SignificanceTable | None:
    data = analysis.metrics
    if data is None:
        return None
    display = pd.DataFrame(
        {
            "Metric": data["metric"],
            "Decided pairs": data["n_decided"].astype(str),
            "Agreement [CI]": _cis(
                data["agreement"], data["agreement_low"], data["agreement_high"]
            ),
            "Kendall tau [CI]": _cis(data["kendall_tau"], data["tau_low"], data["tau_high"]),
        }
    )
    # Per Likert criterion: tau-b between a report's metric score and its rating.
    for column in [c for c in data.columns if c.startswith("n_rated_")]:
        key = column.removeprefix("n_rated_")
        display[f"tau vs {key} [CI]"] = _cis(
            data[f"tau_{key}"], data[f"tau_{key}_low"], data[f"tau_{key}_high"]
        )
    notes = [
        "Agreement: share of human-decided judgments where the metric scores the preferred "
        "report higher (metric ties count half); Kendall's tau-b between human preference "
        "and metric difference; tau vs a criterion: tau-b between each rated report's metric "
        "score and its rating; bootstrap over cases. 'clinical' is the severity-weighted "
        "finding score."
    ]
    return SignificanceTable(
        "metric_agreement", "Metric agreement with clinicians", data, display, notes
    )


def paper_table(analysis: StudyAnalysis) -> SignificanceTable:
    """One row per system: BT strength and rank, observed win rate, Likert means, harm."""
    bt = analysis.bt.table()
    data = bt.rename(columns={"bt": "bt", "ci_low": "bt_low", "ci_high": "bt_high"})
    rates = analysis.win_rates
    counts = analysis.win_counts
    pooled = (rates.fillna(0) * counts).sum(axis=1) / counts.sum(axis=1).replace(0, np.nan)
    data["win_rate"] = data["system"].map(pooled)
    display = pd.DataFrame(
        {
            "Rank": data["rank"].map(_rank_text),
            "System": data["system"],
            "BT [CI]": _cis(data["bt"], data["bt_low"], data["bt_high"]),
            "Win rate": data["win_rate"].map(fmt_number),
        }
    )
    means = analysis.likert_means
    for criterion in analysis.criteria:
        part = means[means["criterion"] == criterion] if not means.empty else means
        if part.empty:
            continue
        part = part.set_index("system")
        data[f"{criterion}_mean"] = data["system"].map(part["mean"])
        data[f"{criterion}_low"] = data["system"].map(part["ci_low"])
        data[f"{criterion}_high"] = data["system"].map(part["ci_high"])
        display[criterion.capitalize()] = _cis(
            data[f"{criterion}_mean"], data[f"{criterion}_low"], data[f"{criterion}_high"]
        )
    notes = ["Win rate: observed share of judgments won over all comparisons (ties count half)."]
    comparator = analysis.settings.comparator
    if not analysis.harm.empty and comparator is not None:
        harm = analysis.harm.set_index("system")
        key = analysis.harm_criterion or "harm"
        data[f"{key}_noninferior"] = data["system"].map(harm["non_inferior"])
        display[f"{key.replace('_', ' ').capitalize()} NI vs {comparator}"] = (
            data[f"{key}_noninferior"].map({True: "yes", False: "no"}).fillna("ref.")
        )
    return SignificanceTable("paper", "Reader study summary", data, display, notes)


def pairwise_tables(analysis: PairwiseAnalysis) -> list[SignificanceTable]:
    return [bt_table(analysis), pairwise_table(analysis), win_matrix_table(analysis)]


@dataclass(frozen=True)
class StudyTable:
    """One table of a study analysis: its name, the Analysis page tab that shows it, and
    its builder (None when the analysis has nothing for it)."""

    name: str
    tab: str
    build: Callable[[StudyAnalysis], SignificanceTable | None]


def _if_likert(
    build: Callable[[StudyAnalysis], SignificanceTable],
) -> Callable[[StudyAnalysis], SignificanceTable | None]:
    return lambda analysis: build(analysis) if not analysis.likert_means.empty else None


# The Analysis page's tabs, in order, and every study table in export order. A new reader
# statistic adds its table builder and one line here (it may compute from
# `analysis.judgments`); the page and the exports read this list.
TABS: tuple[str, ...] = ("Summary", "Bradley-Terry", "Pairwise", "Likert", "Agreement", "Metrics")
STUDY_TABLES: tuple[StudyTable, ...] = (
    StudyTable("paper", "Summary", paper_table),
    StudyTable("bradley_terry", "Bradley-Terry", bt_table),
    StudyTable("pairwise", "Pairwise", pairwise_table),
    StudyTable("win_matrix", "Bradley-Terry", win_matrix_table),
    StudyTable("likert_means", "Likert", _if_likert(likert_table)),
    StudyTable("likert_paired", "Likert", _if_likert(likert_paired_table)),
    StudyTable("likert_models", "Likert", _if_likert(models_table)),
    StudyTable("harm", "Likert", lambda a: harm_table(a) if not a.harm.empty else None),
    StudyTable("agreement", "Agreement", agreement_table),
    StudyTable("kappa_pairs", "Agreement", kappa_pairs_table),
    StudyTable("rater_quality", "Agreement", rater_quality_table),
    StudyTable("metric_agreement", "Metrics", metric_table),
)
# Plots (see `study_figures`) and the tab that shows them.
FIGURE_TABS: dict[str, str] = {
    "bt_estimates": "Bradley-Terry",
    "win_matrix": "Bradley-Terry",
    "likert_distribution": "Likert",
    "agreement": "Agreement",
    "metric_agreement": "Metrics",
}


def study_tables(analysis: StudyAnalysis) -> list[SignificanceTable]:
    tables = (entry.build(analysis) for entry in STUDY_TABLES)
    return [table for table in tables if table is not None]


def tab_of(name: str) -> str:
    """The Analysis page tab of a study table or plot."""
    entry = next((e for e in STUDY_TABLES if e.name == name), None)
    return entry.tab if entry is not None else FIGURE_TABS.get(name, TABS[0])


# --- rendering --------------------------------------------------------------------------


def as_table(table: SignificanceTable, provenance: Provenance) -> Table:
    """A significance table as the renderer's table: its notes, then the provenance footer."""
    frame = table.display
    return Table(
        headers=[str(c) for c in frame.columns],
        rows=[list(row) for row in frame.itertuples(index=False)],
        title=table.title,
        footer=[*table.notes, *footer_lines(provenance)],
        name=table.name,
        data=table.data,
        layout=PAPER,
    )


def render(table: SignificanceTable, provenance: Provenance, fmt: str) -> str:
    """One table in one of FORMATS (`studies.exports.render`)."""
    return render_table(as_table(table, provenance), fmt)


def render_csv(table: SignificanceTable, provenance: Provenance) -> str:
    return render(table, provenance, "csv")


def render_latex(table: SignificanceTable, provenance: Provenance) -> str:
    return render(table, provenance, "latex")


def render_markdown(table: SignificanceTable, provenance: Provenance) -> str:
    return render(table, provenance, "markdown")


def render_many(tables: list[SignificanceTable], provenance: Provenance, fmt: str) -> str:
    """Several tables in one document (blank-line separated; JSON: one list)."""
    if check_format(fmt) == "json":
        return json_text([table_document(as_table(t, provenance)) for t in tables])
    return "\n".join(render(t, provenance, fmt) for t in tables)


def _json_number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def pairwise_json(analysis: PairwiseAnalysis) -> dict[str, Any]:
    """The JSON form of a pairwise analysis: systems (system, bt, ci_low, ci_high, rank,
    component; null where there is no interval or rank) and the top-level warnings."""
    systems = [
        {
            "system": row.system,
            "bt": float(row.bt),
            "ci_low": _json_number(row.ci_low),
            "ci_high": _json_number(row.ci_high),
            "rank": None if pd.isna(row.rank) else int(row.rank),
            "component": int(row.component),
        }
        for row in analysis.bt.table().itertuples(index=False)
    ]
    comparisons = json.loads(analysis.pairwise.to_json(orient="records"))
    provenance = analysis.provenance
    return {
        "warnings": analysis.warnings,
        "systems": systems,
        "comparisons": comparisons,
        "tie_nu": analysis.bt.tie_nu,
        "style": {k: list(v) for k, v in analysis.bt.style.items()},
        "provenance": {
            "source": provenance.source,
            "n_cases": provenance.n_cases,
            "n_raters": provenance.n_raters,
            "n_judgments": provenance.n_judgments,
            "synthetic": provenance.synthetic,
            "synthetic_kind": provenance.synthetic_kind,
            "generated_at": provenance.generated_at,
            "version": provenance.version,
            "settings": provenance.settings,
            "research_use": RESEARCH_NOTICE,
        },
    }


# --- plots ------------------------------------------------------------------------------


def _figure(width: float, height: float):  # noqa: ANN202
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _stamp(fig, provenance: Provenance) -> None:  # noqa: ANN001
    label = "SYNTHETIC DATA · " if provenance.synthetic else ""
    fig.supxlabel(f"{label}{RESEARCH_NOTICE}", fontsize=7, color="0.4")


def plot_bt(analysis: PairwiseAnalysis):  # noqa: ANN201
    table = analysis.bt.table().iloc[::-1]
    fig = _figure(6, 0.5 * len(table) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(table))
    ax.errorbar(
        table["bt"],
        y,
        # No interval (NaN) draws no bar.
        xerr=[
            (table["bt"] - table["ci_low"]).fillna(0.0),
            (table["ci_high"] - table["bt"]).fillna(0.0),
        ],
        fmt="o",
        capsize=4,
        color="tab:blue",
    )
    ax.set_yticks(
        y,
        [f"{s} (#{_rank_text(r)})" for s, r in zip(table["system"], table["rank"], strict=True)],
    )
    ax.axvline(0.0, color="0.7", linewidth=0.8)
    level = int(round(100 * analysis.settings.level))
    method = "sandwich" if analysis.bt.interval == "sandwich" else "bootstrap"
    ax.set_xlabel(f"Bradley-Terry strength (log scale), {level}% {method} CI")
    ax.set_title("Bradley-Terry strengths (#: CI-aware rank, shared where intervals overlap)")
    _stamp(fig, analysis.provenance)
    return fig


def plot_win_matrix(analysis: PairwiseAnalysis):  # noqa: ANN201
    rates = analysis.win_rates
    n = len(rates)
    fig = _figure(1.0 * n + 2.5, 0.9 * n + 1.8)
    ax = fig.add_subplot()
    image = ax.imshow(rates.to_numpy(dtype=float), vmin=0, vmax=1, cmap="RdBu")
    for i in range(n):
        for j in range(n):
            value = rates.iat[i, j]
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(n), rates.columns, rotation=30, ha="right")
    ax.set_yticks(range(n), rates.index)
    ax.set_title("Win rate (row beats column)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    _stamp(fig, analysis.provenance)
    return fig


def plot_likert(analysis: StudyAnalysis):  # noqa: ANN201
    distribution = analysis.likert_distribution
    criteria = list(dict.fromkeys(distribution.index.get_level_values(0)))
    fig = _figure(
        4 * max(1, len(criteria)), 0.5 * distribution.index.get_level_values(1).nunique() + 2
    )
    colours = ["#b2182b", "#ef8a62", "#d9d9d9", "#67a9cf", "#2166ac"]
    for k, criterion in enumerate(criteria):
        ax = fig.add_subplot(1, len(criteria), k + 1)
        part = distribution.loc[criterion]
        left = np.zeros(len(part))
        for score, colour in zip(part.columns, colours, strict=True):
            ax.barh(part.index, part[score], left=left, color=colour, label=score)
            left += part[score].to_numpy()
        ax.set_xlim(0, 1)
        ax.set_title(criterion)
        ax.set_xlabel("share of ratings", fontsize=8)
        if k:
            ax.set_yticks([])
    # Below the panels, so that no bar is covered.
    handles, labels = fig.axes[-1].get_legend_handles_labels()
    fig.legend(handles, labels, title="score", fontsize=7, ncols=5, loc="outside upper center")
    _stamp(fig, analysis.provenance)
    return fig


def plot_agreement(analysis: StudyAnalysis):  # noqa: ANN201
    table = analysis.agreement.dropna(subset=["value"])
    fig = _figure(6.5, 0.45 * len(table) + 1.5)
    ax = fig.add_subplot()
    labels = [f"{m} – {r}" for m, r in zip(table["measure"], table["ratings"], strict=True)]
    y = np.arange(len(table))[::-1]
    low = (table["value"] - table["ci_low"]).fillna(0).clip(lower=0)
    high = (table["ci_high"] - table["value"]).fillna(0).clip(lower=0)
    ax.errorbar(table["value"], y, xerr=[low, high], fmt="s", capsize=4, color="tab:green")
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0.0, color="0.7", linewidth=0.8)
    ax.set_xlim(-0.5, 1.0)
    ax.set_title("Inter-rater agreement")
    _stamp(fig, analysis.provenance)
    return fig


def plot_metric_agreement(analysis: StudyAnalysis):  # noqa: ANN201
    """Each metric against the readers: agreement with their preferences and Kendall's
    tau-b, with the bootstrap intervals of the metric-agreement table."""
    table = analysis.metrics
    fig = _figure(8, 0.45 * len(table) + 1.6)
    y = np.arange(len(table))[::-1]
    panels = (
        ("agreement", "agreement_low", "agreement_high", "agreement with preferences", 0.5),
        ("kendall_tau", "tau_low", "tau_high", "Kendall's tau-b with preferences", 0.0),
    )
    for k, (value, low, high, title, null) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        below = (table[value] - table[low]).fillna(0).clip(lower=0)
        above = (table[high] - table[value]).fillna(0).clip(lower=0)
        ax.errorbar(table[value], y, xerr=[below, above], fmt="D", capsize=4, color="tab:purple")
        ax.axvline(null, color="0.6", linewidth=0.8, linestyle="--")
        ax.set_yticks(y, list(table["metric"]) if k == 0 else [""] * len(table), fontsize=8)
        ax.set_title(title, fontsize=10)
    level = int(round(100 * analysis.settings.level))
    fig.suptitle(f"Metrics against clinicians ({level}% bootstrap CI over cases)", fontsize=10)
    _stamp(fig, analysis.provenance)
    return fig


def study_figures(analysis: PairwiseAnalysis) -> dict[str, Any]:
    figures = {"bt_estimates": plot_bt(analysis), "win_matrix": plot_win_matrix(analysis)}
    if isinstance(analysis, StudyAnalysis):
        if not analysis.likert_distribution.empty:
            figures["likert_distribution"] = plot_likert(analysis)
        if not analysis.agreement.dropna(subset=["value"]).empty:
            figures["agreement"] = plot_agreement(analysis)
        if analysis.metrics is not None and not analysis.metrics.empty:
            figures["metric_agreement"] = plot_metric_agreement(analysis)
    return figures


# --- writing ----------------------------------------------------------------------------


def write_study_outputs(
    analysis: PairwiseAnalysis,
    out_dir: str | Path,
    *,
    formats: tuple[str, ...] = FORMATS,
    plots: bool = True,
) -> list[Path]:
    """Write every table in every format, the combined tables, plots and a manifest.

    The JSON format is the whole analysis in one file, analysis.json (`study_json`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(analysis, StudyAnalysis):
        tables = study_tables(analysis)
    else:
        tables = pairwise_tables(analysis)
    written: list[Path] = []
    for fmt in formats:
        if check_format(fmt) == "json":
            path = out / "analysis.json"
            path.write_text(json_text(study_json(analysis)), encoding="utf-8")
            written.append(path)
            continue
        for table in tables:
            path = out / f"{table.name}.{EXTENSIONS[fmt]}"
            path.write_text(render(table, analysis.provenance, fmt), encoding="utf-8")
            written.append(path)
        if fmt != "csv":
            path = out / f"all_tables.{EXTENSIONS[fmt]}"
            path.write_text(render_many(tables, analysis.provenance, fmt), encoding="utf-8")
            written.append(path)
    if plots:
        from studies.exports.figures import write_figures

        # PNG at 300 dpi, SVG and PDF (studies.exports.figures).
        written += write_figures(study_figures(analysis), out)
    manifest = {
        "tables": [t.name for t in tables],
        "files": sorted(p.name for p in written),
        "provenance": pairwise_json(analysis)["provenance"],
        "notes": getattr(analysis, "notes", []),
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    written.append(path)
    return written


def study_json(analysis: PairwiseAnalysis) -> dict[str, Any]:
    """Every table's raw numbers as records, with the systems list and the provenance."""
    document = pairwise_json(analysis)
    tables = study_tables(analysis) if isinstance(analysis, StudyAnalysis) else []
    document["tables"] = {
        table.name: json.loads(table.data.to_json(orient="records"))
        for table in tables or pairwise_tables(analysis)
    }
    document["notes"] = getattr(analysis, "notes", [])
    return document


def export_zip(analysis: PairwiseAnalysis, *, plots: bool = True) -> bytes:
    """Every table (CSV, LaTeX, Markdown), analysis.json, the plots and the manifest as one zip."""
    import io
    import tempfile
    import zipfile

    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as folder:
        written = write_study_outputs(analysis, folder, plots=plots)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in written:
                archive.write(path, arcname=path.name)
    return buffer.getvalue()
