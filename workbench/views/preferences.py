"""Preferences: harvest a study's judgments into DPO pairs under a policy, preview, export."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime

import streamlit as st

from studies.preferences.harvest import (
    HarvestPolicy,
    PreferenceError,
    export_preferences,
    harvest_preferences,
)
from studies.readers.design import study_design
from studies.readers.form import criteria
from studies.readers.progress import list_studies
from studies.store.media import MediaPathError, path_inside
from studies.store.settings import get_settings
from workbench import access
from workbench.ui import disclaimer, store, synthetic_badge

st.title("Preference pairs")
access.require_role("admin")
disclaimer()
st.caption(
    "Turns the current judgments of a reader study into (prompt with images, chosen report, "
    "rejected report) pairs in TRL's vision preference format, split into train and "
    "validation by case."
)
workbench_store = store()
studies = list_studies(workbench_store)
if not studies:
    st.info("No reader study yet: create and run one on the Reader studies page first.")
    st.stop()

names = [s.name for s in studies]
study = st.selectbox("Study", names, key="prefs_study")
# The margin criteria are the study's own form's criteria.
form_criteria = criteria(study_design(workbench_store, study).form)
labels = {c.key: c.label for c in form_criteria}

with st.form("prefs_policy"):
    left, middle, right = st.columns(3)
    min_raters = left.number_input("Minimum raters per pair", 1, 50, 1, key="prefs_min_raters")
    min_agreement = middle.slider(
        "Agreement required",
        0.0,
        1.0,
        0.0,
        0.05,
        key="prefs_min_agreement",
        help="Share of an item's raters on the winning side; 1 = unanimous.",
    )
    margin_on = right.checkbox("Likert-margin filter", key="prefs_margin_on")
    margin = right.number_input("Minimum Likert margin", 0.0, 4.0, 1.0, 0.25, key="prefs_margin")
    margin_criteria = right.multiselect(
        "Margin criteria",
        list(labels),
        default=list(labels),
        format_func=labels.get,
        key="prefs_margin_criteria",
        help="The criteria of the study's rating form the margin averages over.",
    )
    ties = left.radio(
        "Ties",
        ["drop", "keep"],
        key="prefs_ties",
        help="keep: both orders, for an IPO-style loss (train with --loss-type ipo).",
    )
    both_bad = middle.radio(
        "Both unacceptable",
        ["drop", "reference"],
        key="prefs_both_bad",
        help="reference: the human reference report as chosen against each report.",
    )
    automatic = right.checkbox(
        "Add automatic cold-start pairs",
        key="prefs_automatic",
        help="Reference as chosen vs a report with a clinically significant error found by "
        "the clinical metric; labelled automatic.",
    )
    include_gold = right.checkbox("Include gold items", key="prefs_gold")
    validation_fraction = left.slider(
        "Validation share of cases", 0.0, 0.5, 0.1, 0.05, key="prefs_validation"
    )
    seed = middle.number_input("Split seed", 0, 2**31 - 1, 0, key="prefs_seed")
    st.form_submit_button("Apply policy", icon=":material/filter_alt:")

policy = HarvestPolicy(
    min_raters=int(min_raters),
    min_agreement=float(min_agreement),
    ties=ties,
    both_bad=both_bad,
    min_likert_margin=float(margin) if margin_on else None,
    # All of the form's criteria: None, as in an export made without choosing.
    likert_criteria=None if set(margin_criteria) == set(labels) else list(margin_criteria),
    include_gold=include_gold,
    automatic=automatic,
    validation_fraction=float(validation_fraction),
    seed=int(seed),
)
try:
    result = harvest_preferences(workbench_store, study, policy)
except PreferenceError as exc:
    st.error(str(exc))
    st.stop()

synthetic_badge(result.synthetic)
counts = result.counts
columns = st.columns(5)
columns[0].metric("Pairs", counts["pairs"])
columns[1].metric("Train", counts["train"])
columns[2].metric("Validation", counts["validation"])
columns[3].metric("Automatic", counts["automatic_pairs"])
columns[4].metric("Judged items", f"{counts['items_judged']}/{counts['items']}")
if counts["dropped"]:
    st.caption(
        "Dropped: "
        + ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in counts["dropped"].items())
    )

st.subheader("Preview")
if result.pairs:
    st.dataframe(result.preview(50), hide_index=True)
elif not counts["items_judged"] and not policy.automatic:
    st.info(
        f"No judgments yet: none of the {counts['items']} items of this study has been judged. "
        "Follow the raters' progress on the Reader studies page, or tick 'Add automatic "
        "cold-start pairs' for pairs that need no judgments."
    )
else:
    st.info("No pair passes this policy; relax it (fewer raters, lower agreement, keep ties).")

st.subheader("Export")
stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
# A shell-friendly folder name: the training command below is meant to be pasted.
slug = re.sub(r"[^A-Za-z0-9._-]+", "-", study).strip("-.") or "study"
default_out = get_settings().data_dir / "preferences" / f"{slug}-{stamp}"
with st.form("prefs_export"):
    out_dir = st.text_input("Output folder", str(default_out), key="prefs_out")
    exported = st.form_submit_button(
        "Export", type="primary", icon=":material/download:", disabled=not result.pairs
    )
if exported:
    try:
        # Written only inside the data folder: a stolen admin session writes nowhere else.
        target = path_inside(get_settings().data_dir, out_dir, what="Output folder")
        summary = export_preferences(result, target)
    except (PreferenceError, MediaPathError) as exc:
        st.error(str(exc))
    else:
        st.success(
            f"Wrote {summary.out_dir}: {summary.n_train} train and {summary.n_validation} "
            f"validation pairs, {summary.n_images} images (data sha256 "
            f"{summary.data_hash[:16]}). Train with `medvision train dpo --prefs "
            f"{shlex.quote(str(summary.out_dir))} --model MODEL --out ADAPTER` or on the "
            "Training page."
        )
