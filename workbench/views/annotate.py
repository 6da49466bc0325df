"""Annotate: a clinician writes or corrects the reference report and the structured findings of
one case at a time; the study's adjudicator settles the cases two annotators disagree on.

The media stand beside the draft report (the model's report, to correct, when the study names
a model; empty when annotators write from scratch), and below them the structured findings
form, generated field by field from `studies.readers.annotation.findings_form()` (the one
findings vocabulary): the case's fields, then one box per lesion, added and removed with
buttons, each lesion's fields as select boxes of the vocabulary. Everything is one Streamlit
form, so nothing typed triggers a run and no key press is lost; only the form's buttons do.

Blinding: the page only holds what `AnnotationTask` carries (an opaque token, the media, the
draft texts and findings, the anonymous annotations being adjudicated); widget keys use a
per-session counter. Nothing entered is dropped without a word: the draft of each task is kept
in the session (every form button copies it first), so a refused submit (a finding the
vocabulary does not know, a pause, an expired session, a busy database) comes back filled in,
with every problem listed at once above the form, each naming its field.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.annotation import (
    AnnotationTask,
    annotation_studies,
    correct_annotation,
    findings_form,
    form_findings,
    last_annotated_task,
    next_annotation,
    submit_annotation,
)
from studies.readers.media_problems import report_media_problem
from studies.readers.rating import rater_studies
from studies.readers.writes import AccessDenied, RatingError
from workbench import access
from workbench.ui import MediaUnreadable, plain_text, show_media, synthetic_badge

DRAFTS_KEY = "annot_drafts"  # {task token: draft}: what the clinician has entered so far
CURRENT_KEY = "annot_current"  # the task on the form: token, widget counter, submission key
ERRORS_KEY = "annot_errors"  # {task token: [problem, ...]} of the last refused submit
FIX_KEY = "annot_fix"  # the earlier case being corrected: token, widget prefix, key
PRESSED_KEY = "annot_pressed"  # (form, token) whose submit was pressed, handled before drawing
CONFLICT_KEY = "annot_conflict"  # an annotation refused because the task was answered already
SAVED_KEY = "annot_saved"  # "case n saved", shown once above the next case
FIXED_KEY = "annot_fixed"  # what became of the last correction, shown once
REPORTED_KEY = "annot_media_reported"  # task tokens whose media problem was recorded
KEPT_NOTE = "What you entered is kept in the form below."
NOT_STATED = "not stated"

account = access.require_role("rater", "admin")
store = access.app_store()
token = access.session_token()
FORM = findings_form()
CASE_FIELDS = FORM.case_fields
LESION_FIELDS = FORM.lesion_fields


# --- the draft: report, case fields, lesions (each with a uid for its widget keys) --------


def _new_draft(report: str, findings: dict[str, Any] | None) -> dict[str, Any]:
    findings = findings or {}
    lesions = [
        {"uid": uid, "values": {f.key: lesion.get(f.key) for f in LESION_FIELDS}}
        for uid, lesion in enumerate(findings.get("lesions") or [])
    ]
    return {
        "report": report or "",
        "case": {f.key: findings.get(f.key) for f in CASE_FIELDS},
        "lesions": lesions,
        "next_uid": len(lesions),
    }


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def _widget_keys(prefix: str, draft: dict[str, Any]) -> dict[str, tuple[str, Any, Any]]:
    """widget key -> (where in the draft, its form field (None: the report), the value)."""
    keys: dict[str, tuple[str, Any, Any]] = {
        _key(prefix, "report"): ("report", None, draft["report"])
    }
    for f in CASE_FIELDS:
        keys[_key(prefix, f"c_{f.key}")] = (f"case.{f.key}", f, draft["case"].get(f.key))
    for lesion in draft["lesions"]:
        for f in LESION_FIELDS:
            keys[_key(prefix, f"l{lesion['uid']}_{f.key}")] = (
                f"lesion.{lesion['uid']}.{f.key}",
                f,
                lesion["values"].get(f.key),
            )
    return keys


def _slot_draft(slot_key: str) -> dict[str, Any] | None:
    """The draft of a form on the page: the current case's (CURRENT_KEY) or the earlier
    case being corrected (FIX_KEY)."""
    slot = st.session_state.get(slot_key)
    return st.session_state.get(DRAFTS_KEY, {}).get(slot["draft"]) if slot else None


def _collect(slot_key: str) -> None:
    """Copy a form's values into its draft (a form button commits them all before its
    callback runs; a run stopped above the form would forget them)."""
    draft = _slot_draft(slot_key)
    if not draft:
        return
    lesions = {lesion["uid"]: lesion for lesion in draft["lesions"]}
    for key, (where, _, _) in _widget_keys(st.session_state[slot_key]["prefix"], draft).items():
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        if where == "report":
            draft["report"] = value or ""
        elif where.startswith("case."):
            draft["case"][where[5:]] = value
        else:
            _, uid, name = where.split(".", 2)
            lesions[int(uid)]["values"][name] = value


def _widget_value(field: Any, value: Any) -> Any:
    """A draft value as its widget holds it (the report as text, a multi-choice as a list,
    a number as the input's int or float)."""
    if field is None:
        return value or ""
    if field.kind == "multi":
        return list(value or [])
    if field.kind == "number" and value is not None:
        return int(value) if getattr(field, "integer", False) else float(value)
    return value


def _seed_widgets(prefix: str, draft: dict[str, Any]) -> None:
    for key, (_, field, value) in _widget_keys(prefix, draft).items():
        if key not in st.session_state:
            st.session_state[key] = _widget_value(field, value)


def _add_lesion(slot_key: str) -> None:
    _collect(slot_key)
    draft = _slot_draft(slot_key)
    draft["lesions"].append({"uid": draft["next_uid"], "values": {}})
    draft["next_uid"] += 1


def _remove_lesion(slot_key: str, uid: int) -> None:
    _collect(slot_key)
    draft = _slot_draft(slot_key)
    draft["lesions"] = [lesion for lesion in draft["lesions"] if lesion["uid"] != uid]


def _press(slot_key: str) -> None:
    _collect(slot_key)
    st.session_state[PRESSED_KEY] = (slot_key, st.session_state[slot_key]["token"])


def _start_from(report: str, findings: dict[str, Any]) -> None:
    """Adjudication: the settled annotation starts as a copy of one of the two."""
    current = st.session_state[CURRENT_KEY]
    st.session_state[DRAFTS_KEY][current["draft"]] = _new_draft(report, findings)
    for key in [k for k in st.session_state if str(k).startswith(f"{current['prefix']}_")]:
        del st.session_state[key]


def _findings_of(draft: dict[str, Any]) -> dict[str, Any]:
    """The draft in the findings shape `check_findings` reads (None: not stated)."""
    return {
        **{f.key: draft["case"].get(f.key) for f in CASE_FIELDS},
        "lesions": [
            {f.key: lesion["values"].get(f.key) for f in LESION_FIELDS}
            for lesion in draft["lesions"]
        ],
    }


def _problems(exc: RatingError) -> list[str]:
    """Each problem of a refusal, its field named by the form's label ("lesion 2, location:
    ..." reads "Lesion 2, Location: ...")."""
    labels = {f.key: f.label for f in FORM.fields} | {"report": "Report", "lesions": "Lesions"}
    shown = []
    for problem in getattr(exc, "problems", None) or [str(exc)]:
        head, sep, rest = problem.partition(": ")
        lesion, comma, key = head.partition(", ")
        if sep and comma and lesion.startswith("lesion ") and key in labels:
            problem = f"Lesion {lesion[7:]}, {labels[key]}: {rest}"
        elif sep and head in labels:
            problem = f"{labels[head]}: {rest}"
        shown.append(problem)
    return shown


# --- widgets, generated from the form's fields --------------------------------------------


def _word(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value).replace("_", " ")


def _field_widget(field: Any, key: str, label: str) -> None:
    help_text = getattr(field, "help", None) or None
    if field.kind == "choice":
        st.selectbox(
            label,
            list(field.choices),
            index=None,
            format_func=_word,
            placeholder=NOT_STATED,
            key=key,
            help=help_text,
        )
    elif field.kind == "multi":
        st.multiselect(
            label,
            list(field.choices),
            format_func=_word,
            placeholder=NOT_STATED,
            key=key,
            help=help_text,
        )
    elif field.kind == "bool":
        st.selectbox(
            label,
            [True, False],
            index=None,
            format_func=_word,
            placeholder=NOT_STATED,
            key=key,
            help=help_text,
        )
    else:
        integer = bool(getattr(field, "integer", False))
        minimum = getattr(field, "minimum", None)
        maximum = getattr(field, "maximum", None)
        step = getattr(field, "step", None)
        cast = int if integer else float
        st.number_input(
            label,
            min_value=cast(minimum) if minimum is not None else None,
            max_value=cast(maximum) if maximum is not None else None,
            value=None,
            step=cast(step) if step is not None else (1 if integer else 0.5),
            format=None if integer else "%g",
            placeholder=NOT_STATED,
            key=key,
            help=help_text,
        )


def _findings_rows(findings: dict[str, Any]) -> list[tuple[str, str]]:
    """A findings object as (field, value) lines for reading (the adjudicator's comparison)."""
    rows = [(f.label, _shown(findings.get(f.key))) for f in CASE_FIELDS]
    for number, lesion in enumerate(findings.get("lesions") or [], start=1):
        for f in LESION_FIELDS:
            rows.append((f"Lesion {number}: {f.label}", _shown(lesion.get(f.key))))
    return rows


def _comparison(findings: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per field of either annotation, their values side by side, the differences
    marked (lesions compared in the order each annotator entered them)."""
    shown = [dict(_findings_rows(f)) for f in findings]
    labels: list[str] = []
    for rows in shown:
        labels += [label for label in rows if label not in labels]
    table = []
    for label in labels:
        values = [rows.get(label, "-") for rows in shown]
        row = {"Field": label}
        row.update({f"Annotation {i}": v for i, v in enumerate(values, start=1)})
        row["Differs"] = "differs" if len(set(values)) > 1 else ""
        table.append(row)
    return table


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(_word(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _word(value)


def _findings_editor(slot_key: str, draft: dict[str, Any], where: str = "") -> None:
    """The findings form inside a st.form: the case's fields, one box per lesion with its
    Remove button, then Add lesion. `where` tells a second form's labels apart."""
    prefix = st.session_state[slot_key]["prefix"]
    tail = f" ({where})" if where else ""
    st.markdown("**Structured findings**")
    case_columns = st.columns(len(CASE_FIELDS))
    for column, field in zip(case_columns, CASE_FIELDS, strict=True):
        with column:
            _field_widget(field, _key(prefix, f"c_{field.key}"), f"{field.label}{tail}")
    for number, lesion in enumerate(draft["lesions"], start=1):
        with st.container(border=True):
            head, remove = st.columns([3, 1], vertical_alignment="center")
            head.markdown(f"**Lesion {number}**")
            remove.form_submit_button(
                f"Remove lesion {number}{tail}",
                key=_key(prefix, f"remove_{lesion['uid']}"),
                on_click=_remove_lesion,
                args=(slot_key, lesion["uid"]),
                icon=":material/delete:",
            )
            per_row = 5
            for start in range(0, len(LESION_FIELDS), per_row):
                row = st.columns(per_row)
                for column, field in zip(row, LESION_FIELDS[start : start + per_row], strict=False):
                    with column:
                        _field_widget(
                            field,
                            _key(prefix, f"l{lesion['uid']}_{field.key}"),
                            f"{field.label} (lesion {number}{', ' + where if where else ''})",
                        )
    if not draft["lesions"]:
        st.caption("No lesion entered.")
    st.form_submit_button(
        f"Add lesion{tail}",
        key=_key(prefix, "add"),
        on_click=_add_lesion,
        args=(slot_key,),
        icon=":material/add:",
    )


# --- the run ---------------------------------------------------------------------------------

_collect(CURRENT_KEY)
_collect(FIX_KEY)
annotating = set(annotation_studies(store, account.id))
studies = [s for s in rater_studies(store, account.id) if s.id in annotating]
if not studies:
    st.title("Annotate cases")
    if account.role == "admin":
        st.info(
            "You are not on the panel of any started annotation study. The results of "
            "annotation studies are on the Annotation results page."
        )
    else:
        st.info("You have no annotation study yet. Your study admin will let you know.")
    st.stop()

# Home's "Go annotating" names the study to open (its OPEN_STUDY_KEY; popped here).
opened = st.session_state.pop("rate_open_study", None)
if len(studies) > 1:
    if opened in [s.id for s in studies]:
        st.session_state["annot_study"] = [s.id for s in studies].index(opened)
    names = [s.name for s in studies]
    chosen = st.selectbox(
        "Study", range(len(studies)), format_func=lambda i: names[i], key="annot_study"
    )
    study = studies[chosen]
else:
    study = studies[0]
synthetic_badge(study.synthetic)


def _drop_session() -> None:
    st.session_state.pop(access.SESSION_KEY, None)


def _submit(current: dict[str, Any]) -> None:
    """Send the current task's draft; on success the next case follows, else the problems
    are listed above the form and the draft stays."""
    draft = st.session_state[DRAFTS_KEY][current["draft"]]
    errors = st.session_state.setdefault(ERRORS_KEY, {})
    try:
        result = submit_annotation(
            store,
            account.id,
            current["token"],
            current["key"],
            draft["report"],
            _findings_of(draft),
            round(time.monotonic() - current["started"], 2),
            session_token=token,
        )
    except AccessDenied as exc:
        _drop_session()
        errors[current["token"]] = [f"{exc} Log in again to send it."]
        return
    except RatingError as exc:
        errors[current["token"]] = _problems(exc)
        return
    errors.pop(current["token"], None)
    if getattr(result, "conflict", False):
        st.session_state[CONFLICT_KEY] = {
            "token": current["token"],
            "stored": getattr(result, "stored", None),
            "report": draft["report"],
            "findings": _findings_of(draft),
            "key": uuid.uuid4().hex,
        }
    st.session_state[DRAFTS_KEY].pop(current["draft"], None)
    st.session_state.pop(CURRENT_KEY, None)
    st.session_state[SAVED_KEY] = current.get("position")


def _correct(fix: dict[str, Any]) -> None:
    """Save the correction of an earlier case: a new annotation superseding the stored one."""
    draft = st.session_state[DRAFTS_KEY][fix["draft"]]
    errors = st.session_state.setdefault(ERRORS_KEY, {})
    try:
        result = correct_annotation(
            store,
            account.id,
            fix["token"],
            fix["key"],
            draft["report"],
            _findings_of(draft),
            None,
            session_token=token,
        )
    except AccessDenied as exc:
        _drop_session()
        errors[fix["draft"]] = [f"{exc} Log in again to send it."]
        return
    except RatingError as exc:
        errors[fix["draft"]] = _problems(exc)
        return
    st.session_state[FIXED_KEY] = (
        f"Correction of case {fix['position']} saved (the earlier annotation stays in the record)."
        if result.created
        else f"Case {fix['position']} already says this; nothing new was saved."
    )
    # The next correction starts again from what is stored, with a key of its own.
    st.session_state[DRAFTS_KEY].pop(fix["draft"], None)
    st.session_state.pop(FIX_KEY, None)


pressed = st.session_state.pop(PRESSED_KEY, None)
working = st.session_state.get(CURRENT_KEY)
if pressed and pressed[0] == CURRENT_KEY and working and working["token"] == pressed[1]:
    _submit(working)
fixing = st.session_state.get(FIX_KEY)
if pressed and pressed[0] == FIX_KEY and fixing and fixing["token"] == pressed[1]:
    _correct(fixing)

try:
    task: AnnotationTask | None = next_annotation(store, account.id, study.id, session_token=token)
except AccessDenied as exc:
    _drop_session()
    st.error(f"{exc} Log in again to go on; what you entered is kept in this tab.")
    st.stop()
except RatingError as exc:
    st.title("Annotate cases")
    st.info(str(exc))
    if _slot_draft(CURRENT_KEY):
        st.caption(
            ":material/save: What you entered on your current case is kept in this tab; it "
            "is filled in again when you come back to the case."
        )
    st.stop()

conflict = st.session_state.get(CONFLICT_KEY)
if conflict is not None:
    with st.container(border=True):
        st.warning(
            "That case was already annotated (in another tab, or before a reconnect), so the "
            "annotation you just gave was NOT saved. Keep the stored one, or replace it with "
            "yours (the earlier one stays in the record).",
            icon=":material/sync_problem:",
        )
        stored = conflict.get("stored")
        stored_column, mine_column = st.columns(2)
        with stored_column:
            plain_text(getattr(stored, "report", "") or "", label="Stored report", key="c-old")
        with mine_column:
            plain_text(conflict["report"], label="Your report (not saved)", key="c-mine")
        keep, replace = st.columns(2)
        if replace.button("Replace the stored annotation with mine", key="annot_replace"):
            try:
                correct_annotation(
                    store,
                    account.id,
                    conflict["token"],
                    conflict["key"],
                    conflict["report"],
                    conflict["findings"],
                    None,
                    session_token=token,
                )
            except AccessDenied as exc:
                _drop_session()
                st.error(f"{exc} Log in again; your annotation is kept in this tab.")
            except RatingError as exc:
                st.error(str(exc))
            else:
                st.session_state.pop(CONFLICT_KEY, None)
                st.success("Your annotation replaced the stored one (both are in the record).")
        if keep.button("Keep the stored annotation", key="annot_keep"):
            st.session_state.pop(CONFLICT_KEY, None)
            st.rerun()

if task is None:
    st.title("Annotate cases")
    saved = st.session_state.pop(SAVED_KEY, None)
    if saved:
        st.success(f"Case {saved} saved.", icon=":material/check_circle:")
    st.success("All your cases of this study are done. Thank you!")
    st.caption(RESEARCH_NOTICE)
    st.stop()

# Per-task state: a counter for widget keys, the idempotency key and the start time.
current = st.session_state.get(CURRENT_KEY)
if current is None or current["token"] != task.token:
    sequence = st.session_state.get("annot_sequence", 0) + 1
    st.session_state["annot_sequence"] = sequence
    current = {
        "token": task.token,
        "seq": sequence,
        "key": uuid.uuid4().hex,
        "started": time.monotonic(),
        "position": task.position,
        "prefix": f"an_{sequence}",
        "draft": task.token,
    }
    st.session_state[CURRENT_KEY] = current
seq = current["seq"]
drafts = st.session_state.setdefault(DRAFTS_KEY, {})
candidates = list(task.candidates or []) if task.adjudication else []
if task.token not in drafts:
    if candidates:
        first_report, first_findings = candidates[0]
        drafts[task.token] = _new_draft(first_report, first_findings)
    else:
        drafts[task.token] = _new_draft(task.draft_report or "", task.draft_findings)
draft = drafts[task.token]
_seed_widgets(current["prefix"], draft)

st.title("Adjudicate annotations" if task.adjudication else "Annotate cases")
saved = st.session_state.pop(SAVED_KEY, None)
if saved:
    st.success(f"Case {saved} saved.", icon=":material/check_circle:")
st.markdown(f"**Case {task.position} of {task.total}**")
st.progress(task.done / max(task.total, 1), text=f"{task.done} / {task.total} done")

# Shown once, after the refused submit (the next button press makes a new attempt).
problems = st.session_state.get(ERRORS_KEY, {}).pop(task.token, None)
if problems:
    # Every problem at once, each naming its field; the form below keeps what was entered.
    st.error(
        "Not saved. Please fix:\n\n" + "\n".join(f"- {p}" for p in problems) + f"\n\n{KEPT_NOTE}",
        icon=":material/error:",
    )

if candidates:
    st.markdown(
        "**The two annotations of this case** (anonymous, in random order). Write the "
        "settled annotation in the form below; it starts as a copy of annotation 1."
    )
    columns = st.columns(len(candidates))
    for number, (column, (report, findings)) in enumerate(
        zip(columns, candidates, strict=True), start=1
    ):
        with column:
            plain_text(report, label=f"Annotation {number}", key=f"cand-{number}", report=True)
            st.button(
                f"Start from annotation {number}",
                key=f"annot_from_{number}_{seq}",
                on_click=_start_from,
                args=(report, findings),
            )
    # Every field of both, the differences marked. A static table, so the words are on the
    # page; its cells are Markdown, and hold only field labels and vocabulary values
    # (findings are stored through check_findings), never free text.
    st.table(
        _comparison([findings for _, findings in candidates]),
        border="horizontal",
        hide_index=True,
    )

if task.guidelines:
    with st.expander("Guidelines", icon=":material/menu_book:"):
        plain_text(task.guidelines, key="guidelines")
if task.question:
    plain_text(task.question, label="Question", key="question")

with st.form(f"annot_form_{seq}", enter_to_submit=False, border=False):
    media_column, report_column = st.columns([2, 3], gap="large")
    with media_column:
        try:
            if not task.media:
                raise MediaUnreadable("the case has no media")
            show_media([item.path for item in task.media], task.modality)
        except MediaUnreadable as exc:
            reported = st.session_state.setdefault(REPORTED_KEY, set())
            if task.token not in reported:
                report_media_problem(store, account.id, task.token, exc)
                reported.add(task.token)
            # No file name or error text here: it could name the case's source.
            st.error(
                "The images of this case cannot be shown. The study admin has been told.",
                icon=":material/broken_image:",
            )
    with report_column:
        if task.adjudication:
            label = "Settled report"
        elif task.source == "corrected":
            label = "Report (correct the draft)"
        else:
            label = "Report (write the reference report)"
        st.text_area(label, key=_key(current["prefix"], "report"), height=260)
    _findings_editor(CURRENT_KEY, draft)
    st.form_submit_button(
        "Submit annotation" if not task.adjudication else "Submit settled annotation",
        key=_key(current["prefix"], "submit"),
        type="primary",
        on_click=_press,
        args=(CURRENT_KEY,),
        shortcut="Ctrl+Enter",
    )
st.caption(
    "Keys: Tab moves between fields; type in a select box to filter and press Enter to pick; "
    "Ctrl+Enter submits."
)

with st.expander("Change my previous annotation", expanded=FIX_KEY in (pressed or ())):
    # A correction is a new annotation that supersedes the stored one; nothing is overwritten.
    try:
        previous = last_annotated_task(store, account.id, study.id, session_token=token)
    except RatingError as exc:
        previous = None
        st.error(str(exc))
    fixed = st.session_state.pop(FIXED_KEY, None)
    if fixed:
        st.success(fixed)
    if previous is None:
        st.caption("Nothing submitted yet.")
    else:
        earlier, stored = previous
        fix = st.session_state.get(FIX_KEY)
        if fix is None or fix["token"] != earlier.token:
            sequence = st.session_state.get("annot_sequence", 0) + 1
            st.session_state["annot_sequence"] = sequence
            fix = {
                "token": earlier.token,
                "key": uuid.uuid4().hex,
                "position": earlier.position,
                "prefix": f"fix_{sequence}",
                "draft": f"fix:{earlier.token}",
            }
            st.session_state[FIX_KEY] = fix
            drafts[fix["draft"]] = _new_draft(stored.report, form_findings(stored.findings))
        fix_draft = drafts[fix["draft"]]
        _seed_widgets(fix["prefix"], fix_draft)
        st.caption(f"Case {earlier.position} as you last saved it.")
        fix_problems = st.session_state.get(ERRORS_KEY, {}).pop(fix["draft"], None)
        if fix_problems:
            st.error(
                "Not saved. Please fix:\n\n" + "\n".join(f"- {p}" for p in fix_problems),
                icon=":material/error:",
            )
        with st.form(f"annot_fix_form_{fix['prefix']}", enter_to_submit=False, border=False):
            st.text_area("Corrected report", key=_key(fix["prefix"], "report"), height=160)
            _findings_editor(FIX_KEY, fix_draft, "correction")
            st.form_submit_button(
                "Save correction",
                key=_key(fix["prefix"], "submit"),
                on_click=_press,
                args=(FIX_KEY,),
            )
st.caption(RESEARCH_NOTICE)
