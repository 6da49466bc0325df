"""Report: upload images or a video clip of one case and get a system's report to download."""

from __future__ import annotations

import streamlit as st

from model.notice import RESEARCH_WARNING
from studies.exports.report_document import (
    UPLOAD_KINDS,
    UploadError,
    build_markdown,
    build_pdf,
    generate_upload_report,
    save_uploads,
)
from studies.store.settings import get_settings
from studies.systems.registry import list_systems
from workbench import access
from workbench.ui import MediaUnreadable, plain_text, show_media, store

DOCUMENT_KEY = "upload_report"

st.title("Single-case report")
access.require_role("admin")
st.warning(RESEARCH_WARNING, icon=":material/gpp_maybe:")
settings = get_settings()
workbench_store = store()
systems = [s for s in list_systems(workbench_store) if s.kind in UPLOAD_KINDS]
if not systems:
    st.info(
        "No model system registered yet: add one with "
        "`medvision systems add NAME --kind vlm --model ... [--adapter ...]`."
    )
    st.stop()

files = st.file_uploader(
    f"Images of one case, or one video clip (at most {settings.max_upload_mb:g} MB each)",
    accept_multiple_files=True,
    key="report_uploads",
)
st.caption(
    "Uploads are stored re-encoded without their metadata (EXIF, GPS, text chunks) and named "
    "by their content hash; the file name is not kept and never appears in the documents."
)
system_name = st.selectbox("System", [s.name for s in systems], key="report_system")
st.caption(next(s.summary() for s in systems if s.name == system_name))
if st.button("Write report", type="primary", icon=":material/description:", key="write_report"):
    st.session_state.pop(DOCUMENT_KEY, None)
    try:
        uploads = save_uploads([(f.name, f.getvalue()) for f in files or []], settings)
        with st.spinner("Generating the report ..."):
            st.session_state[DOCUMENT_KEY] = generate_upload_report(
                workbench_store, system_name, uploads
            )
    except UploadError as exc:
        st.error(str(exc))

document = st.session_state.get(DOCUMENT_KEY)
if document is not None:
    inputs = [upload.path for upload in document.inputs if upload.path.exists()]
    if inputs:
        try:
            show_media(inputs, document.inputs[0].kind, width=240)
        except MediaUnreadable as exc:
            st.error(f"The uploaded media cannot be shown ({exc}); upload it again.")
    st.subheader("Findings")
    st.text(document.sections.findings)
    st.subheader("Impression")
    st.text(document.sections.impression)
    st.subheader("Suggestion")
    st.text(document.sections.suggestion)
    with st.expander("How this report was made"):
        for index, (label, value) in enumerate(document.provenance):
            plain_text(str(value), label=label, key=f"provenance-{index}")
        st.text(document.text)
    st.caption(RESEARCH_WARNING)
    left, right = st.columns(2)
    left.download_button(
        "Download Markdown",
        build_markdown(document),
        file_name=f"{document.file_stem}.md",
        mime="text/markdown",
        icon=":material/download:",
        key="download_markdown",
    )
    right.download_button(
        "Download PDF",
        build_pdf(document),
        file_name=f"{document.file_stem}.pdf",
        mime="application/pdf",
        icon=":material/picture_as_pdf:",
        key="download_pdf",
    )
