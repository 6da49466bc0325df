"""Uploads on the Report page and images sent to remote models (review rows 34-36; D9, D15):
re-encoded without metadata, named by content hash, bombs refused, the size limit on the
server, every bad file an UploadError that writes nothing."""

from __future__ import annotations

import base64
import io
import struct
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from model.remote import image_data_url
from studies.exports.report_document import (
    ReportDocument,
    UploadError,
    build_markdown,
    build_pdf,
    save_uploads,
    split_sections,
)
from studies.store.settings import Settings
from workbench.commands import core

PHI = "DOE JOHN MRN12345678 DOB 1950-01-01"
CLIENT_NAME = "DOE_JOHN_MRN12345678_colonoscopy.jpg"


@pytest.fixture
def settings(tmp_home: Path) -> Settings:
    return Settings()


def _stored(settings: Settings) -> list[Path]:
    folder = settings.data_dir / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def _phi_jpeg(orientation: int = 1) -> bytes:
    """A JPEG whose EXIF holds a patient's name, MRN and birth date, and GPS."""
    pixels = np.random.default_rng(4).integers(0, 255, (20, 40, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x010E] = PHI  # ImageDescription
    exif[0x013B] = "DOE JOHN"  # Artist
    exif[0x0112] = orientation
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


def _phi_png() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Patient", PHI)
    info.add_itxt("Comment", "MRN12345678", lang="en")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (150, 60, 60)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _no_metadata(data: bytes) -> Image.Image:
    assert b"DOE" not in data and b"MRN12345678" not in data
    image = Image.open(io.BytesIO(data))
    assert not dict(image.getexif()) and "exif" not in image.info
    assert not getattr(image, "text", {}) and "icc_profile" not in image.info
    return image


def _document(uploads: list) -> ReportDocument:  # noqa: ANN001
    text = "Findings: a 6 mm polyp in the sigmoid colon."
    return ReportDocument(
        system="tiny",
        system_version="1",
        system_kind="vlm",
        fingerprint="f" * 64,
        prompt="colonoscopy-report v1",
        prompt_hash="a" * 64,
        max_new_tokens=32,
        device="cpu",
        latency_s=0.1,
        inputs=uploads,
        text=text,
        sections=split_sections(text),
    )


def test_an_upload_keeps_no_exif_gps_or_file_name(settings: Settings) -> None:
    """row 34: stored byte for byte with EXIF and GPS at ebb17df, and the Markdown said
    `Inputs: DOE_JOHN_MRN12345678_colonoscopy.jpg`."""
    original = _phi_jpeg()
    (upload,) = save_uploads([(CLIENT_NAME, original)], settings)
    (stored,) = _stored(settings)
    assert stored == upload.path and stored.name == f"{upload.sha256}.png"
    image = _no_metadata(stored.read_bytes())
    # The pixels are the decoded original's, losslessly.
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(original))))
    markdown = build_markdown(_document([upload]))
    pdf = build_pdf(_document([upload]))
    for document in (markdown.encode(), pdf):
        assert b"DOE" not in document and b"MRN" not in document
    assert upload.sha256[:16] in markdown


def test_png_text_chunks_do_not_survive(settings: Settings) -> None:
    """row 34: tEXt / iTXt chunks of a PNG are metadata too."""
    (upload,) = save_uploads([("scan.png", _phi_png())], settings)
    _no_metadata(upload.path.read_bytes())


def test_an_upload_is_stored_upright(settings: Settings) -> None:
    """row 34: the EXIF orientation is applied before it is dropped, so the stored image
    looks as the uploader saw it (40x20 stored as 20x40 for orientation 6)."""
    (upload,) = save_uploads([("rotated.jpg", _phi_jpeg(orientation=6))], settings)
    assert Image.open(upload.path).size == (20, 40)


def test_a_video_upload_loses_its_metadata_and_audio(settings: Settings) -> None:
    """row 34 (video): title, location and stream names of an mp4 are not kept."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        container.metadata["title"] = PHI
        container.metadata["location"] = "+48.8577+002.2950/"
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        stream.metadata["handler_name"] = "DOE JOHN"
        for index in range(6):
            pixels = np.full((64, 64, 3), 40 * index, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (upload,) = save_uploads([("DOE_JOHN.mp4", buffer.getvalue())], settings)
    data = upload.path.read_bytes()
    assert b"DOE" not in data and b"MRN" not in data and b"48.8577" not in data
    with av.open(str(upload.path)) as clip:
        assert "title" not in clip.metadata and "location" not in clip.metadata
        assert sum(1 for _ in clip.decode(video=0)) == 6
    assert [p.name for p in _stored(settings)] == [upload.path.name]


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    rows = zlib.compress(b"\x00" * (1 + width // 8) * 64, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [20_000, 10_000], ids=["bomb-error", "bomb-warning"])
def test_a_decompression_bomb_is_an_upload_error(settings: Settings, side: int) -> None:
    """row 35: a 20000x20000 PNG raised DecompressionBombError (a traceback) at ebb17df;
    between Pillow's limit and twice it Pillow only warns: refused as well."""
    with pytest.raises(UploadError, match="bomb.png: the image is too large to decode safely"):
        save_uploads([("bomb.png", _png_claiming(side, side))], settings)
    assert _stored(settings) == []


def test_the_upload_limit_reaches_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_home: Path
) -> None:
    """row 35 / D15: `serve` passes MEDVISION_MAX_UPLOAD_MB as server.maxUploadSize (above
    200 MB the setting had no effect at ebb17df). The server process is a stand-in for
    Python that writes down the arguments it was started with and exits."""
    monkeypatch.setenv("MEDVISION_MAX_UPLOAD_MB", "512.5")
    arguments = tmp_home / "arguments.txt"
    stand_in = tmp_home / "python"
    stand_in.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {arguments}\n', encoding="utf-8")
    stand_in.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(stand_in))
    assert core.serve_app("127.0.0.1", 8999) == 0
    command = arguments.read_text(encoding="utf-8").splitlines()
    assert command[:3] == ["-m", "streamlit", "run"]
    assert command[command.index("--server.maxUploadSize") + 1] == "513"


def _truncated_jpeg() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.jpg", b"", "empty.jpg: the file is empty"),
        ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "unsupported file type .svg"),
        ("half.jpg", _truncated_jpeg(), "half.jpg: not a readable image"),
        ("note.jpg", b"This is a note, not a picture." * 3, "note.jpg: not a readable image"),
    ],
    ids=["empty", "svg", "truncated", "text-as-jpg"],
)
def test_bad_uploads_are_refused_and_write_nothing(
    settings: Settings, name: str, data: bytes, message: str
) -> None:
    """row 36: each one a clear UploadError; nothing stored."""
    with pytest.raises(UploadError, match=message):
        save_uploads([("ok.png", _phi_png()), (name, data)], settings)
    assert _stored(settings) == []


@pytest.mark.parametrize("source", ["jpeg", "png"])
def test_a_remote_model_gets_the_image_without_metadata(tmp_path: Path, source: str) -> None:
    """D9: the remote backend sent the original JPEG/PNG bytes, EXIF and all, at ebb17df."""
    path = tmp_path / f"case.{source}"
    path.write_bytes(_phi_jpeg() if source == "jpeg" else _phi_png())
    url = image_data_url(path)
    mime, payload = url.split(",", 1)
    assert mime == f"data:image/{source};base64"
    _no_metadata(base64.b64decode(payload))
