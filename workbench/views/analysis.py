"""Analysis: reader statistics and significance tables for a study or a judgments file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from metrics.significance import CORRECTIONS
from studies.exports.figures import FIGURE_FORMATS, figure_bytes
from studies.exports.names import file_slug
from studies.exports.synthetic import UNSTATED, synthetic_line
from studies.reader_stats import tables as reader_tables
from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.bradley_terry import CLUSTERS, INTERVALS
from studies.reader_stats.data import JudgmentsError, load_judgments_file
from studies.readers.judgments import study_judgments, study_names
from workbench import access
from workbench.ui import disclaimer, store

RESULT_KEY = "analysis_result"
SOURCES = ("A study", "A judgments file")

st.title("Analysis")
# Also when the page is opened by its own URL, before app.py's navigation applies.
access.require_role("admin")
disclaimer()
workbench_store = store()

source = st.radio("Judgments from", SOURCES, horizontal=True, key="analysis_source")
judgments: pd.DataFrame | None = None
label = ""
if source == SOURCES[0]:
    names = study_names(workbench_store)
    if not names:
        st.info(
            "No reader study yet: design one on the Reader studies page, or upload a "
            "judgments file."
        )
    else:
        label = st.selectbox("Study", names, key="analysis_study")
else:
    upload = st.file_uploader(
        "Judgments (.csv or .jsonl: rater, case, system_a, system_b, winner)",
        type=["csv", "jsonl"],
        key="analysis_file",
    )
    if upload is not None:
        label = upload.name

with st.expander("Settings", expanded=False):
    left, middle, right = st.columns(3)
    n_resamples = left.number_input(
        "Bootstrap resamples", 0, 20000, 1000, step=100, key="analysis_resamples"
    )
    seed = left.number_input("Seed", 0, 2**31 - 1, 0, key="analysis_seed")
    level = left.selectbox("Interval level", [0.95, 0.9, 0.99], key="analysis_level")
    # Defaults first: two-way (case and rater) clustering, the cluster-robust sandwich.
    cluster = middle.selectbox("Bradley-Terry clusters", list(CLUSTERS), key="analysis_cluster")
    interval = middle.selectbox("Bradley-Terry interval", list(INTERVALS), key="analysis_interval")
    tie_model = middle.selectbox("Ties in Bradley-Terry", ["half", "davidson"], key="analysis_ties")
    both_bad = middle.selectbox("'Both unacceptable'", ["tie", "drop"], key="analysis_both_bad")
    correction = right.selectbox("Correction", list(CORRECTIONS), key="analysis_correction")
    comparator = right.text_input(
        "Comparator system (blank: every pair)", "", key="analysis_comparator"
    )
    margin = right.number_input(
        "Harm non-inferiority margin", 0.05, 4.0, 0.5, step=0.05, key="analysis_margin"
    )
    style = st.checkbox("Control for report length (style control)", key="analysis_style")
    metrics_upload = st.file_uploader(
        "Per-case metric table (optional .csv: case, system, metric columns)",
        type=["csv"],
        key="analysis_metrics",
    )

if st.button("Analyse", type="primary", disabled=not label, key="analysis_run"):
    settings = AnalysisSettings(
        n_resamples=int(n_resamples),
        seed=int(seed),
        level=float(level),
        cluster=cluster,
        interval=interval,
        tie_model=tie_model,
        both_bad=both_bad,
        correction=correction,
        comparator=comparator.strip() or None,
        margin=float(margin),
        style=style,
    )
    try:
        if source == SOURCES[0]:
            judgments = study_judgments(workbench_store, label)
        else:
            suffix = Path(label).suffix
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"judgments{suffix}"
                path.write_bytes(upload.getvalue())
                judgments = load_judgments_file(path)
            judgments.attrs["source"] = label
        metric_table = pd.read_csv(metrics_upload) if metrics_upload is not None else None
        with st.spinner(f"Fitting models and {settings.n_resamples} bootstrap resamples..."):
            analysis = analyze_study(judgments, settings, metric_table=metric_table)
            archive = reader_tables.export_zip(analysis)
        st.session_state[RESULT_KEY] = (label, analysis, archive)
    except (JudgmentsError, ValueError) as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(str(exc))
    except pd.errors.ParserError as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(f"The metric table is not a readable CSV file: {exc}")

result = st.session_state.get(RESULT_KEY)
if result is not None:
    label, analysis, archive = result
    provenance = analysis.provenance
    if provenance.synthetic:
        st.warning(synthetic_line(provenance.synthetic_kind or UNSTATED))
    st.subheader(label)
    st.caption(" ".join(reader_tables.footer_lines(provenance)))
    for warning in analysis.warnings:
        st.warning(warning, icon=":material/warning:")
    for note in analysis.notes:
        if note not in analysis.warnings:
            st.caption(f":material/warning: {note}")
    tables = {table.name: table for table in reader_tables.study_tables(analysis)}
    figures = reader_tables.study_figures(analysis)
    # Tabs and their tables come from the one table registry; criteria from the form.
    tabs = st.tabs(list(reader_tables.TABS))
    for tab, title in zip(tabs, reader_tables.TABS, strict=True):
        with tab:
            shown = False
            if title == "Likert" and analysis.criteria:
                named = ", ".join(
                    analysis.criterion_labels.get(key, key)
                    + (" (harm)" if key == analysis.harm_criterion else "")
                    for key in analysis.criteria
                )
                st.caption(f"Criteria: {named}.")
            for name, table in tables.items():
                if reader_tables.tab_of(name) != title:
                    continue
                shown = True
                st.markdown(f"**{table.title}**")
                st.dataframe(table.display, hide_index=True, width="stretch")
                for note in table.notes:
                    st.caption(note)
            for name, figure in figures.items():
                if reader_tables.tab_of(name) == title:
                    shown = True
                    st.pyplot(figure, clear_figure=False)
                    # Print quality: PNG at 300 dpi, SVG, PDF (studies/exports/figures.py).
                    buttons = st.columns(len(FIGURE_FORMATS))
                    for button, fmt in zip(buttons, FIGURE_FORMATS, strict=True):
                        button.download_button(
                            fmt.upper() + (" (300 dpi)" if fmt == "png" else ""),
                            figure_bytes(figure, fmt),
                            file_name=file_slug(
                                f"{label.rsplit('.', 1)[0]}_{name}.{fmt}", default="figure"
                            ),
                            mime=FIGURE_FORMATS[fmt],
                            key=f"analysis_figure_{name}_{fmt}",
                        )
            if not shown:
                st.caption("Nothing to show for these judgments.")
    # Multi-reader multi-case inference: conclusions for new readers and new cases.
    with st.expander("MRMC: Obuchowski-Rockette, random readers and cases", expanded=False):
        from studies.reader_stats.mrmc import result_tables, study_mrmc

        if not analysis.settings.comparator:
            st.caption("Set a comparator system in Settings for the win rate against it.")
        for title, found in study_mrmc(
            analysis.judgments, analysis.settings.comparator, analysis.criteria
        ):
            st.markdown(f"**{title}**")
            if isinstance(found, str):
                st.caption(f":material/block: {found}")
                continue
            for table in result_tables(found)[:2]:
                shown = pd.DataFrame(list(table.rows), columns=list(table.headers))
                st.dataframe(shown, hide_index=True, width="stretch")
            st.caption(" ".join(table.footer))
    stem = file_slug(label.rsplit(".", 1)[0], default="analysis")
    left, middle, right = st.columns(3)
    left.download_button(
        "All tables and plots (.zip)",
        archive,
        file_name=f"{stem}_reader_statistics.zip",
        mime="application/zip",
        key="analysis_download_zip",
    )
    ordered = list(tables.values())
    middle.download_button(
        "Tables (LaTeX)",
        reader_tables.render_many(ordered, provenance, "latex"),
        file_name=f"{stem}_tables.tex",
        key="analysis_download_latex",
    )
    right.download_button(
        "Tables (Markdown)",
        reader_tables.render_many(ordered, provenance, "markdown"),
        file_name=f"{stem}_tables.md",
        key="analysis_download_markdown",
    )
