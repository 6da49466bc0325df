"""Case: one case with its media and references, and every system's report side by side."""

from __future__ import annotations

import streamlit as st

from studies.systems.catalog import benchmark_summaries, list_cases
from studies.systems.registry import list_systems
from studies.systems.runs import case_outputs
from workbench import access
from workbench.ui import disclaimer, show_case, store, synthetic_badge

COLUMNS = 3

st.title("Case")
access.require_role("admin")
disclaimer()
workbench_store = store()
summaries = {summary.name: summary for summary in benchmark_summaries(workbench_store)}
if not summaries:
    st.info("No benchmark imported yet: run `medvision benchmarks import LOADER FOLDER`.")
    st.stop()

left, middle, right = st.columns([2, 1, 3])
name = left.selectbox("Benchmark", list(summaries), key="case_benchmark")
summary = summaries[name]
splits = list(summary.splits)
split = middle.selectbox(
    "Split", splits, index=splits.index("test") if "test" in splits else 0, key="case_split"
)
cases = list_cases(workbench_store, name, split=split)
if not cases:
    st.info(f"{name} has no {split} cases.")
    st.stop()
by_key = {case.case_key: case for case in cases}
key = right.selectbox("Case", list(by_key), key="case_key")
case = by_key[key]
synthetic_badge(summary.synthetic)

show_case(case, findings=False)

st.subheader("System outputs")
outputs = case_outputs(workbench_store, case.id)
if not outputs:
    st.info("No system has reported on this case yet: start a run on the Run page.")
    st.stop()
descriptions = {s.name: s.description for s in list_systems(workbench_store)}
for start in range(0, len(outputs), COLUMNS):
    columns = st.columns(COLUMNS)
    for column, output in zip(columns, outputs[start : start + COLUMNS], strict=False):
        with column.container(border=True):
            st.markdown(f"**{output.system}** · {output.kind}")
            # What the system is (e.g. a random-weight demo model) before judging its text.
            if descriptions.get(output.system):
                st.caption(descriptions[output.system])
            st.text(output.text)
            details = [output.device or "?"]
            if output.latency_s is not None:
                details.append(f"{output.latency_s:.2f} s")
            if output.output_tokens is not None:
                details.append(f"{output.output_tokens} tokens")
            st.caption(" · ".join(details))
            if not output.current:
                st.caption(
                    ":material/history: made by an earlier definition of this system; "
                    "rerun it to refresh"
                )
