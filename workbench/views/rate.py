"""Rate: one case at a time, two anonymous reports, the rating form, keyboard shortcuts.

Blinding: this page only ever holds what `studies.readers.rating.RatingTask` carries (an opaque
token, the media bytes and the two texts as shown). No system name, id or file name
reaches the browser; widget keys use a per-session counter, never a database id.
"""

from __future__ import annotations

import html
import time
import uuid

import streamlit as st

from model.notice import RESEARCH_NOTICE
from model.video import frame_files
from studies.readers.form import PREFERENCES, anchors_text, criteria
from studies.readers.rating import (
    AccessDenied,
    RatingError,
    RatingTask,
    correct_judgment,
    next_assignment,
    previous_answer,
    rater_studies,
    submit_judgment,
)
from workbench import access

SHORTCUTS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4"}
BUTTON_LABELS = {
    "left": "A is better",
    "right": "B is better",
    "tie": "Tie",
    "both_bad": "Both unacceptable",
}
REPORT_CSS = """
<style>
.mv-report {font-family: Georgia, 'Times New Roman', serif; font-size: 1.02rem;
  line-height: 1.55; white-space: pre-wrap; padding: 0.8rem 1rem; min-height: 8rem;
  border: 1px solid rgba(128,128,128,0.35); border-radius: 0.4rem;}
</style>
"""

account = access.require_role("rater", "admin")
store = access.app_store()
token = access.session_token()

st.markdown(REPORT_CSS, unsafe_allow_html=True)
studies = [s for s in rater_studies(store, account.id) if s.status != "draft"]
if not studies:
    st.title("Rate reports")
    if account.role == "admin":
        st.info(
            "You are not enrolled as a rater in any started study. Enrol your account on the "
            "Reader studies page to rate, or log in as a rater."
        )
    else:
        st.info("You have no reader study to rate yet. Your study admin will let you know.")
    st.stop()

if len(studies) > 1:
    names = [s.name for s in studies]
    chosen = st.selectbox(
        "Study", range(len(studies)), format_func=lambda i: names[i], key="rate_study"
    )
    study = studies[chosen]
else:
    study = studies[0]
if study.synthetic:
    st.warning(
        "SYNTHETIC data: procedurally drawn images, not patients.", icon=":material/science:"
    )


@st.dialog("Guidelines", width="large")
def show_guidelines(text: str) -> None:
    st.markdown(text)


def _drop_session() -> None:
    st.session_state.pop(access.SESSION_KEY, None)


try:
    task: RatingTask | None = next_assignment(store, account.id, study.id, session_token=token)
except AccessDenied as exc:
    _drop_session()
    st.error(str(exc))
    st.stop()
except RatingError as exc:
    st.title("Rate reports")
    st.info(str(exc))
    st.stop()

head, guide = st.columns([5, 1], vertical_alignment="bottom")
head.title("Rate reports")
if guide.button("Guidelines", key="rate_guidelines", icon=":material/menu_book:", shortcut="G"):
    show_guidelines(study.guidelines)

if task is None:
    st.progress(1.0, text=f"{study.done} / {study.total} done")
    st.success("All done for this study. Thank you!")
    st.stop()

# Per-task state: a counter for widget keys, the idempotency key and the start time.
current = st.session_state.get("rate_current")
if current is None or current["token"] != task.token:
    sequence = st.session_state.get("rate_sequence", 0) + 1
    st.session_state["rate_sequence"] = sequence
    current = {
        "token": task.token,
        "seq": sequence,
        "key": uuid.uuid4().hex,
        "started": time.monotonic(),
    }
    st.session_state["rate_current"] = current
seq = current["seq"]
pref_key = f"rate_pref_{seq}"

st.progress(task.done / max(task.total, 1), text=f"{task.done} / {task.total} done")
if task.question:
    st.markdown(f"**Question:** {html.escape(task.question)}")

media = st.container()
if task.modality == "video":
    for item in task.media:
        media.video(item.path.read_bytes())
elif task.modality == "frames":
    for item in task.media:
        frames = frame_files(item.path) if item.path.is_dir() else []
        step = max(1, len(frames) // 6)
        media.image([p.read_bytes() for p in frames[::step][:6]], width=200)
else:
    columns = media.columns(max(1, min(len(task.media), 3)))
    for index, item in enumerate(task.media):
        # Bytes, not paths: the browser sees an anonymous media URL.
        columns[index % len(columns)].image(
            item.path.read_bytes(), width=480 if len(task.media) == 1 else "stretch"
        )
st.caption("Hover over an image and use the expand icon to zoom.")

likert: dict[str, dict[str, int]] = {"left": {}, "right": {}}
report_columns = st.columns(2, gap="large")
for side, column, title, text in (
    ("left", report_columns[0], "Report A", task.left_text),
    ("right", report_columns[1], "Report B", task.right_text),
):
    with column:
        st.subheader(title)
        st.markdown(f"<div class='mv-report'>{html.escape(text)}</div>", unsafe_allow_html=True)
        # Every criterion of the study's frozen form, each on its declared scale.
        for criterion in criteria(task.form):
            value = st.radio(
                f"{criterion.label} ({title})",
                options=list(criterion.scale),
                index=None,
                horizontal=True,
                help=f"{criterion.question}\n\n{anchors_text(criterion)}",
                key=f"rate_{side}_{criterion.key}_{seq}",
            )
            if value is not None:
                likert[side][criterion.key] = int(value)

st.markdown("**Which report is better?**")
choice = st.session_state.get(pref_key)


def _choose(value: str) -> None:
    st.session_state[pref_key] = value


buttons = st.columns(4)
for column, (value, label) in zip(buttons, BUTTON_LABELS.items(), strict=True):
    column.button(
        label,
        key=f"rate_choice_{value}_{seq}",
        type="primary" if choice == value else "secondary",
        shortcut=SHORTCUTS[value],
        on_click=_choose,
        args=(value,),
        width="stretch",
        help=f"{PREFERENCES[value]} (key {SHORTCUTS[value]})",
    )
if choice:
    st.caption(f"Your choice: **{PREFERENCES[choice]}**")

comment = st.text_area(
    "Comment",
    key=f"rate_comment_{seq}",
    placeholder="Required for 'Both unacceptable'; optional otherwise.",
    height=80,
)

if st.button("Submit", key=f"rate_submit_{seq}", type="primary", shortcut="Enter"):
    if not choice:
        st.error("Choose which report is better first (keys 1-4).")
    else:
        try:
            submit_judgment(
                store,
                account.id,
                task.token,
                current["key"],
                choice,
                likert,
                comment,
                round(time.monotonic() - current["started"], 2),
                session_token=token,
            )
        except AccessDenied as exc:
            _drop_session()
            st.error(str(exc))
        except RatingError as exc:
            st.error(str(exc))
        else:
            st.session_state.pop("rate_current", None)
            st.rerun()

st.caption("Keys: 1 = A better, 2 = B better, 3 = tie, 4 = both unacceptable, Enter = submit.")

with st.expander("Change my previous answer"):
    # A correction is a new judgment that supersedes the old one; nothing is overwritten.
    try:
        previous = previous_answer(store, account.id, study.id, session_token=token)
    except RatingError as exc:
        previous = None
        st.error(str(exc))
    if previous is None:
        st.caption("Nothing submitted yet.")
    else:
        left, right = st.columns(2)
        left.markdown("**Report A**")
        left.markdown(
            f"<div class='mv-report'>{html.escape(previous.task.left_text)}</div>",
            unsafe_allow_html=True,
        )
        right.markdown("**Report B**")
        right.markdown(
            f"<div class='mv-report'>{html.escape(previous.task.right_text)}</div>",
            unsafe_allow_html=True,
        )
        options = list(PREFERENCES)
        new_choice = st.radio(
            "Better report",
            options,
            index=options.index(previous.preference_shown),
            format_func=PREFERENCES.get,
            horizontal=True,
            key=f"rate_fix_pref_{seq}",
        )
        new_comment = st.text_area(
            "Comment", value=previous.comment, key=f"rate_fix_comment_{seq}", height=68
        )
        st.caption("Your 1-5 ratings of that case are kept.")
        if st.button("Save correction", key=f"rate_fix_save_{seq}"):
            try:
                correct_judgment(
                    store,
                    account.id,
                    previous.task.token,
                    uuid.uuid4().hex,
                    new_choice,
                    previous.likert,
                    new_comment,
                    None,
                    session_token=token,
                )
            except RatingError as exc:
                st.error(str(exc))
            else:
                st.success("Correction saved (the earlier answer is kept in the record).")
st.caption(RESEARCH_NOTICE)
