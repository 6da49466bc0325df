"""Leaderboard: metrics with 95% CIs, differences to a baseline, plots, case drill-down."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from metrics.bertscore import BertScoreConfig
from metrics.clinical.scoring import LEVEL_LABELS
from metrics.registry import column_label
from metrics.significance import CORRECTIONS, FAMILIES
from model.kinds import kinds_where
from studies.exports.figures import FIGURE_FORMATS, figure_bytes
from studies.leaderboard.build import (
    CEILING_KINDS,
    LeaderboardConfig,
    LeaderboardError,
    build_leaderboard,
    case_detail,
    default_metrics,
    finding_rows,
    leaderboard_choices,
    metric_choices,
)
from studies.leaderboard.figures import leaderboard_figures
from studies.leaderboard.tables import export_leaderboard
from studies.systems.registry import list_systems
from workbench import access
from workbench.ui import disclaimer, store, synthetic_badge

RESULT_KEY = "leaderboard_result"
EXPORTS_KEY = "leaderboard_exports"
# Kinds that make a natural baseline; the `reference` system copies the reference reports, so
# comparing against it only measures the distance to a perfect score.
BASELINE_KINDS = kinds_where(learns_from_train=True)
NUMBER = st.column_config.NumberColumn(format="%.4f")
NUMERIC = ("Score", "CI low", "CI high", "Diff. vs baseline", "Diff. CI low", "Diff. CI high")
FIGURES_KEY = "leaderboard_figures"
# (format, table) -> button label, MIME type, file suffix: the paper table (systems x
# metrics) in three formats, the long table as CSV, the whole board as JSON.
DOWNLOADS = {
    ("latex", "paper"): ("Paper table (LaTeX)", "text/x-tex", "tex"),
    ("markdown", "paper"): ("Paper table (Markdown)", "text/markdown", "md"),
    ("csv", "paper"): ("Paper table (CSV)", "text/csv", "csv"),
    ("csv", "long"): ("Long table (CSV)", "text/csv", "long.csv"),
    ("json", "paper"): ("JSON", "application/json", "json"),
}


def clinical_parts_table(clinical: dict, scores: dict) -> pd.DataFrame:
    """Detection, description and surveillance on this case beside the system's corpus
    score and 95% CI for each clinical column."""
    detection, description = clinical["detection"], clinical["description"]
    agree = clinical["surveillance"]["agree"]
    this_case = {
        "clinical": clinical["score"],
        "lesion-precision": detection["precision"],
        "lesion-recall": detection["recall"],
        "lesion-F1": detection["f1"],
        "attribute-accuracy": description["accuracy"],
        "surveillance-agreement": None if agree is None else float(agree),
    }
    rows = []
    for column, interval in clinical["corpus"].items():
        value = this_case.get(column, scores.get(column))
        value = None if value is None or value != value else value  # NaN: nothing counted
        rows.append(
            {
                "Clinical score": column,
                "This case": "n/a" if value is None else f"{value:.3f}",
                "All cases [95% CI]": f"{interval['estimate']:.3f} "
                f"[{interval['low']:.3f}, {interval['high']:.3f}]",
            }
        )
    return pd.DataFrame(rows)


def lesion_table(where, findings: dict | None) -> None:  # noqa: ANN001
    """The lesions of a findings dict as a table, or a line saying there are none."""
    rows = finding_rows(findings)
    if rows:
        where.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        where.caption("No lesions (no polyp found).")


st.title("Leaderboard")
# Also when the page is opened by its own URL, before app.py's navigation applies.
access.require_role("admin")
disclaimer()
workbench_store = store()
choices = leaderboard_choices(workbench_store)
usable = {name: c for name, c in choices.items() if c["systems"] and c["splits"]}

if not usable:
    st.info("No benchmark has generations yet: import a benchmark and run systems on it first.")
else:
    name = st.selectbox("Benchmark", list(usable), key="lb_benchmark")
    choice = usable[name]
    left, right = st.columns(2)
    splits = choice["splits"]
    split = left.selectbox(
        "Split", splits, index=splits.index("test") if "test" in splits else 0, key="lb_split"
    )
    kinds = {s.name: s.kind for s in list_systems(workbench_store)}
    # Systems that copy the references are a ceiling, added only with the option below.
    ceilings = [n for n in choice["systems"] if kinds.get(n) in CEILING_KINDS]
    contenders = [n for n in choice["systems"] if n not in ceilings]
    systems = left.multiselect("Systems", contenders, contenders, key="lb_systems")
    candidates = systems or contenders
    preferred = [n for n in candidates if kinds.get(n) in BASELINE_KINDS] or [
        n for n in candidates if kinds.get(n) != "reference"
    ]
    baseline = right.selectbox(
        "Baseline",
        candidates,
        index=candidates.index(preferred[0]) if preferred else 0,
        key="lb_baseline",
        help="Differences and p-values are against this system (default: a template or "
        "retrieval baseline, never the copied reference reports).",
    )
    metrics = right.multiselect(
        "Metrics", list(metric_choices()), list(default_metrics()), key="lb_metrics"
    )
    with st.expander("Resampling", expanded=False):
        a, b, c, d = st.columns(4)
        n_resamples = a.number_input("Bootstrap resamples", 10, 100000, 1000, key="lb_resamples")
        n_permutations = b.number_input("Permutations", 10, 100000, 1000, key="lb_permutations")
        seed = c.number_input("Seed", 0, 2**31 - 1, 0, key="lb_seed")
        correction = d.selectbox("Correction", list(CORRECTIONS), key="lb_correction")
        g, h = st.columns(2)
        family = g.selectbox(
            "Correction family",
            list(FAMILIES),
            format_func=lambda name: f"{name}: {FAMILIES[name]}",
            key="lb_family",
        )
        include_reference = h.checkbox(
            "Include systems that copy the reference reports (a ceiling row, outside the "
            "correction family)",
            False,
            key="lb_include_reference",
        )
        e, f = st.columns([3, 1])
        bert_model = e.text_input(
            "BERTScore model (blank: roberta-large; a local folder needs its layer count)",
            "",
            key="lb_bert_model",
        )
        bert_layers = f.number_input(
            "BERTScore layers (0: default)", 0, 48, 0, key="lb_bert_layers"
        )
    if st.button("Build leaderboard", type="primary", key="lb_run", disabled=not systems):
        bar = st.progress(0.0, text="loading")
        try:
            board = build_leaderboard(
                workbench_store,
                LeaderboardConfig(
                    benchmark=name,
                    baseline=baseline,
                    split=split,
                    systems=systems + (ceilings if include_reference else []),
                    metrics=metrics,
                    n_resamples=int(n_resamples),
                    n_permutations=int(n_permutations),
                    seed=int(seed),
                    correction=correction,
                    family=family,
                    include_reference=include_reference,
                    bertscore=BertScoreConfig(
                        model=bert_model.strip() or None, num_layers=int(bert_layers) or None
                    ),
                ),
                progress=lambda message, fraction: bar.progress(min(fraction, 1.0), text=message),
            )
        except LeaderboardError as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(str(exc))
        else:
            st.session_state[RESULT_KEY] = board
            # Built once per leaderboard, not on every rerun of the page.
            st.session_state[EXPORTS_KEY] = {
                (fmt, kind): export_leaderboard(board, fmt, kind) for fmt, kind in DOWNLOADS
            }
            st.session_state[FIGURES_KEY] = leaderboard_figures(board)
        bar.empty()

board = st.session_state.get(RESULT_KEY)
if board is not None:
    synthetic_badge(board.synthetic)
    st.subheader(f"{board.benchmark} ({board.split}), {board.n_cases} cases")
    table = pd.DataFrame(
        [
            {
                "Metric": column_label(r.metric),
                "System": r.system,
                "Score": r.estimate,
                "CI low": r.low,
                "CI high": r.high,
                "Diff. vs baseline": r.diff,
                "Diff. CI low": r.diff_low,
                "Diff. CI high": r.diff_high,
                f"p ({board.settings.correction})": r.p_corrected,
                "Sig.": r.mark,
            }
            for r in board.rows
        ]
    )
    # Click a column header to sort.
    p_column = f"p ({board.settings.correction})"
    st.dataframe(
        table,
        hide_index=True,
        key="lb_table",
        column_config={**dict.fromkeys(NUMERIC, NUMBER), p_column: NUMBER},
    )
    st.caption("Differences are to the baseline; its own row has none.")
    plot_metric = st.selectbox(
        "Plot", board.metrics, format_func=column_label, key="lb_plot_metric"
    )
    data = table[table["Metric"] == column_label(plot_metric)]
    base = alt.Chart(data).encode(y=alt.Y("System:N", sort="-x"))
    chart = base.mark_rule().encode(
        x=alt.X("CI low:Q", title=f"{column_label(plot_metric)} (95% CI)"), x2="CI high:Q"
    ) + base.mark_point(filled=True, size=60).encode(
        x="Score:Q", tooltip=["System", "Score", "CI low", "CI high", "Sig."]
    )
    st.altair_chart(chart, width="stretch")
    with st.expander("How these numbers were made", expanded=False):
        for line in board.footer():
            st.caption(line)
    exports = st.session_state.get(EXPORTS_KEY) or {}
    columns = st.columns(len(DOWNLOADS))
    stem = f"leaderboard-{board.benchmark}-{board.split}"
    for column, (key, (label, mime, ext)) in zip(columns, DOWNLOADS.items(), strict=True):
        fmt, kind = key
        column.download_button(
            label,
            exports[key] if key in exports else export_leaderboard(board, fmt, kind),
            file_name=f"{stem}.{ext}",
            mime=mime,
            key=f"lb_download_{fmt}_{kind}",
        )
    figures = st.session_state.get(FIGURES_KEY)
    if figures is None:
        figures = st.session_state[FIGURES_KEY] = leaderboard_figures(board)
    for name, figure in figures.items():
        st.markdown("**Differences to the baseline**")
        st.pyplot(figure, clear_figure=False)
        for column, fmt in zip(st.columns(len(FIGURE_FORMATS)), FIGURE_FORMATS, strict=True):
            column.download_button(
                f"{fmt.upper()}" + (" (300 dpi)" if fmt == "png" else ""),
                figure_bytes(figure, fmt),
                file_name=f"{stem}-{name}.{fmt}",
                mime=FIGURE_FORMATS[fmt],
                key=f"lb_figure_{name}_{fmt}",
            )

    st.subheader("One case")
    case_key = st.selectbox("Case", [c.case_key for c in board.cases], key="lb_case")
    detail = case_detail(board, case_key)
    pick_left, pick_right = st.columns(2)
    # Baseline on the left, the first other system on the right.
    left_index = board.systems.index(board.baseline) if board.baseline in board.systems else 0
    others = [i for i in range(len(board.systems)) if i != left_index] or [left_index]
    shown = [
        pick_left.selectbox("Left", board.systems, index=left_index, key="lb_left"),
        pick_right.selectbox("Right", board.systems, index=others[0], key="lb_right"),
    ]
    st.markdown("**Reference**")
    for reference in detail["references"]:
        st.text(reference)
    if detail["truth_findings"] is not None:
        st.caption(f"Findings truth: {detail['truth_source']}")
        lesion_table(st, detail["truth_findings"])
    for column, system in zip(st.columns(2), shown, strict=True):
        info = detail["systems"][system]
        column.markdown(f"**{system}**")
        column.text(info["text"])
        column.caption(" · ".join(f"{m} {v:.3f}" for m, v in info["scores"].items() if v == v))
        if info["findings"] is not None:
            lesion_table(column, info["findings"])
        clinical = info.get("clinical")
        if clinical is not None:
            column.dataframe(clinical_parts_table(clinical, info["scores"]), hide_index=True)
            column.caption(
                f"USMSTF 2020 interval from this report: {clinical['surveillance']['report']}; "
                f"from the reference: {clinical['surveillance']['reference']}"
            )
        if not info["errors"] and info["findings"] is not None:
            column.success("No finding differences.")
        for error in info["errors"]:
            kind = error["kind"].replace("_", " ")
            expected, found = error["expected"], error["found"]
            detail_text = f"{kind}: expected {expected!r}, found {found!r}"
            if error["kind"] == "negation_error":
                detail_text = (
                    "negation error: the reference says no polyps, the report describes one"
                    if expected
                    else "negation error: the report says no polyps, the reference describes one"
                )
            if error["kind"] in ("hallucinated_lesion", "missed_lesion"):
                index = error["candidate_lesion"]
                if index is None:
                    index = error["reference_lesion"]
                detail_text = f"{kind} (lesion {index + 1})"
            if error["kind"] == "no_assertion":
                detail_text = "no assertion: the report states nothing about polyps (scores 0)"
            level = error.get("level", "minor")
            why = f" ({LEVEL_LABELS[level]}: {error['source']})" if error.get("source") else ""
            if error["significant"]:
                column.markdown(f":red-background[{detail_text}]{why}")
            else:
                column.markdown(f":orange-background[{detail_text}] (minor)")
