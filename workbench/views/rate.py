"""Rate: one case at a time, two anonymous reports, the rating form, keyboard shortcuts.

Blinding: this page only ever holds what `studies.readers.rating.RatingTask` carries (an opaque
token, the media bytes and the two texts as shown). No system name, id or file name
reaches the browser; widget keys use a per-session counter, never a database id.

Nothing the rater entered is dropped without a word: the form's values are copied on every
run, so a submit refused by a pause, an expired session or a busy database comes back
filled in; a submit that finds the task already answered differently (another tab, a retry
after a reconnect) shows both answers and a button to replace the stored one. Media that
cannot be shown is reported to the admin and the rater goes on with the next case.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.form import PREFERENCES, anchors_text, criteria
from studies.readers.media_problems import report_media_problem
from studies.readers.rating import (
    AccessDenied,
    RatingError,
    RatingTask,
    SubmitResult,
    correct_judgment,
    next_assignment,
    previous_answer,
    rater_studies,
    submit_judgment,
)
from workbench import access
from workbench.ui import (
    MediaUnreadable,
    media_bytes,
    plain_text,
    readable_frames,
)

SHORTCUTS = {"left": "1", "right": "2", "tie": "3", "both_bad": "4"}
BUTTON_LABELS = {
    "left": "A is better",
    "right": "B is better",
    "tie": "Tie",
    "both_bad": "Both unacceptable",
}
# Session keys that are not widgets (they survive runs in which the form is not drawn).
UNSAVED_KEY = "rate_unsaved"  # {task token: {"choice", "likert", "comment"}}
CONFLICT_KEY = "rate_conflict"  # the answer refused because the task was already answered
AFTER_KEY = "rate_after"  # {study id: position of the last task set aside}
REPORTED_KEY = "rate_media_reported"  # task tokens whose media problem was recorded
KEPT_NOTE = "Your answer is kept in this form: press Submit again when the message is gone."

account = access.require_role("rater", "admin")
store = access.app_store()
token = access.session_token()


def _form_values(current: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the rater has entered on the current task's form (from the widgets' state)."""
    if not current:
        return None
    seq = current["seq"]
    likert: dict[str, dict[str, int]] = {"left": {}, "right": {}}
    for key, value in st.session_state.items():
        for side in likert:
            prefix = f"rate_{side}_"
            if key.startswith(prefix) and key.endswith(f"_{seq}") and value is not None:
                likert[side][key[len(prefix) : -len(f"_{seq}")]] = int(value)
    return {
        "choice": st.session_state.get(f"rate_pref_{seq}"),
        "likert": likert,
        "comment": st.session_state.get(f"rate_comment_{seq}") or "",
    }


def _keep_input() -> None:
    """Copy the form's values before anything can stop this run (a pause, an expired
    session, a busy database stop the page above the form, and Streamlit then forgets the
    widgets' values)."""
    current = st.session_state.get("rate_current")
    if not current or f"rate_comment_{current['seq']}" not in st.session_state:
        return  # the form was not drawn in the last run: what was kept stays as it was
    values = _form_values(current)
    if values and (values["choice"] or values["comment"] or any(values["likert"].values())):
        st.session_state.setdefault(UNSAVED_KEY, {})[current["token"]] = values


def _unsaved_note() -> None:
    if st.session_state.get(UNSAVED_KEY):
        st.caption(
            ":material/save: Your unsaved answer is kept in this browser tab; it is filled "
            "in again when you come back to the case."
        )


_keep_input()
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
    plain_text(text, key="guidelines")


def _drop_session() -> None:
    st.session_state.pop(access.SESSION_KEY, None)


after = st.session_state.setdefault(AFTER_KEY, {}).get(study.id, 0)
try:
    task: RatingTask | None = next_assignment(
        store, account.id, study.id, session_token=token, after_position=after
    )
except AccessDenied as exc:
    _drop_session()
    st.error(f"{exc} Log in again to go on.")
    _unsaved_note()
    st.stop()
except RatingError as exc:
    st.title("Rate reports")
    st.info(str(exc))
    _unsaved_note()
    st.stop()

head, guide = st.columns([5, 1], vertical_alignment="bottom")
head.title("Rate reports")
if guide.button("Guidelines", key="rate_guidelines", icon=":material/menu_book:", shortcut="G"):
    show_guidelines(study.guidelines)


def _describe(choice: str | None, comment: str, key: str) -> None:
    st.markdown(f"- **{PREFERENCES.get(choice or '', 'no choice')}**")
    if comment:
        plain_text(comment, label="Comment", key=key)


def _refused(result: SubmitResult, task_token: str, values: dict[str, Any]) -> None:
    """Keep an answer the store did not take because the task was answered differently."""
    st.session_state[CONFLICT_KEY] = {
        "token": task_token,
        "stored": result.stored,
        "choice": values["choice"],
        "likert": values["likert"],
        "comment": (values["comment"] or "").strip(),
        "key": uuid.uuid4().hex,  # one correction, however often the button is pressed
    }


# The case on this tab's form was answered elsewhere meanwhile (another tab, a reconnect):
# the store moved on, but what the rater entered here is not dropped without a word.
working = st.session_state.get("rate_current")
if (
    working is not None
    and working.get("study") == study.id  # not a switch to another study
    and (task is None or working["token"] != task.token)
):
    values = _form_values(working) or {}
    st.session_state.pop("rate_current", None)
    st.session_state.get(UNSAVED_KEY, {}).pop(working["token"], None)
    if st.session_state.get(f"rate_submit_{working['seq']}") and values.get("choice"):
        try:
            late = submit_judgment(
                store,
                account.id,
                working["token"],
                working["key"],
                values["choice"],
                values["likert"],
                values["comment"],
                round(time.monotonic() - working["started"], 2),
                session_token=token,
            )
        except RatingError as exc:
            st.error(f"{exc} Your answer for the case before was not saved.")
        else:
            if late.conflict:
                _refused(late, working["token"], values)
    elif values.get("choice") or values.get("comment"):
        st.info(
            "The case you were rating was answered in another tab meanwhile; what you had "
            "entered here was not saved. Use 'Change my previous answer' to change it.",
            icon=":material/sync_problem:",
        )

conflict = st.session_state.get(CONFLICT_KEY)
if conflict is not None:
    with st.container(border=True):
        st.warning(
            "That case was already answered (in another tab, or before a reconnect), so the "
            "answer you just gave was NOT saved. Both are below: keep the stored one, or "
            "replace it with yours (the earlier answer stays in the record).",
            icon=":material/sync_problem:",
        )
        stored_column, mine_column = st.columns(2)
        with stored_column:
            st.markdown("**Stored answer**")
            stored = conflict["stored"]
            _describe(
                stored.preference_shown if stored else None,
                stored.comment if stored else "",
                "conflict-stored",
            )
        with mine_column:
            st.markdown("**Your answer (not saved)**")
            _describe(conflict["choice"], conflict["comment"], "conflict-mine")
        keep, replace = st.columns(2)
        if replace.button("Replace the stored answer with mine", key="rate_conflict_replace"):
            try:
                correct_judgment(
                    store,
                    account.id,
                    conflict["token"],
                    conflict["key"],
                    conflict["choice"],
                    conflict["likert"],
                    conflict["comment"],
                    None,
                    session_token=token,
                )
            except AccessDenied as exc:
                _drop_session()
                st.error(f"{exc} Log in again; your answer is kept in this tab.")
            except RatingError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop(CONFLICT_KEY, None)
                st.success("Your answer replaced the stored one (both are kept in the record).")
        if keep.button("Keep the stored answer", key="rate_conflict_keep"):
            st.session_state.pop(CONFLICT_KEY, None)
            st.rerun()

if task is None:
    st.progress(1.0, text=f"{study.done} / {study.total} done")
    if after:
        st.warning(
            "You set aside cases whose images could not be shown; the study admin has been "
            "told. Try them again once the admin says they are fixed.",
            icon=":material/flag:",
        )
        if st.button("Try the cases I set aside", key="rate_retry_skipped"):
            st.session_state[AFTER_KEY].pop(study.id, None)
            st.session_state.pop(REPORTED_KEY, None)
            st.rerun()
    else:
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
        "study": study.id,
    }
    st.session_state["rate_current"] = current
seq = current["seq"]
pref_key = f"rate_pref_{seq}"
unsaved = st.session_state.get(UNSAVED_KEY, {}).get(task.token)
if unsaved and pref_key not in st.session_state and unsaved["choice"]:
    st.session_state[pref_key] = unsaved["choice"]

st.progress(task.done / max(task.total, 1), text=f"{task.done} / {task.total} done")
if task.question:
    plain_text(task.question, label="Question", key="question")


def _task_media(item_task: RatingTask) -> list[tuple[str, Any]]:
    """Every image, frame and clip of the task, read (and images fully decoded) before any
    is drawn: a bad file raises MediaUnreadable and nothing half-drawn is left."""
    shown: list[tuple[str, Any]] = []
    try:
        for item in item_task.media:
            if item_task.modality == "video":
                shown.append(("video", item.path.read_bytes()))
            elif item_task.modality == "frames":
                frames = readable_frames(item.path) if item.path.is_dir() else []
                if not frames:
                    raise MediaUnreadable("no readable frames")
                step = max(1, len(frames) // 6)
                shown.append(("frames", [media_bytes(p) for p in frames[::step][:6]]))
            else:
                shown.append(("image", media_bytes(item.path)))
    except OSError as exc:
        raise MediaUnreadable(str(exc)) from exc
    if not shown:
        raise MediaUnreadable("the case has no media")
    return shown


try:
    shown_media = _task_media(task)
except MediaUnreadable as exc:
    reported = st.session_state.setdefault(REPORTED_KEY, set())
    if task.token not in reported:
        report_media_problem(store, account.id, task.token, exc)
        reported.add(task.token)
    # No file name or error text here: it could name the case's source.
    st.error(
        "The images of this case cannot be shown. The study admin has been told. Go on with "
        "the next case; you can come back to this one once it is fixed.",
        icon=":material/broken_image:",
    )
    if st.button(
        "Flag and go on to the next case",
        key=f"rate_skip_{seq}",
        type="primary",
        icon=":material/flag:",
    ):
        st.session_state[AFTER_KEY][study.id] = task.position
        st.rerun()
    st.stop()

media = st.container()
image_items = [data for kind, data in shown_media if kind == "image"]
columns = media.columns(max(1, min(len(image_items), 3))) if image_items else []
for index, (kind, data) in enumerate(shown_media):
    if kind == "video":
        media.video(data)
    elif kind == "frames":
        media.image(data, width=200)
    else:
        # Bytes, not paths: the browser sees an anonymous media URL.
        columns[index % len(columns)].image(data, width=480 if len(image_items) == 1 else "stretch")
st.caption("Hover over an image and use the expand icon to zoom.")

likert: dict[str, dict[str, int]] = {"left": {}, "right": {}}
report_columns = st.columns(2, gap="large")
for side, column, title, text in (
    ("left", report_columns[0], "Report A", task.left_text),
    ("right", report_columns[1], "Report B", task.right_text),
):
    with column:
        st.subheader(title)
        plain_text(text, key=side, report=True)
        # Every criterion of the study's frozen form, each on its declared scale.
        for criterion in criteria(task.form):
            scale = list(criterion.scale)
            kept = (unsaved or {}).get("likert", {}).get(side, {}).get(criterion.key)
            value = st.radio(
                f"{criterion.label} ({title})",
                options=scale,
                index=scale.index(kept) if kept in scale else None,
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
    value=(unsaved or {}).get("comment", ""),
    key=f"rate_comment_{seq}",
    placeholder="Required for 'Both unacceptable'; optional otherwise.",
    height=80,
)


def _after_submit(result: SubmitResult) -> None:
    st.session_state.get(UNSAVED_KEY, {}).pop(task.token, None)
    st.session_state.pop("rate_current", None)
    if result.conflict:
        _refused(result, task.token, {"choice": choice, "likert": likert, "comment": comment})
    st.rerun()


if st.button("Submit", key=f"rate_submit_{seq}", type="primary", shortcut="Enter"):
    if not choice:
        st.error("Choose which report is better first (keys 1-4).")
    else:
        try:
            result = submit_judgment(
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
            st.error(f"{exc} Your answer was not saved; it is kept in this tab: log in again.")
        except RatingError as exc:
            st.error(f"{exc} {KEPT_NOTE}")
        else:
            _after_submit(result)

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
        with left:
            plain_text(previous.task.left_text, label="Report A", key="previous-left")
        with right:
            plain_text(previous.task.right_text, label="Report B", key="previous-right")
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
        # One key per correction as entered: a second click saves nothing new, a changed
        # choice or comment is a new correction.
        entered = (previous.task.token, new_choice, (new_comment or "").strip())
        fix = st.session_state.get(f"rate_fix_key_{seq}")
        if fix is None or fix["for"] != entered:
            fix = {"for": entered, "key": uuid.uuid4().hex}
            st.session_state[f"rate_fix_key_{seq}"] = fix
        fix_key = fix["key"]
        if st.button("Save correction", key=f"rate_fix_save_{seq}"):
            try:
                correct_judgment(
                    store,
                    account.id,
                    previous.task.token,
                    fix_key,
                    new_choice,
                    previous.likert,
                    new_comment,
                    None,
                    session_token=token,
                )
            except AccessDenied as exc:
                _drop_session()
                st.error(f"{exc} Log in again to correct it.")
            except RatingError as exc:
                st.error(str(exc))
            else:
                st.success("Correction saved (the earlier answer is kept in the record).")
st.caption(RESEARCH_NOTICE)
