"""Benchmarks: browse cases with their media and references; filter by split and finding."""

from __future__ import annotations

import streamlit as st

from studies.systems.catalog import benchmark_summaries, finding_options, list_cases
from workbench import access
from workbench.ui import disclaimer, show_case, store, synthetic_badge

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
        show_case(case)
