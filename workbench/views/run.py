"""Run: pick a benchmark and systems, generate what the cache lacks, with progress and cancel."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from studies.benchmarks.base import SPLITS
from studies.systems.catalog import benchmark_summaries
from studies.systems.registry import list_systems
from studies.systems.runs import RunError, RunJob, duration_text, list_runs, start_run_job
from workbench import access
from workbench.ui import disclaimer, store, synthetic_badge

JOB_KEY = "run_job"
# The last choices, kept apart from the widgets: Streamlit forgets a widget's value while
# the form is hidden (during a run), and the form should come back as it was sent.
CHOICE_KEY = "run_choice"

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
    state = job.state
    fraction = state.done / state.total if state is not None and state.total else 0.0
    where = state.text() if state is not None else f"{job.systems[0]}: starting"
    st.progress(
        min(1.0, fraction),
        text=f"System {position}/{len(job.systems)} on {job.benchmark}/{job.split}: {where}",
    )
    if job.cancelled:
        st.caption("Cancelling after the chunk in flight; finished chunks stay cached.")


if job is not None and not job.finished:
    show_progress(job)
    if st.button("Cancel", key="cancel_run", icon=":material/stop:"):
        job.cancel()
        st.rerun()
else:
    last = st.session_state.get(CHOICE_KEY) or {}
    names = list(summaries)
    system_names = [s.name for s in systems]
    for key, value in (
        ("run_benchmark", last.get("benchmark") if last.get("benchmark") in names else None),
        ("run_systems", [n for n in last.get("systems", []) if n in system_names] or None),
        ("run_split", last.get("split")),
        ("run_limit", last.get("limit")),
    ):
        # Put back what the form held when it was sent (only where the widget forgot it).
        if value is not None and key not in st.session_state:
            st.session_state[key] = value
    with st.form("run_form"):
        benchmark = st.selectbox("Benchmark", names, key="run_benchmark")
        chosen = st.multiselect(
            "Systems",
            system_names,
            key="run_systems",
            help="Each system runs in turn; cached cases are skipped.",
        )
        left, right = st.columns(2)
        if "run_split" not in st.session_state:
            st.session_state["run_split"] = "test"
        split = left.selectbox("Split", list(SPLITS), key="run_split")
        if "run_limit" not in st.session_state:
            st.session_state["run_limit"] = 0
        limit = right.number_input("Limit (0 = every case)", min_value=0, step=1, key="run_limit")
        submitted = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if submitted:
        st.session_state[CHOICE_KEY] = {
            "benchmark": benchmark,
            "systems": list(chosen),
            "split": split,
            "limit": int(limit),
        }
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
        for warning in report.warnings:
            st.warning(f"{report.system}: {warning}", icon=":material/warning:")
    if job.error:
        st.error(f"Not finished: {job.error}. Finished chunks are saved; run again to resume.")


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back the stored UTC time without its zone.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(moment: datetime | None) -> str:
    moment = _utc(moment)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _duration(started: datetime | None, finished: datetime | None, status: str) -> str:
    """How long a run took (from its start and finish times); a running one: so far."""
    started, finished = _utc(started), _utc(finished)
    if started is None:
        return ""
    if finished is None:
        if status != "running":
            return ""
        return f"{duration_text((datetime.now(UTC) - started).total_seconds())} so far"
    return duration_text((finished - started).total_seconds())


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
                "started": _when(run.started_at),
                "duration": _duration(run.started_at, run.finished_at, run.status),
                "error": (run.error or "").splitlines()[0] if run.error else "",
            }
            for run in runs
        ],
        hide_index=True,
    )
else:
    st.caption("No runs yet.")
