"""Small UI pieces every page shares: the research-use warning, the synthetic badge, media
display, and `plain_text`, the one way pages show text that comes from data.

Report texts, questions, references, comments and guidelines come from models (remote ones
too), imported datasets and other users: they are shown as plain text (paragraphs kept),
never as Markdown or HTML, so a link, an image beacon or a heading inside them stays text.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from model.notice import RESEARCH_WARNING
from model.video import frame_files
from studies.store.db import Store, get_store

if TYPE_CHECKING:
    from studies.systems.catalog import CaseView

SYNTHETIC_NOTE = "SYNTHETIC data: procedurally drawn images, not patients."
PAGE_ERROR = (
    "Something went wrong on this page. Everything you submitted before is saved. Reload "
    "the page to go on; if this message comes back, tell the study admin and quote "
    "reference {reference}."
)
log = logging.getLogger("medvision.pages")


def store() -> Store:
    """The store of the current settings (migrated on first use)."""
    return get_store()


@contextmanager
def error_boundary(page: str, actor_id: int | None = None) -> Iterator[None]:
    """Run a page: an unexpected error becomes PAGE_ERROR with a reference (no traceback in
    the browser); the traceback goes to the server log and an audit event `page.error` with
    the same reference, for the admin."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the boundary: st.stop/st.rerun are not Exceptions
        from studies.store.settings import get_settings

        if get_settings().page_errors == "raise":
            raise
        reference = secrets.token_hex(4)
        log.exception("page %r failed (reference %s)", page, reference)
        try:
            from studies.store.audit import record

            with store().session() as session:
                detail = {"reference": reference, "error": type(exc).__name__}
                record(session, actor_id, "page.error", "page", page, detail)
        except Exception:  # noqa: BLE001 - the database may be what failed; the log has it
            log.exception("could not record page error %s", reference)
        st.error(PAGE_ERROR.format(reference=reference), icon=":material/error:")


def disclaimer() -> None:
    st.caption(f":material/info: {RESEARCH_WARNING}")


def synthetic_badge(synthetic: bool) -> None:
    if synthetic:
        st.warning(SYNTHETIC_NOTE, icon=":material/science:")


PLAIN_TEXT_CSS = """
<style>
[class*="st-key-mv-plain"] [data-testid="stText"] {white-space: pre-wrap;
  overflow-wrap: anywhere;}
[class*="st-key-mv-report"] [data-testid="stText"],
[class*="st-key-mv-report"] [data-testid="stText"] * {font-family: Georgia, 'Times New Roman',
  serif; font-size: 1.02rem; line-height: 1.55; white-space: pre-wrap; overflow-wrap: anywhere;}
[class*="st-key-mv-report"] {min-height: 8rem;}
</style>
"""


def plain_text_style() -> None:
    """The CSS for `plain_text` boxes (a constant: no data in it)."""
    st.html(PLAIN_TEXT_CSS)


def plain_text(
    text: str | None, *, label: str | None = None, key: str | None = None, report: bool = False
) -> None:
    """`text` exactly as written: line breaks and paragraphs kept, nothing interpreted.

    `label` is the page's own words (shown bold above); `report` draws the framed, serif
    report box of the rating page. `key` names the box (unique on the page).
    """
    if label:
        st.markdown(f"**{label}**")
    if report:
        with st.container(border=True, key=f"mv-report-{key or 'box'}"):
            st.text(text or "")
        return
    with st.container(key=f"mv-plain-{key}" if key else None):
        st.text(text or "")


class MediaUnreadable(ValueError):
    """A case's image, frame or clip could not be read or decoded."""


def readable_frames(folder: Path) -> list[Path]:
    """The frame images of a folder (model.video.frame_files: image suffixes, frame order)
    that are plain files inside it: no symlink, nothing resolving outside the folder."""
    root = folder.resolve()
    return [
        path
        for path in frame_files(folder)
        if not path.is_symlink() and path.is_file() and path.resolve().parent == root
    ]


def media_bytes(path: Path) -> bytes:
    """An image's bytes after a full decode (a truncated or foreign file raises MediaUnreadable
    here, before any of it reaches the page)."""
    from PIL import Image

    try:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaUnreadable(f"{path.name}: {exc}") from exc
    return data


def show_media(paths: list[Path], modality: str, *, width: int | None = None) -> None:
    """Images in columns (click to enlarge), or the video clip / first frames of a folder.

    MediaUnreadable when a file is missing, unreadable or not an image; nothing is drawn then.
    """
    try:
        if modality == "video":
            clips = [path.read_bytes() for path in paths]
            for clip in clips:
                st.video(clip)
            return
        if modality == "frames":
            shown = []
            for folder in paths:
                frames = readable_frames(folder) if folder.is_dir() else []
                if not frames:
                    raise MediaUnreadable(f"{folder.name}: no readable frames")
                step = max(1, len(frames) // 4)
                shown.append([media_bytes(p) for p in frames[::step][:4]])
            for images in shown:
                st.image(images, width=width or 160)
            return
        images = [media_bytes(path) for path in paths]
    except OSError as exc:
        raise MediaUnreadable(str(exc)) from exc
    columns = st.columns(max(1, min(len(paths), 3)))
    for index, data in enumerate(images):
        columns[index % len(columns)].image(data, width=width or "stretch")


def show_case(case: CaseView, *, findings: bool = True) -> None:
    """One case: its header, media (or which files are missing), question and references."""
    st.text(f"{case.case_key} · {case.split} · {case.modality}")
    media_column, text_column = st.columns([2, 3])
    with media_column:
        missing = [path for path in case.media if not path.exists()]
        if missing:
            st.error(f"Missing media: {', '.join(p.name for p in missing)}")
        else:
            try:
                show_media(case.media, case.modality)
            except MediaUnreadable as exc:
                st.error(f"This case's media cannot be shown ({exc}); re-import the dataset.")
    with text_column:
        if case.question:
            plain_text(case.question, label="Question")
        for index, reference in enumerate(case.references, start=1):
            label = "Reference" if len(case.references) == 1 else f"Reference {index}"
            plain_text(reference, label=label)
        if findings and case.findings:
            with st.expander("Structured findings"):
                st.code(json.dumps(case.findings, indent=2), language="json")
