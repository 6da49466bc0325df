"""Benchmarks: browse cases with their media and references; filter by split and finding."""

from __future__ import annotations

import json

import streamlit as st

from studies.catalog import benchmark_summaries, finding_options, list_cases
from workbench import access
from workbench.ui import disclaimer, show_media, store, synthetic_badge

PAGE_SIZE = 10

st.title("Benchmarks")
# Also when the page is opened by its own URL, before app.py's navigation applies.
access.require_role("admin")
disclaimer()
workbench_store = store()
summaries = {summary.name: summary for summary in benchmark_summaries(workbench_store)}
if not summaries:
    st.info("No benchmark imported yet: run `medvision benchmarks import LOADER FOLDER`.")
    st.stop()

name = st.selectbox("Benchmark", list(summaries), key="benchmark")
summary = summaries[name]
synthetic_badge(summary.synthetic)
st.caption(
    f"Loader `{summary.loader}` · task {summary.task} · {summary.n_cases} cases · "
    f"root `{summary.root}`"
)
if summary.description:
    st.caption(summary.description)

left, middle, right = st.columns(3)
split = left.selectbox("Split", ["all", *summary.splits], key="split")
finding = middle.selectbox("Finding", ["any", *finding_options(workbench_store, name)])
cases = list_cases(
    workbench_store,
    name,
    split=None if split == "all" else split,
    finding=None if finding == "any" else finding,
)
pages = max(1, -(-len(cases) // PAGE_SIZE))
page = right.number_input("Page", min_value=1, max_value=pages, value=1, step=1)
st.caption(f"{len(cases)} matching cases · page {page} of {pages}, {PAGE_SIZE} per page")

for case in cases[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]:
    with st.container(border=True):
        st.markdown(f"**{case.case_key}** · {case.split} · {case.modality}")
        media_column, text_column = st.columns([2, 3])
        with media_column:
            missing = [path for path in case.media if not path.exists()]
            if missing:
                st.error(f"Missing media: {', '.join(p.name for p in missing)}")
            else:
                show_media(case.media, case.modality)
        with text_column:
            if case.question:
                st.markdown(f"**Question:** {case.question}")
            for index, reference in enumerate(case.references, start=1):
                label = "Reference" if len(case.references) == 1 else f"Reference {index}"
                st.markdown(f"**{label}:** {reference}")
            if case.findings:
                with st.expander("Structured findings"):
                    st.code(json.dumps(case.findings, indent=2), language="json")
