"""Run: pick a benchmark and systems, generate what the cache lacks, with progress and cancel."""

from __future__ import annotations

import streamlit as st

from studies.benchmarks.base import SPLITS
from studies.systems.catalog import benchmark_summaries
from studies.systems.registry import list_systems
from studies.systems.runs import RunError, RunJob, list_runs, start_run_job
from workbench import access
from workbench.ui import disclaimer, store, synthetic_badge

JOB_KEY = "run_job"

st.title("Run systems")
access.require_role("admin")
disclaimer()
workbench_store = store()
summaries = {summary.name: summary for summary in benchmark_summaries(workbench_store)}
systems = list_systems(workbench_store)
if not summaries:
    st.info("No benchmark imported yet: run `medvision benchmarks import LOADER FOLDER`.")
    st.stop()
if not systems:
    st.info("No system registered yet: run `medvision systems add NAME --kind ...`.")
    st.stop()

job: RunJob | None = st.session_state.get(JOB_KEY)


@st.fragment(run_every=1.0)
def show_progress(job: RunJob) -> None:
    """Polls the background job; a full rerun shows the results once it has finished."""
    if job.finished:
        st.rerun(scope="app")
    position = job.systems.index(job.current) + 1 if job.current in job.systems else 1
    fraction = job.done / job.total if job.total else 0.0
    st.progress(
        fraction,
        text=f"System {position}/{len(job.systems)}: {job.current or 'starting'} on "
        f"{job.benchmark}/{job.split}: {job.done}/{job.total or '?'} cases",
    )
    if job.cancelled:
        st.caption("Cancelling after the chunk in flight; finished chunks stay cached.")


if job is not None and not job.finished:
    show_progress(job)
    if st.button("Cancel", key="cancel_run", icon=":material/stop:"):
        job.cancel()
        st.rerun()
else:
    with st.form("run_form"):
        names = list(summaries)
        benchmark = st.selectbox("Benchmark", names, key="run_benchmark")
        chosen = st.multiselect(
            "Systems",
            [s.name for s in systems],
            key="run_systems",
            help="Each system runs in turn; cached cases are skipped.",
        )
        left, right = st.columns(2)
        split = left.selectbox("Split", list(SPLITS), index=SPLITS.index("test"), key="run_split")
        limit = right.number_input(
            "Limit (0 = every case)", min_value=0, value=0, step=1, key="run_limit"
        )
        submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if submitted:
        try:
            st.session_state[JOB_KEY] = start_run_job(
                workbench_store, benchmark, chosen, split=split, limit=int(limit) or None
            )
        except RunError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    synthetic_badge(summaries[benchmark].synthetic)

if job is not None and job.finished:
    for report in job.reports:
        message = report.summary()
        if report.status == "done":
            st.success(message)
        else:
            st.warning(message)
    if job.error:
        st.error(f"Not finished: {job.error}. Finished chunks are saved; run again to resume.")

st.subheader("Recent runs")
runs = list_runs(workbench_store, limit=20)
if runs:
    st.dataframe(
        [
            {
                "run": run.id,
                "system": run.system,
                "benchmark": run.benchmark,
                "split": run.split,
                "status": run.status,
                "done": f"{run.n_done}/{run.n_cases}",
                "started": run.started_at,
                "finished": run.finished_at,
                "error": (run.error or "").splitlines()[0] if run.error else "",
            }
            for run in runs
        ],
        hide_index=True,
    )
else:
    st.caption("No runs yet.")
