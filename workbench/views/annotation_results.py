"""Annotation results (admin): per annotation study, where each case's expert reference
stands, agreement per field between the two annotators of each case, sending the cases they
disagree on to an adjudicator, and the clinical extractor's validation against the experts'
own findings (`medvision extract --validate` prints the same table).

Everything shown is computed in `studies.readers.annotation_results`; this page only lays it
out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import streamlit as st

from model.notice import RESEARCH_NOTICE
from studies.readers.annotation import is_annotation_study
from studies.readers.annotation_results import (
    annotation_agreement,
    expert_references,
    export_annotations,
    queue_annotation_adjudication,
    validate_extractor,
)
from studies.readers.design import StudyError
from studies.readers.progress import list_studies
from workbench import access
from workbench.ui import synthetic_badge

account = access.require_role("admin")
store = access.app_store()

st.title("Annotation results")
studies = [s for s in list_studies(store) if is_annotation_study(store, s.id)]
if not studies:
    st.info(
        "No annotation study yet. Create one with `medvision studies create --kind annotation` "
        "(one model system: its reports are what the clinicians correct)."
    )
    st.stop()
names = [s.name for s in studies]
chosen = st.selectbox(
    "Annotation study", range(len(studies)), format_func=lambda i: names[i], key="annres_study"
)
study = studies[chosen]
st.caption(f"Status: {study.status} · {study.n_done} of {study.n_assignments} tasks done")


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.0f}%"


def _num(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def _ci(low: float, high: float, shown: Any = _num) -> str:
    return "-" if low != low or high != high else f"{shown(low)} to {shown(high)}"


references = expert_references(store, study.id)
st.subheader("Expert references")
counts = Counter(r.status for r in references)
st.caption(
    ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    + ". A case in disagreement gets its reference when the adjudicator settles it."
)
st.dataframe(
    [
        {"Case": r.case_key, "Status": r.status, "Differences": "; ".join(r.reasons)}
        for r in references
    ],
    hide_index=True,
)

disputed = counts.get("disagreement", 0)
if disputed:
    with st.form("annres_adjudicate", border=True):
        st.markdown(f"**{disputed} case(s) in disagreement**: send them to an adjudicator")
        senior = st.text_input(
            "Adjudicator (username; a senior annotator who is not on the panel)",
            key="annres_senior",
        )
        if st.form_submit_button("Send to the adjudicator"):
            try:
                change = queue_annotation_adjudication(
                    store, study.id, senior.strip(), actor_id=account.id
                )
            except StudyError as exc:
                st.error(str(exc))
            else:
                st.success(change.summary())

st.subheader("Agreement per field")
agreement = annotation_agreement(store, study.id)
st.dataframe(
    [
        {
            "Field": a.field,
            "Level": a.level,
            "n": a.n,
            "Agreement": _pct(a.agreement),
            "Agreement 95% CI": _ci(a.agreement_low, a.agreement_high, _pct),
            "Cohen kappa": _num(a.cohen_kappa),
            "Cohen 95% CI": _ci(a.cohen_low, a.cohen_high),
            "Fleiss kappa": _num(a.fleiss_kappa),
            "Fleiss 95% CI": _ci(a.fleiss_low, a.fleiss_high),
            "Gwet AC1": _num(a.gwet_ac1),
            "Gwet 95% CI": _ci(a.gwet_low, a.gwet_high),
        }
        for a in agreement
    ],
    hide_index=True,
)
st.caption(
    "Between the two annotators of each case; lesion fields over the lesions both described "
    "(paired as the clinical score pairs them), a field left empty counts as its own value."
)

st.subheader("Extractor validation")
try:
    validation = validate_extractor(store, study.id)
except StudyError as exc:
    st.info(str(exc))
else:
    synthetic_badge(bool(validation.synthetic))
    st.dataframe(
        [
            {
                "Field": f.field,
                "Level": f.level,
                "n": f.n,
                "Cases": f.n_cases,
                "Correct": f.correct,
                "Accuracy": _pct(f.accuracy),
                "Wilson 95% CI": _ci(f.wilson_low, f.wilson_high, _pct),
                "Clopper-Pearson 95% CI": _ci(f.cp_low, f.cp_high, _pct),
            }
            for f in validation.fields
        ],
        hide_index=True,
    )
    st.caption(validation.footer())
    st.download_button(
        "Download the validation (CSV)",
        validation.csv(),
        file_name=f"extractor-validation-{study.id}.csv",
        mime="text/csv",
        key="annres_validation_csv",
    )

st.download_button(
    "Download every annotation (CSV)",
    export_annotations(store, study.id, "csv"),
    file_name=f"annotations-{study.id}.csv",
    mime="text/csv",
    key="annres_export_csv",
)
st.caption(RESEARCH_NOTICE)
