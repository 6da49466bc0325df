"""Small UI pieces every page shares: the research-use warning, the synthetic badge, media
display."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from model.notice import RESEARCH_WARNING
from model.video import frame_files
from studies.store.db import Store, get_store

if TYPE_CHECKING:
    from studies.systems.catalog import CaseView

SYNTHETIC_NOTE = "SYNTHETIC data: procedurally drawn images, not patients."


def store() -> Store:
    """The store of the current settings (migrated on first use)."""
    return get_store()


def disclaimer() -> None:
    st.caption(f":material/info: {RESEARCH_WARNING}")


def synthetic_badge(synthetic: bool) -> None:
    if synthetic:
        st.warning(SYNTHETIC_NOTE, icon=":material/science:")


def show_media(paths: list[Path], modality: str, *, width: int | None = None) -> None:
    """Images in columns (click to enlarge), or the video clip / first frames of a folder."""
    if modality == "video":
        for path in paths:
            st.video(path.read_bytes())
        return
    if modality == "frames":
        for folder in paths:
            frames = frame_files(folder)
            step = max(1, len(frames) // 4)
            st.image([p.read_bytes() for p in frames[::step][:4]], width=width or 160)
        return
    columns = st.columns(max(1, min(len(paths), 3)))
    for index, path in enumerate(paths):
        columns[index % len(columns)].image(path.read_bytes(), width=width or "stretch")


def show_case(case: CaseView, *, findings: bool = True) -> None:
    """One case: its header, media (or which files are missing), question and references."""
    st.markdown(f"**{case.case_key}** · {case.split} · {case.modality}")
    media_column, text_column = st.columns([2, 3])
    with media_column:
        missing = [path for path in case.media if not path.exists()]
        if missing:
            st.error(f"Missing media: {', '.join(p.name for p in missing)}")
        else:
            show_media(case.media, case.modality)
    with text_column:
        if case.question:
            st.markdown(f"**Question:** {case.question}")
        for index, reference in enumerate(case.references, start=1):
            label = "Reference" if len(case.references) == 1 else f"Reference {index}"
            st.markdown(f"**{label}:** {reference}")
        if findings and case.findings:
            with st.expander("Structured findings"):
                st.code(json.dumps(case.findings, indent=2), language="json")
