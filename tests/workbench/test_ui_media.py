"""The media pieces of workbench/ui.py on real files: which frames a page may show, and
images decoded in full before they reach a page (review row 30 display side, row 32)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from workbench.ui import MediaUnreadable, media_bytes, readable_frames


def _frame(path: Path, shade: int) -> Path:
    Image.new("RGB", (16, 12), (shade, 40, 40)).save(path)
    return path


def test_frames_are_image_files_inside_their_folder_only(tmp_path: Path) -> None:
    folder = tmp_path / "case1"
    folder.mkdir()
    good = [_frame(folder / f"frame_{i}.jpg", 20 * i) for i in (1, 2, 10)]
    outside = _frame(tmp_path / "outside.jpg", 200)
    (folder / "evil.jpg").symlink_to("/etc/passwd")
    (folder / "frame_3.jpg").symlink_to(outside)
    (folder / ".DS_Store").write_bytes(b"\0\1")
    (folder / "notes.txt").write_text("not a frame")
    (folder / "sub.jpg").mkdir()
    # Frame order by number, nothing that is a link, outside, a folder or another suffix.
    assert readable_frames(folder) == good


def test_a_truncated_or_foreign_image_is_refused_before_display(tmp_path: Path) -> None:
    image = _frame(tmp_path / "ok.png", 90)
    assert media_bytes(image) == image.read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    fake = tmp_path / "fake.jpg"
    fake.write_text("root:x:0:0:root:/root:/bin/bash")
    for bad in (truncated, fake, tmp_path / "missing.png"):
        with pytest.raises(MediaUnreadable):
            media_bytes(bad)
