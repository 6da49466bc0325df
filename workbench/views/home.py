"""Home: what this workbench holds, where, and on which device."""

from __future__ import annotations

import streamlit as st

from model.notice import RESEARCH_WARNING
from studies.store.settings import get_settings
from studies.systems.catalog import benchmark_summaries, store_counts, system_names
from workbench.access import current_role
from workbench.environment import describe_database, describe_device
from workbench.ui import plain_text, store

settings = get_settings()
st.title("Med-Vision Workbench")
st.error(RESEARCH_WARNING, icon=":material/medical_information:")
st.markdown(
    "Evaluate AI-written colonoscopy reports against baselines, score them with text and "
    "clinical-finding metrics, run blinded reader studies with gastroenterologists, and turn "
    "their judgments into significance tables and DPO preference data."
)

role = current_role()
if role != "admin":
    # Raters and visitors see no system, benchmark or run details: blinding starts here.
    if role == "rater":
        st.page_link(
            "views/rate.py", label="Go to your reports to rate", icon=":material/rate_review:"
        )
    else:
        st.info("Log in to rate reports or to manage benchmarks, systems and studies.")
    st.stop()

workbench_store = store()
counts = store_counts(workbench_store)
device = describe_device(settings.device)
left, right = st.columns(2)
left.metric("Benchmarks", counts["benchmarks"])
left.metric("Cases", counts["cases"])
right.metric("Systems", counts["systems"])
right.metric("Generated reports", counts["generations"])

st.subheader("Set-up")
st.markdown(
    f"- **Database:** {describe_database(settings.url)}\n"
    f"- **Device:** {device.device} ({device.detail})\n"
    f"- **Data folder:** `{settings.data_dir}`\n"
    f"- **Default model:** `{settings.model}`"
)

st.subheader("Benchmarks")
summaries = benchmark_summaries(workbench_store)
if not summaries:
    st.info("No benchmark imported yet: run `medvision benchmarks import LOADER FOLDER`.")
lines = []
for summary in summaries:
    tag = " · SYNTHETIC" if summary.synthetic else ""
    splits = ", ".join(f"{k}: {v}" for k, v in summary.splits.items())
    lines.append(f"• {summary.name} ({summary.task}, {splits}){tag}")
if lines:
    plain_text("\n".join(lines), key="home-benchmarks")

st.subheader("Systems")
names = system_names(workbench_store)
plain_text(
    "\n".join(f"• {name}" for name in names) or "No system registered yet.", key="home-systems"
)
