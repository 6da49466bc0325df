"""Rate: one case at a time on one screen, two anonymous reports, every decision a key.

The form (media, both reports, the criteria with their anchors, preference, comment, submit,
"cannot assess", guidelines) is one browser component, `workbench.components.rating_form`:
its keys never rerun this script, so none is lost, and the answer is kept as a draft in the
browser until its submit is confirmed. This page answers the form's events (submit,
correction, flag, guidelines acknowledgement) in callbacks, which run before the next run of
the script, so the run after a submit goes straight to drawing the next case.

Blinding: this page only ever holds what `studies.readers.rating.RatingTask` carries (an
opaque token, the media bytes and the two texts as shown). No system name, id or file name
reaches the browser.

Nothing the rater entered is dropped without a word: a submit refused by a pause, an expired
session or a busy database says why, and the answer stays in the form (and in the browser's
draft, which also survives a reload or a log-out); a submit that finds the task already
answered differently (another tab, a retry after a reconnect) shows both answers and a button
to replace the stored one. Media that cannot be shown is reported to the admin and the rater
flags it and goes on with the next case.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.annotation import annotation_studies
from studies.readers.flags import REASONS as FLAG_REASONS
from studies.readers.flags import flag_task
from studies.readers.form import PREFERENCES
from studies.readers.media_problems import flag_unreadable, report_media_problem
from studies.readers.rating import (
    AccessDenied,
    AnsweredTask,
    RatingError,
    RatingTask,
    SubmitResult,
    acknowledge_guidelines,
    answered_tasks,
    calibration_status,
    correct_judgment,
    guidelines_acknowledged,
    next_assignment,
    rater_studies,
    submit_judgment,
)
from workbench import access
from workbench.components import rating_form
from workbench.ui import SYNTHETIC_NOTE, MediaUnreadable, plain_text

# Session keys (none is a widget: they survive runs in which the form is not drawn).
CURRENT_KEY = "rate_current"  # the open task: token, submission key, start time, study
UNSAVED_KEY = "rate_unsaved"  # {task token: answer} sent but not saved (the server's copy)
CONFLICT_KEY = "rate_conflict"  # the answer refused because the task was already answered
FIX_KEY = "rate_fixing"  # the earlier answer being corrected: token, submission key
REPLY_KEY = "rate_reply"  # the id of the last form event handled (the form waits for it)
MESSAGE_KEY = "rate_message"  # what the next render of the form says at its top
FEEDBACK_KEY = "rate_feedback"  # a training case's reference answer, shown after its submit
CLEAR_KEY = "rate_clear_drafts"  # task tokens whose browser drafts are saved and can go
ACCOUNT_KEY = "rate_account"  # the account the form belongs to (the callbacks' rater)
ACK_KEY = "rate_guidelines_seen"  # study ids whose guidelines this rater acknowledged
FORM_SESSION_KEY = "rate_form_session"  # makes the form's event ids unique per browser tab
EARLIER_KEY = "rate_list_earlier"  # the form asked for the rater's earlier answers
CALIBRATION_KEY = "rate_calibration"  # the training status after a training case's submit
OPEN_STUDY_KEY = "rate_open_study"  # the study Home's "Go rating" button chose
KEPT_NOTE = (
    "Your answer is kept in this form: press Enter to send it again when the message is gone."
)


# --- the form's events (run before the script, in the run they cause) -----------------


def _say(kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = {"kind": kind, "text": text}


def _expired(_exc: AccessDenied) -> None:
    # The app then says so above the page it lands on ("your answer is kept": the form's
    # draft stays in the browser and comes back with the case after the next log-in).
    st.session_state.pop(access.SESSION_KEY, None)
    st.session_state[access.EXPIRED_KEY] = True


def _refused(result: SubmitResult, task_token: str, answer: dict[str, Any]) -> None:
    """Keep an answer the store did not take because the task was answered differently."""
    st.session_state[CONFLICT_KEY] = {
        "token": task_token,
        "stored": result.stored,
        "choice": answer["choice"],
        "likert": answer["likert"],
        "comment": (answer["comment"] or "").strip(),
        "key": uuid.uuid4().hex,  # one correction, however often the button is pressed
    }


def _saved(task_token: str) -> None:
    st.session_state.get(UNSAVED_KEY, {}).pop(task_token, None)
    st.session_state.setdefault(CLEAR_KEY, []).append(task_token)


def _on_submit(value: dict[str, Any]) -> None:
    current = st.session_state.get(CURRENT_KEY) or {}
    task_token = str(value.get("token") or "")
    answer = rating_form.answer_from(value)
    st.session_state.setdefault(UNSAVED_KEY, {})[task_token] = answer
    if current.get("token") != task_token:
        # The form's case is no longer this tab's open case (answered elsewhere meanwhile):
        # a fresh key, and the store says whether that case was answered differently.
        current = {"key": uuid.uuid4().hex, "started": None}
    if not answer["choice"]:
        _say("error", "Choose which report is better first (keys A, B, T or X).")
        return
    started = current.get("started")
    try:
        result = submit_judgment(
            access.app_store(),
            st.session_state.get(ACCOUNT_KEY),
            task_token,
            current["key"],
            answer["choice"],
            answer["likert"],
            answer["comment"],
            round(time.monotonic() - started, 2) if started is not None else None,
            session_token=access.session_token(),
        )
    except AccessDenied as exc:
        _expired(exc)
        return
    except RatingError as exc:
        _say("error", f"{exc} {KEPT_NOTE}")
        return
    _saved(task_token)
    st.session_state.pop(CURRENT_KEY, None)
    if result.conflict:
        _refused(result, task_token, answer)
    if result.feedback:
        # A training case: its reference answer and where the rater's training stands.
        st.session_state[FEEDBACK_KEY] = result.feedback
        study = current.get("study")
        status = (
            calibration_status(access.app_store(), st.session_state.get(ACCOUNT_KEY), study)
            if study is not None
            else None
        )
        st.session_state[CALIBRATION_KEY] = status.text() if status else None


def _on_correct(value: dict[str, Any]) -> None:
    fixing = st.session_state.get(FIX_KEY) or {}
    if fixing.get("token") != value.get("token"):
        _say("error", "That correction was for another case; open the case again to change it.")
        return
    answer = rating_form.answer_from(value)
    if not answer["choice"]:
        _say("error", "Choose which report is better first (keys A, B, T or X).")
        return
    try:
        correct_judgment(
            access.app_store(),
            st.session_state.get(ACCOUNT_KEY),
            fixing["token"],
            fixing["key"],
            answer["choice"],
            answer["likert"],
            answer["comment"],
            None,
            session_token=access.session_token(),
        )
    except AccessDenied as exc:
        _expired(exc)
        return
    except RatingError as exc:
        _say("error", str(exc))
        return
    st.session_state.pop(FIX_KEY, None)
    _say(
        "success",
        f"Your answer to case {fixing['position']} is changed (the earlier one is kept in "
        "the record).",
    )


def _on_flag(value: dict[str, Any]) -> None:
    current = st.session_state.get(CURRENT_KEY) or {}
    task_token = str(value.get("token") or "")
    if current.get("token") != task_token:
        _say("error", "That case is no longer open here; nothing was flagged.")
        return
    try:
        result = flag_task(
            access.app_store(),
            st.session_state.get(ACCOUNT_KEY),
            task_token,
            f"flag-{current['key']}",
            str(value.get("reason") or ""),
            str(value.get("note") or ""),
            session_token=access.session_token(),
        )
    except AccessDenied as exc:
        _expired(exc)
        return
    except RatingError as exc:
        _say("error", str(exc))
        return
    _saved(task_token)
    st.session_state.pop(CURRENT_KEY, None)
    _say("success", result.message)


def _on_ack(_value: dict[str, Any]) -> None:
    study = (st.session_state.get(CURRENT_KEY) or {}).get("study")
    if study is None:
        return
    try:
        acknowledge_guidelines(
            access.app_store(),
            st.session_state.get(ACCOUNT_KEY),
            study,
            session_token=access.session_token(),
        )
    except AccessDenied as exc:
        _expired(exc)
        return
    st.session_state.setdefault(ACK_KEY, set()).add(study)


def _on_leave(_value: dict[str, Any]) -> None:
    st.session_state.pop(FIX_KEY, None)


def _on_list(_value: dict[str, Any]) -> None:
    st.session_state[EARLIER_KEY] = True


def _on_open(value: dict[str, Any]) -> None:
    # Which case it is, and whether it may be changed, the next render reads from the store.
    st.session_state[FIX_KEY] = {"token": str(value.get("token") or ""), "key": uuid.uuid4().hex}


_HANDLERS = {
    "submit": _on_submit,
    "correct": _on_correct,
    "flag": _on_flag,
    "ack": _on_ack,
    "list": _on_list,
    "open": _on_open,
    "leave": _on_leave,
}


def on_form_event(name: str) -> None:
    value = rating_form.event_value(name)
    if value is None:
        return
    # Echoed first: whatever happens below, the form learns that its event was handled.
    st.session_state[REPLY_KEY] = value.get("id")
    _HANDLERS[name](value)


# --- the page ------------------------------------------------------------------------

account = access.require_role("rater", "admin")
store = access.app_store()
token = access.session_token()
st.session_state[ACCOUNT_KEY] = account.id
# The form fills the screen: less of Streamlit's padding above it. It is never faded as
# "stale" while a run is on its way: the case it shows is current (the next one is shown
# ahead while the answer before it is saved).
st.html(
    "<style>.stMainBlockContainer{padding:2.6rem 1.5rem 1rem;max-width:none;}"
    f".st-key-{rating_form.KEY}{{opacity:1 !important;transition:none !important;}}</style>",
)


def _unsaved_note() -> None:
    if st.session_state.get(UNSAVED_KEY):
        st.caption(
            ":material/save: Your unsaved answer is kept in this browser; it is filled in "
            "again when you come back to the case."
        )


def _stop_with_message() -> None:
    """A message for the form that will not be drawn in this run, shown here instead."""
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        getattr(st, message["kind"])(message["text"])
    _unsaved_note()
    st.stop()


annotating = set(annotation_studies(store, account.id))  # those have their own page
studies = [
    s for s in rater_studies(store, account.id) if s.status != "draft" and s.id not in annotating
]
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
    opened = st.session_state.pop(OPEN_STUDY_KEY, None)
    ids = [s.id for s in studies]
    if opened in ids:
        st.session_state["rate_study"] = ids.index(opened)
    names = [s.name for s in studies]
    chosen = st.selectbox(
        "Study", range(len(studies)), format_func=lambda i: names[i], key="rate_study"
    )
    study = studies[chosen]
else:
    study = studies[0]

try:
    task: RatingTask | None = next_assignment(store, account.id, study.id, session_token=token)
except AccessDenied as exc:
    st.session_state.pop(access.SESSION_KEY, None)
    st.session_state.pop(MESSAGE_KEY, None)
    st.error(f"{exc} Log in again to go on.")
    _unsaved_note()
    st.stop()
except RatingError as exc:
    st.title("Rate reports")
    st.info(str(exc))
    _stop_with_message()


def _describe(choice: str | None, comment: str, key: str) -> None:
    st.markdown(f"- **{PREFERENCES.get(choice or '', 'no choice')}**")
    if comment:
        plain_text(comment, label="Comment", key=key)


# Above the form, in one container that is always drawn: the form keeps its place (and its
# state in the browser) whatever is shown here.
notices = st.container()

# The case on this tab's form was answered elsewhere meanwhile (another tab, a reconnect).
working = st.session_state.get(CURRENT_KEY)
if (
    working is not None
    and working.get("study") == study.id  # not a switch to another study
    and (task is None or working["token"] != task.token)
):
    st.session_state.pop(CURRENT_KEY, None)
    notices.info(
        "The case you were rating was answered in another tab meanwhile; what you had "
        "entered here was not saved. Use 'Change an earlier answer' to change it.",
        icon=":material/sync_problem:",
    )

conflict = st.session_state.get(CONFLICT_KEY)
if conflict is not None:
    with notices.container(border=True):
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
                st.session_state.pop(access.SESSION_KEY, None)
                st.error(f"{exc} Log in again; your answer is kept in this tab.")
            except RatingError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop(CONFLICT_KEY, None)
                st.success("Your answer replaced the stored one (both are kept in the record).")
        if keep.button("Keep the stored answer", key="rate_conflict_keep"):
            st.session_state.pop(CONFLICT_KEY, None)
            st.rerun()

# A correction of an earlier answer takes the form's place until it is saved or left.
fixing = st.session_state.get(FIX_KEY)
answered: AnsweredTask | None = None
if fixing is not None:
    try:
        earlier = answered_tasks(store, account.id, study.id, session_token=token)
    except RatingError as exc:
        earlier = []
        notices.error(str(exc))
    answered = next((a for a in earlier if a.task.token == fixing["token"]), None)
    if answered is None or not answered.correctable:
        st.session_state.pop(FIX_KEY, None)
        st.session_state[MESSAGE_KEY] = {
            "kind": "error",
            "text": "That answer cannot be changed (a training case's answer stays as given).",
        }
        answered = None
    else:
        # Its number as the rater read it: its place among their answers (flags leave gaps
        # in the order).
        fixing["position"] = earlier.index(answered) + 1

if task is None and answered is None:
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback:
        st.info(feedback, icon=":material/school:")
    message = st.session_state.pop(MESSAGE_KEY, None)
    if message:
        getattr(st, message["kind"])(message["text"])
    st.progress(1.0, text=f"{study.done} / {study.total} done")
    st.success("All done for this study. Thank you!")
    st.caption(RESEARCH_NOTICE)
    st.stop()

shown = answered.task if answered is not None else task
assert shown is not None
if answered is None:
    # Per-task state: the idempotency key and the start time (time on task).
    current = st.session_state.get(CURRENT_KEY)
    if current is None or current["token"] != shown.token:
        current = {
            "token": shown.token,
            "key": uuid.uuid4().hex,
            "started": time.monotonic(),
            "study": study.id,
            "position": shown.position,
        }
        st.session_state[CURRENT_KEY] = current

try:
    media = rating_form.task_media(shown)
except MediaUnreadable as exc:
    reported = st.session_state.setdefault("rate_media_reported", set())
    if shown.token not in reported:
        report_media_problem(store, account.id, shown.token, exc)
        reported.add(shown.token)
    # No file name or error text here: it could name the case's source.
    st.error(
        "The images of this case cannot be shown. The study admin has been told. Flag it and "
        "go on with the next case; it is handed on or fixed by the admin.",
        icon=":material/broken_image:",
    )
    if answered is None and st.button(
        "Flag and go on to the next case",
        key="rate_skip_flag",
        type="primary",
        icon=":material/flag:",
    ):
        try:
            flag_unreadable(
                store, account.id, shown.token, f"media-{current['key']}", session_token=token
            )
        except AccessDenied as exc:
            st.session_state.pop(access.SESSION_KEY, None)
            st.error(f"{exc} Log in again to go on.")
            st.stop()
        except RatingError as exc:
            st.error(str(exc))
            st.stop()
        st.session_state.pop(CURRENT_KEY, None)
        st.rerun()
    if answered is not None and st.button("Back to my next case", key="rate_fix_leave"):
        st.session_state.pop(FIX_KEY, None)
        st.rerun()
    st.stop()

acknowledged = study.id in st.session_state.get(ACK_KEY, set())
if not acknowledged and guidelines_acknowledged(store, account.id, study.id):
    st.session_state.setdefault(ACK_KEY, set()).add(study.id)
    acknowledged = True
if answered is not None:
    answer = {
        "choice": answered.preference_shown,
        "likert": answered.likert,
        "comment": answered.comment,
    }
else:
    answer = st.session_state.get(UNSAVED_KEY, {}).get(shown.token)


def _earlier() -> list[dict[str, str | int]]:
    """The rater's earlier answers that can be changed, newest first, for the form's list."""
    try:
        found = answered_tasks(store, account.id, study.id, session_token=token)
    except RatingError:
        return []
    numbered = list(enumerate(found, start=1))  # the case numbers the rater read
    return [
        {
            "number": number,
            "token": a.task.token,
            "label": f"Case {number}: {PREFERENCES[a.preference_shown]}",
        }
        for number, a in reversed(numbered)
        if a.correctable
    ]


upcoming = None
if answered is None:
    # The case after this one, sent ahead: the form shows it the moment this one is submitted
    # (the rater's own next task, blinded like this one; not sent when its media is bad).
    after = next_assignment(
        store, account.id, study.id, session_token=token, after_position=shown.position
    )
    if after is not None:
        try:
            upcoming = rating_form.task_data(
                after, rating_form.task_media(after), done=shown.done + 1
            )
        except MediaUnreadable:
            upcoming = None
clear = st.session_state.pop(CLEAR_KEY, [])
data = rating_form.form_payload(
    shown,
    media,
    number=fixing["position"] if answered is not None and fixing is not None else None,
    session=st.session_state.setdefault(FORM_SESSION_KEY, uuid.uuid4().hex[:12]),
    reply=st.session_state.get(REPLY_KEY),
    mode="correct" if answered is not None else "rate",
    answer=answer,
    message=st.session_state.pop(MESSAGE_KEY, None),
    feedback=st.session_state.pop(FEEDBACK_KEY, None),
    guidelines=study.guidelines,
    guidelines_required=not acknowledged,
    data_label=SYNTHETIC_NOTE if study.synthetic else "",
    calibration=st.session_state.pop(CALIBRATION_KEY, None),
    earlier=_earlier() if st.session_state.pop(EARLIER_KEY, False) else None,
    flag_reasons=[
        {"key": key, "label": label, "needs_note": key == "other"}
        for key, label in FLAG_REASONS.items()
    ],
    clear_drafts=clear,
    upcoming=upcoming,
)
rating_form.rating_form(data, on_form_event)

st.caption(RESEARCH_NOTICE)
