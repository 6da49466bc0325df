"""Small UI pieces every page shares: the disclaimer, the synthetic badge, media display."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from studies.db import Store, get_store

DISCLAIMER = (
    "Research software for evaluating AI-written reports. Not a medical device: "
    "not for diagnosis or treatment decisions."
)
SYNTHETIC_NOTE = "SYNTHETIC data: procedurally drawn images, not patients."


def store() -> Store:
    """The store of the current settings (migrated on first use)."""
    return get_store()


def disclaimer() -> None:
    st.caption(f":material/info: {DISCLAIMER}")


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
            frames = sorted(p for p in folder.iterdir() if p.is_file())
            step = max(1, len(frames) // 4)
            st.image([p.read_bytes() for p in frames[::step][:4]], width=width or 160)
        return
    columns = st.columns(max(1, min(len(paths), 3)))
    for index, path in enumerate(paths):
        columns[index % len(columns)].image(path.read_bytes(), width=width or "stretch")
