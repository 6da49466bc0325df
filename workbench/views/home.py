"""Home: for an admin, what this workbench holds, where, and on which device; for a rater,
their studies with done / remaining and a way in; for a visitor, how to log in.

Raters and visitors read nothing about who wrote the reports they will judge (no "AI",
model or baseline): the priming would bias their judgments. Blinding starts here.
"""

from __future__ import annotations

import streamlit as st

from model.notice import RESEARCH_NOTICE, RESEARCH_WARNING
from studies.readers.rating import RaterStudy, rater_studies
from studies.store.settings import get_settings
from studies.systems.catalog import benchmark_summaries, store_counts, system_names
from workbench.access import current_account
from workbench.environment import describe_database, describe_device
from workbench.ui import plain_text, store

# What a rater or visitor is told: the research-use warning without saying who wrote the
# reports, and a description of the task in neutral words.
NEUTRAL_WARNING = f"{RESEARCH_NOTICE} Not for diagnosis or treatment decisions."
STUDY_DESCRIPTION = (
    "Blinded reading: for each case you see the images and two reports written for it, with "
    "their authors hidden and their sides random. Choose the better report and rate each on "
    "the study's criteria; the guidelines say how."
)
ANNOTATION_DESCRIPTION = (
    "Expert annotation: for each case you write or correct the reference report and its "
    "structured findings."
)
# Set before opening the rating page: the study to open (the page pops it).
OPEN_STUDY_KEY = "rate_open_study"


def _open(study_id: int, page: str) -> None:
    st.session_state[OPEN_STUDY_KEY] = study_id
    st.switch_page(page)


def rater_home(studies: list[RaterStudy], annotating: set[int]) -> None:
    """Each started study of the rater: name, done / remaining, what it asks, a way in."""
    if not studies:
        st.info("You have no reader study to rate yet. Your study admin will let you know.")
        return
    for study in studies:
        annotation = study.id in annotating
        with st.container(border=True):
            st.subheader(study.name, anchor=False)
            if study.synthetic:
                st.caption("SYNTHETIC cases: procedurally drawn images, not patients.")
            plain_text(
                ANNOTATION_DESCRIPTION if annotation else STUDY_DESCRIPTION,
                key=f"home-study-{study.id}",
            )
            remaining = max(study.total - study.done, 0)
            st.progress(
                study.done / max(study.total, 1), text=f"{study.done} done, {remaining} remaining"
            )
            if study.status != "active":
                st.caption(f"This study is {study.status}; rating is closed for now.")
            label = "Go annotating" if annotation else "Go rating"
            if st.button(
                label,
                key=f"home_go_{study.id}",
                type="primary",
                icon=":material/rate_review:",
                disabled=study.status != "active" or remaining == 0,
            ):
                _open(study.id, "views/annotate.py" if annotation else "views/rate.py")


def _annotation_ids(account_id: int) -> set[int]:
    try:
        from studies.readers.annotation import annotation_studies
    except ImportError:  # a workbench without annotation studies
        return set()
    from workbench.navigation import PAGES

    if not any(page.file == "annotate.py" for page in PAGES):
        return set()
    return set(annotation_studies(store(), account_id))


settings = get_settings()
st.title("Med-Vision Workbench")
account = current_account()
role = account.role if account else "public"
if role != "admin":
    # Raters and visitors see no system, benchmark or run details.
    st.error(NEUTRAL_WARNING, icon=":material/medical_information:")
    if role == "rater":
        rater_home(rater_studies(store(), account.id), _annotation_ids(account.id))
    else:
        st.markdown(
            "A research workbench for colonoscopy reports and blinded reader studies, in "
            "which clinicians compare and rate reports without knowing who wrote them."
        )
        st.info("Log in to rate reports or to manage benchmarks, systems and studies.")
    st.stop()

st.error(RESEARCH_WARNING, icon=":material/medical_information:")
st.markdown(
    "Evaluate AI-written colonoscopy reports against baselines, score them with text and "
    "clinical-finding metrics, run blinded reader studies with gastroenterologists, and turn "
    "their judgments into significance tables and DPO preference data."
)

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
