"""The single-case report: upload checks, sections, Markdown and PDF documents."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from model.notice import RESEARCH_WARNING
from model.spec import SystemSpec
from studies.exports.report_document import (
    NOT_STATED,
    ReportDocument,
    UploadError,
    build_markdown,
    build_pdf,
    generate_upload_report,
    save_uploads,
    split_sections,
)
from studies.store.db import Store
from studies.store.settings import Settings
from studies.systems.registry import register_system


@pytest.fixture
def settings(tmp_home: Path) -> Settings:
    return Settings()


def _png(colour: tuple[int, int, int] = (180, 90, 90), side: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _mp4(frames: int = 6) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(frames):
            pixels = np.full((64, 64, 3), 40 * index % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _uploads(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_images_are_stored_once_by_content_hash(settings: Settings) -> None:
    first = save_uploads([("a.PNG", _png()), ("b.png", _png((1, 2, 3)))], settings)
    assert [u.kind for u in first] == ["image", "image"]
    assert [u.path.name for u in first] == [f"{u.sha256}.png" for u in first]
    again = save_uploads([("renamed.png", _png())], settings)
    assert again[0].path == first[0].path and "renamed" not in again[0].label
    assert len(_uploads(settings)) == 2


def test_a_video_clip_is_accepted(settings: Settings) -> None:
    (saved,) = save_uploads([("clip.mp4", _mp4())], settings)
    assert saved.kind == "video" and saved.path.suffix == ".mp4" and saved.path.is_file()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "upload one or more images or one video clip"),
        ([("x.png", b"")], "x.png: the file is empty"),
        ([("x.png", b"<html>not an image</html>")], "x.png: not a readable image"),
        ([("cut.png", _png(side=256)[:300])], "cut.png: not a readable image"),
        ([("clip.mp4", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)], "clip.mp4: corrupt"),
        ([("clip.mp4", _mp4()), ("a.png", _png())], "not several files with a video"),
        ([("notes.docx", b"PK")], "notes.docx: unsupported file type .docx; accepted:"),
        ([("a.png", _png()), ("b.png", b"junk")], "b.png: not a readable image"),
    ],
)
def test_bad_uploads_say_why_and_write_nothing(
    settings: Settings, files: list[tuple[str, bytes]], message: str
) -> None:
    with pytest.raises(UploadError, match=message):
        save_uploads(files, settings)
    assert _uploads(settings) == []


def test_uploads_over_the_limit_are_refused(tmp_home: Path) -> None:
    settings = replace(Settings(), max_upload_mb=0.01)
    with pytest.raises(
        UploadError, match=r"big.png: 0\.0191 MB is over the upload limit of 0.01 MB"
    ):
        save_uploads([("big.png", b"\x89PNG" + b"\x00" * 20_000)], settings)
    assert _uploads(settings) == []


@pytest.mark.parametrize(
    ("text", "findings", "impression", "suggestion"),
    [
        (
            "Findings: a 6 mm polyp.\nImpression: adenoma.\nRecommendation: cold snare.",
            "a 6 mm polyp.",
            "adenoma.",
            "cold snare.",
        ),
        (
            "**Findings:** polyp **Impression:** adenoma **Suggestion:** resect",
            "polyp",
            "adenoma",
            "resect",
        ),
        ("just some words", "just some words", NOT_STATED, NOT_STATED),
        ("Impression: normal", NOT_STATED, "normal", NOT_STATED),
    ],
)
def test_split_sections(text: str, findings: str, impression: str, suggestion: str) -> None:
    sections = split_sections(text)
    assert (sections.findings, sections.impression, sections.suggestion) == (
        findings,
        impression,
        suggestion,
    )


def _document(text: str) -> ReportDocument:
    return ReportDocument(
        system="tiny",
        system_version="2",
        system_kind="vlm",
        fingerprint="f" * 64,
        prompt="colonoscopy-report v1",
        prompt_hash="a" * 64,
        max_new_tokens=32,
        device="cpu",
        latency_s=0.25,
        inputs=[],
        text=text,
        sections=split_sections(text),
    )


def test_markdown_carries_disclaimer_sections_and_provenance() -> None:
    text = "Findings: polyp ```x``` \x03.\nImpression: adenoma.\nRecommendation: snare."
    markdown = build_markdown(_document(text))
    assert markdown.count(RESEARCH_WARNING) == 2
    for heading in ("## Findings", "## Impression", "## Suggestion", "## How this report"):
        assert heading in markdown
    assert "tiny v2 (vlm)" in markdown and "greedy, at most 32 new tokens" in markdown
    assert "\x03" not in markdown and "\ufffd" in markdown
    # The raw text sits in a fence longer than any backtick run inside it.
    assert "````text" in markdown


def test_pdf_carries_the_disclaimer_and_survives_odd_text() -> None:
    long_word = "x" * 400
    pdf = build_pdf(_document(f"Findings: {long_word} ü \x1a 中\n" + "Impression: ok. " * 400))
    assert pdf.startswith(b"%PDF")
    assert f"/Subject ({RESEARCH_WARNING})".encode() in pdf
    assert pdf.count(b"/Type /Page\n") >= 2  # long text flows onto further pages


def test_upload_report_from_the_tiny_model_on_a_video(
    sqlite_store: Store, settings: Settings, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    spec = SystemSpec(
        kind="vlm", model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), max_new_tokens=8
    )
    register_system(sqlite_store, "tiny", spec)
    register_system(sqlite_store, "template", SystemSpec(kind="template"))
    uploads = save_uploads([("clip.mp4", _mp4())], settings)
    document = generate_upload_report(sqlite_store, "tiny", uploads)
    assert document.text.strip() and document.device == "cpu"
    assert document.prompt == "colonoscopy-report v1"
    inputs = dict(document.provenance)["Inputs"]
    assert "clip" not in inputs and uploads[0].sha256[:16] in inputs
    with pytest.raises(UploadError, match="template baseline, which needs a benchmark case"):
        generate_upload_report(sqlite_store, "template", uploads)
