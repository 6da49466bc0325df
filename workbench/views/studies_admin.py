"""Reader studies (admin): create, enrol and invite raters, start, progress, pause/resume/close,
flagged reports, cases raters flagged as not assessable, media raters could not see, and the
raw judgments for download.

Nothing destructive happens on one click or by default: closing a study, taking a rater off
the panel (deactivate, replace), handing on overdue tasks and deactivating an account each
need a confirmation box ticked first, and no select box or radio starts on a destructive
choice."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.exports.names import file_slug
from studies.readers import accounts
from studies.readers.accounts import AccountError, AuthError
from studies.readers.design import (
    FLAG_POLICIES,
    StudyDesign,
    StudyError,
    create_study,
    design_choices,
    parse_gold_lines,
    study_design,
)
from studies.readers.enrolment import enrol_rater, study_raters
from studies.readers.flags import REASONS as FLAG_REASONS
from studies.readers.flags import study_flags
from studies.readers.form import DEFAULT_GUIDELINES, FormError, default_form, parse_form
from studies.readers.lifecycle import set_study_status, start_study, workload_preview
from studies.readers.media_problems import media_problems
from studies.readers.progress import flagged_reports, list_studies, study_progress
from studies.readers.rating import export_judgments
from workbench import access

admin = access.require_role("admin")
store = access.app_store()

FLAG_POLICY_LABELS = {
    "reassign": "hand the case to another rater who has not seen it (keeps the overlap)",
    "exclude": "leave that copy out of the analysis (counted as excluded)",
}


def confirmed(label: str, key: str) -> bool:
    """A box to tick before a destructive button is enabled (unticked at every start)."""
    return st.checkbox(label, value=False, key=key)


st.title("Reader studies")
st.caption(
    f"Blinded pairwise reading: raters never see which system wrote a report. {RESEARCH_NOTICE}"
)

tab_studies, tab_new, tab_raters = st.tabs(["Studies", "New study", "Raters and invites"])


def _invite_link(token: str) -> str:
    try:
        base = str(st.context.url or "").split("?")[0].rsplit("/", 1)[0]
    except Exception:  # noqa: BLE001 - older servers have no st.context.url
        base = ""
    return f"{base}/invite?token={token}" if base else f"/invite?token={token}"


def _panel_changes(study_id: int) -> None:
    """Add, deactivate or replace raters of a running study and hand on overdue tasks; each
    change is an amendment (studies.readers.panel)."""
    from datetime import timedelta

    from studies.readers.amendments import amendment_lines
    from studies.readers.panel import (
        add_rater,
        deactivate_rater,
        panel_members,
        reclaim_overdue,
        replace_rater,
    )

    with st.expander("Change the panel (each change is a recorded, hashed amendment)"):
        members = panel_members(store, study_id)
        active = [m.username for m in members if m.active]
        st.caption(
            "Active: " + (", ".join(active) or "none")
            + "".join(f"; left: {m.username}" for m in members if not m.active)
        )  # fmt: skip
        others = [r for r in design_choices(store).raters if r not in active]
        cols = st.columns(3)
        joining = cols[0].selectbox("Rater to add", ["-", *others], key="panel_add")
        leaving = cols[1].selectbox("Rater to take off", ["-", *active], key="panel_remove")
        days = cols[2].number_input("Overdue after days", 0.5, 365.0, 7.0, key="panel_days")
        sure = confirmed(
            "I confirm: taking a rater off the panel (deactivate, replace) or handing on "
            "overdue tasks moves their open tasks to others; it cannot be undone",
            key="panel_confirm",
        )
        buttons = st.columns(4)
        try:
            change = None
            if buttons[0].button("Add", key="panel_add_go", disabled=joining == "-"):
                change = add_rater(store, study_id, joining, actor_id=admin.id)
            if buttons[1].button(
                "Deactivate", key="panel_remove_go", disabled=leaving == "-" or not sure
            ):
                change = deactivate_rater(store, study_id, leaving, actor_id=admin.id)
            if buttons[2].button(
                "Replace", key="panel_replace_go", disabled="-" in (joining, leaving) or not sure
            ):
                change = replace_rater(store, study_id, leaving, joining, actor_id=admin.id)
            if buttons[3].button(
                "Hand on overdue tasks", key="panel_reclaim_go", disabled=not sure
            ):
                change = reclaim_overdue(
                    store, study_id, timedelta(days=float(days)), actor_id=admin.id
                )
            if change is not None:
                st.session_state["admin_flash"] = change.summary()
                st.rerun()
        except StudyError as exc:
            st.error(str(exc))
        lines = amendment_lines(store, study_id)
        st.caption("Amendments: " + ("; ".join(lines) if lines else "none (the design as frozen)"))
    _adjudication(study_id, [m.username for m in members])


def _gold_drift(study_id: int) -> None:
    """Gold accuracy per rater and week against the study's baseline; drift alerts; raters
    below the calibration threshold can be let in (studies.readers.calibration)."""
    from studies.readers.calibration import gold_drift
    from studies.readers.panel import admit_rater

    report = gold_drift(store, study_id)
    for alert in report.alerts:
        st.warning(f"Rater drift: {alert}.")
    with st.expander("Gold accuracy per rater and week, calibration"):
        if report.baseline is None:
            st.caption("No gold judgment yet.")
        else:
            st.caption(f"Study baseline (all raters, gold items): {report.baseline:.0%}")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "rater": w.rater,
                            "week from": f"{w.start:%Y-%m-%d}",
                            "gold": w.n,
                            "accuracy": f"{w.accuracy:.0%}",
                        }
                        for w in report.windows
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        who = st.text_input("Let a rater below the calibration threshold in", key="calib_admit")
        if st.button("Let in", key="calib_admit_go", disabled=not who.strip()):
            try:
                opened = admit_rater(store, study_id, who.strip(), actor_id=admin.id)
            except StudyError as exc:
                st.error(str(exc))
            else:
                st.session_state["admin_flash"] = f"{who.strip()}: {opened} tasks opened."
                st.rerun()


def _adjudication(study_id: int, on_panel: list[str]) -> None:
    """Send disagreeing items to a senior rater's queue (studies.readers.adjudication)."""
    from studies.readers.adjudication import (
        AdjudicationRule,
        adjudication_queue,
        queue_adjudication,
    )

    with st.expander("Adjudication (disagreements to a senior rater)"):
        queues = adjudication_queue(store, study_id)
        for queue in queues:
            st.caption(f"{queue.adjudicator}: {queue.done} of {queue.queued} adjudicated")
        seniors = [q.adjudicator for q in queues]
        choices = seniors + [
            r for r in design_choices(store).raters if r not in on_panel and r not in seniors
        ]
        cols = st.columns(3)
        senior = cols[0].selectbox("Senior rater", ["-", *choices], key="adj_senior")
        split = cols[1].checkbox("Preference split", value=True, key="adj_split")
        spread = cols[2].number_input("Harm spread at least", 1, 4, 2, key="adj_spread")
        if st.button("Send disagreements", key="adj_go", disabled=senior == "-"):
            try:
                change = queue_adjudication(
                    store,
                    study_id,
                    senior,
                    AdjudicationRule(preference_split=split, harm_spread=int(spread)),
                    actor_id=admin.id,
                )
            except StudyError as exc:
                st.error(str(exc))
            else:
                st.session_state["admin_flash"] = (
                    f"{change.added} items sent to {senior} for adjudication "
                    f"(amendment {change.number})."
                )
                st.rerun()


with tab_studies:
    summaries = list_studies(store)
    if not summaries:
        st.info("No reader study yet: create one in the 'New study' tab.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "study": s.name,
                        "status": s.status,
                        "raters": s.n_raters,
                        "done": s.n_done,
                        "assigned": s.n_assignments,
                        "config hash": (s.config_hash or "")[:16],
                    }
                    for s in summaries
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        names = [s.name for s in summaries]
        chosen = st.selectbox("Study", names, key="admin_study")
        summary = summaries[names.index(chosen)]
        st.markdown(f"**Status:** {summary.status}")
        if flash := st.session_state.pop("admin_flash", None):
            st.success(flash)
        if summary.config_hash:
            st.caption(f"Frozen configuration sha256: `{summary.config_hash}`")

        actions = st.columns(4)
        try:
            if summary.status == "draft":
                enrolled = study_raters(store, summary.id)
                st.markdown(f"**Enrolled raters:** {', '.join(enrolled) or 'none yet'}")
                st.caption(f"Workload: {workload_preview(store, summary.id)}")
                choices = [r for r in design_choices(store).raters if r not in enrolled]
                add = st.multiselect("Enrol raters", choices, key="admin_enrol")
                if st.button("Enrol", key="admin_enrol_go", disabled=not add):
                    for username in add:
                        enrol_rater(store, summary.id, username, actor_id=admin.id)
                    st.rerun()
                if actions[0].button("Start study", type="primary", key="admin_start"):
                    report = start_study(store, summary.id, actor_id=admin.id)
                    st.session_state["admin_flash"] = report.summary()
                    st.rerun()
            if summary.status == "active" and actions[1].button("Pause", key="admin_pause"):
                set_study_status(store, summary.id, "pause", actor_id=admin.id)
                st.rerun()
            if summary.status == "paused" and actions[1].button("Resume", key="admin_resume"):
                set_study_status(store, summary.id, "resume", actor_id=admin.id)
                st.rerun()
            if summary.status in ("active", "paused"):
                closing = actions[3].checkbox(
                    "Confirm: close for good", value=False, key="admin_close_confirm"
                )
                if actions[2].button("Close", key="admin_close", disabled=not closing):
                    set_study_status(store, summary.id, "close", actor_id=admin.id)
                    st.session_state["admin_flash"] = (
                        f"Study {summary.name!r} is closed: raters can no longer submit."
                    )
                    st.rerun()
        except StudyError as exc:
            st.error(str(exc))

        if summary.status in ("active", "paused"):
            _panel_changes(summary.id)
            _gold_drift(summary.id)
        if summary.status != "draft":
            progress = study_progress(store, summary.id)
            st.subheader("Progress per rater")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "rater": r.username,
                            "name": r.display_name,
                            "panel": (
                                r.role if r.role != "rater" else ("active" if r.active else "left")
                            ),
                            "done": r.done,
                            "assigned": r.assigned,
                            "flagged": r.flagged,
                            "remaining": r.remaining,
                            "last judgment": (
                                r.last_submitted_at.strftime("%Y-%m-%d %H:%M")
                                if r.last_submitted_at
                                else "none yet"
                            ),
                        }
                        for r in progress.raters
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
            st.subheader("Progress per pair")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "system A": p.system_a,
                            "system B": p.system_b,
                            "items": p.items,
                            "judged": p.done,
                            "flagged": p.flagged,
                            "needed": p.needed,
                        }
                        for p in progress.pairs
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
            flagged = flagged_reports(store, summary.id)
            st.subheader(f"Flagged reports ({len(flagged)})")
            if flagged:
                st.caption("These reports name a model or system; their cases were left out.")
                st.dataframe(
                    pd.DataFrame([f.__dict__ for f in flagged]), hide_index=True, width="stretch"
                )
            else:
                st.caption("No report named a model or system.")
            flags = study_flags(store, summary.id)
            st.subheader(f"Cases raters could not assess ({len(flags)})")
            if flags:
                st.caption(
                    "Flagged by a rater (image quality, media broken, other); 'what happened' "
                    "follows the study's flag policy."
                )
                st.dataframe(
                    pd.DataFrame(
                        [
                            {
                                "when": f.at.strftime("%Y-%m-%d %H:%M") if f.at else "",
                                "case": f.case_key,
                                "rater": f.rater,
                                "position": f.position,
                                "kind": f.kind,
                                "reason": FLAG_REASONS.get(f.reason, f.reason),
                                "note": f.note,
                                "what happened": f.what_happened,
                            }
                            for f in flags
                        ]
                    ),
                    hide_index=True,
                    width="stretch",
                )
            else:
                st.caption("No rater has flagged a case.")
            problems = media_problems(store, summary.id)
            st.subheader(f"Media problems ({len(problems)})")
            if problems:
                st.caption(
                    "Raters could not see these cases' images and went on without them. Fix "
                    "or re-import the files; the raters can then try the cases again."
                )
                st.dataframe(
                    pd.DataFrame([p.__dict__ for p in problems]), hide_index=True, width="stretch"
                )
            else:
                st.caption("Every case's media could be shown so far.")
            st.subheader("Raw judgments")
            st.caption(
                "One row per judgment (corrections included, marked by 'superseded'): rater, "
                "case, both systems, position, preference, Likert values, comment, time on "
                "task, timestamps, config hash."
            )
            downloads = st.columns(2)
            slug = file_slug(summary.name, default="study")
            downloads[0].download_button(
                "Download CSV",
                export_judgments(store, summary.id, "csv"),
                file_name=f"{slug}-judgments.csv",
                mime="text/csv",
                key="admin_csv",
            )
            downloads[1].download_button(
                "Download JSONL",
                export_judgments(store, summary.id, "jsonl"),
                file_name=f"{slug}-judgments.jsonl",
                mime="application/jsonl",
                key="admin_jsonl",
            )
        else:
            with st.expander("Design (frozen and hashed at the start)"):
                st.json(study_design(store, summary.id).to_dict())


with tab_new:
    choices = design_choices(store)
    if not choices.splits or len(choices.systems) < 2:
        st.info("A study needs a benchmark and at least two systems with generated reports.")
    else:
        with st.form("new_study"):
            name = st.text_input("Name (raters see it; do not name systems)", key="new_name")
            benchmark = st.selectbox("Benchmark", sorted(choices.splits), key="new_benchmark")
            split = st.text_input("Split", value="test", key="new_split")
            systems = st.multiselect("Systems (two or more)", choices.systems, key="new_systems")
            comparisons = st.radio(
                "Comparisons",
                ["all_pairs", "comparator"],
                format_func=lambda v: "all pairs" if v == "all_pairs" else "each vs a comparator",
                horizontal=True,
                key="new_comparisons",
            )
            comparator = st.selectbox(
                "Comparator (for 'each vs a comparator')",
                [""] + choices.systems,
                key="new_comparator",
            )
            left, middle, right = st.columns(3)
            overlap = left.number_input("Raters per pair (overlap)", 1, 20, 2, key="new_overlap")
            seed = middle.number_input("Seed", 0, 2**31 - 1, 0, key="new_seed")
            sample = right.number_input(
                "Sample of cases (0 = whole split)", 0, 100000, 0, key="new_sample"
            )
            stratify = st.checkbox("Stratify the sample by finding", value=True, key="new_strat")
            duplicates = st.slider(
                "Duplicate items (sides swapped, for intra-rater reliability)",
                0.0,
                0.5,
                0.1,
                0.05,
                key="new_dups",
            )
            washout_left, washout_right = st.columns(2)
            washout_cases = washout_left.number_input(
                "Washout: a duplicate at least this many tasks after its case (0 = a third of "
                "the rater's tasks)",
                0,
                100000,
                0,
                key="new_washout_cases",
            )
            washout_days = washout_right.number_input(
                "Washout: a duplicate no sooner than this many days after its case", 0.0, 365.0,
                0.0, 1.0, key="new_washout_days",
            )  # fmt: skip
            gold_text = st.text_area(
                "Gold items: one per line 'case_key, better system, worse system'",
                key="new_gold",
            )
            calibration_text = st.text_area(
                "Calibration (training) items, judged first with the reference answer shown "
                "after each: one per line 'case_key, better system, worse system'",
                key="new_calibration",
            )
            calibration_threshold = st.number_input(
                "Entry threshold: share of training answers that must match the reference "
                "before the main cases (0 = none)",
                0.0,
                1.0,
                0.0,
                0.05,
                key="new_calibration_threshold",
            )
            flag_policy = st.radio(
                "When a rater flags a case they cannot assess",
                FLAG_POLICIES,
                format_func=FLAG_POLICY_LABELS.get,
                key="new_flag_policy",
            )
            guidelines = st.text_area(
                "Guidelines shown to raters", value=DEFAULT_GUIDELINES, height=220, key="new_guide"
            )
            form_upload = st.file_uploader(
                "Rating form (optional .toml or .json: criteria with key, label, question, "
                "anchors 1-5; harm = true on the harm criterion)",
                type=["toml", "json"],
                key="new_form",
            )
            create = st.form_submit_button("Create study", type="primary")
        if create:
            try:
                form = default_form()
                if form_upload is not None:
                    suffix = "." + form_upload.name.rsplit(".", 1)[-1]
                    text = form_upload.getvalue().decode("utf-8", errors="replace")
                    form = parse_form(text, suffix, source=form_upload.name)
                design = StudyDesign(
                    name=name,
                    benchmark=benchmark,
                    systems=list(systems),
                    split=split.strip(),
                    comparisons=comparisons,
                    comparator=comparator or None,
                    overlap=int(overlap),
                    seed=int(seed),
                    sample_size=int(sample) or None,
                    stratify=stratify,
                    gold=parse_gold_lines(gold_text),
                    duplicate_fraction=float(duplicates),
                    washout_cases=int(washout_cases) or None,
                    washout_days=float(washout_days),
                    calibration=parse_gold_lines(calibration_text, "calibration"),
                    calibration_threshold=float(calibration_threshold),
                    flag_policy=flag_policy,
                    guidelines=guidelines,
                    form=form,
                )
                create_study(store, design, actor_id=admin.id)
            except (StudyError, FormError) as exc:
                st.error(str(exc))
            else:
                st.success(f"Created the draft study {name!r}: enrol raters, then start it.")

    # How many raters and cases a study needs (studies/reader_stats/power.py).
    with st.expander("Study size: power for a win rate against the comparator"):
        left, middle, right = st.columns(3)
        effect = left.number_input(
            "Win-rate difference to detect (from 0.5)", 0.01, 0.45, 0.05, 0.01, key="power_effect"
        )
        per_case = left.number_input("Raters per case and pair", 1, 20, 2, key="power_per_case")
        pilots = [s.name for s in list_studies(store)]
        pilot = middle.selectbox(
            "Pilot study", ["none: assumed values", *pilots], key="power_pilot"
        )
        base = right.text_input("The pilot's comparator system", key="power_comparator")
        if st.button("Compute power", key="power_run"):
            from studies.reader_stats.data import JudgmentsError
            from studies.reader_stats.mrmc import MRMCError
            from studies.reader_stats.power import win_rate_power
            from studies.readers.judgments import study_judgments

            try:
                judgments = study_judgments(store, pilot) if pilot in pilots else None
                grid, sentence, params = win_rate_power(
                    judgments,
                    base.strip() or None,
                    float(effect),
                    [3, 4, 6, 8, 12, 16, 20],
                    [50, 100, 200, 400, 800],
                    readers_per_case=int(per_case),
                )
            except (JudgmentsError, MRMCError) as exc:
                st.error(str(exc))
            else:
                st.markdown(f"**{sentence}**")
                shown = grid.map(lambda v: f"{v:.2f}")
                shown.attrs = {}  # the grid's optimistic end travels there; not shown here
                st.dataframe(shown, width="stretch")
                st.caption(
                    f"Rows: raters; columns: cases. OR test with Hillis df; {params.source}."
                )


with tab_raters:
    st.subheader("Accounts")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "username": a.username,
                    "name": a.display_name,
                    "role": a.role,
                    "active": a.active,
                    # After failed log-ins the next try waits (seconds); there is no lock.
                    "next log-in try after": a.locked_until,
                }
                for a in accounts.list_accounts(store)
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.subheader("Manage an account")
    usernames = [a.username for a in accounts.list_accounts(store)]
    with st.form("manage_account"):
        # Nothing chosen at first: one click on Apply changes no account.
        target = st.selectbox(
            "Account", usernames, index=None, placeholder="Choose an account", key="acc_target"
        )
        action = st.radio(
            "Action",
            ["set password", "reactivate", "deactivate"],
            index=None,
            horizontal=True,
            key="acc_action",
        )
        new_password = st.text_input(
            "New password (for 'set password'; also lifts a lockout)",
            type="password",
            key="acc_password",
        )
        sure = st.checkbox(
            "I confirm deactivating: the account can no longer log in and its sessions end",
            value=False,
            key="acc_confirm",
        )
        apply = st.form_submit_button("Apply")
    if apply:
        info = accounts.get_account(store, target) if target else None
        try:
            if info is None or action is None:
                raise AccountError("choose an account and an action first")
            if info.id == admin.id and action == "deactivate":
                raise AccountError("you cannot deactivate your own account")
            if action == "deactivate" and not sure:
                raise AccountError(
                    f"tick 'I confirm deactivating' to deactivate {target}; nothing was changed"
                )
            if action == "set password":
                accounts.set_password(store, info.id, new_password, actor_id=admin.id)
            else:
                accounts.set_active(store, info.id, action == "reactivate", actor_id=admin.id)
        except AccountError as exc:
            st.error(str(exc))
        else:
            st.success(f"{target}: {action} done.")

    st.subheader("Invite")
    drafts = [s.name for s in list_studies(store) if s.status == "draft"]
    with st.form("invite"):
        role = st.radio("Role", ["rater", "admin"], horizontal=True, key="inv_role")
        username = st.text_input("Username (optional: fixes it for the invitee)", key="inv_name")
        study_name = st.selectbox(
            "Enrol in study (draft studies only)", [""] + drafts, key="inv_study"
        )
        hours = st.number_input("Link valid for hours", 1, 24 * 30, 72, key="inv_hours")
        invite = st.form_submit_button("Create invite link", type="primary")
    if invite:
        study_id = next((s.id for s in list_studies(store) if s.name == study_name), None)
        try:
            token = accounts.create_invite(
                store,
                role=role,
                username=username or None,
                study_id=study_id,
                created_by=admin.id,
                hours=float(hours),
            )
        except (AccountError, AuthError) as exc:
            st.error(str(exc))
        else:
            st.success("Send this link to the invitee; it works once and is shown only now.")
            st.code(_invite_link(token), language=None)
