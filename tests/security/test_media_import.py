"""Media and paths at import (review rows 24-31): `medvision benchmarks import` on both
databases refuses bad media and paths that leave the dataset root, names the file, says what
to fix, exits 1 and writes nothing."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select
from typer.testing import CliRunner

from studies.store.db import Store
from studies.store.media import MediaPathError, sha256_folder
from studies.store.schema import Benchmark, Case
from workbench.cli import app

runner = CliRunner()


def _jpeg(path: Path, seed: int = 0, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=90)
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _manifest(root: Path, images: list[str], name: str = "manifest.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "image", "report", "split"])
        for index, image in enumerate(images):
            writer.writerow([f"c{index}", image, f"A {index + 3} mm polyp in the rectum.", "test"])
    return root


def _counts(store: Store) -> tuple[int, int]:
    with store.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Benchmark)),
            session.scalar(select(func.count()).select_from(Case)),
        )


@pytest.fixture
def cli_store(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The store the command uses (SQLite and PostgreSQL), holding one good benchmark."""
    monkeypatch.setenv("MEDVISION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDVISION_DATABASE_URL", store.url)
    good = _manifest(tmp_path / "good", ["a.jpg"])
    _jpeg(good / "a.jpg")
    result = _import("polyp-reports", good, "good")
    assert result.exit_code == 0, result.output
    return store


def _import(loader: str, root: Path, name: str, *options: str):  # noqa: ANN202
    args = ["benchmarks", "import", loader, str(root), "--name", name]
    for option in options:
        args += ["-o", option]
    return runner.invoke(app, args)


def _refused(store: Store, result, *words: str) -> None:  # noqa: ANN001
    """Exit 1, a message holding `words`, and the store exactly as it was (1 benchmark, 1 case)."""
    assert result.exit_code == 1, result.output
    for word in words:
        assert word in result.output, result.output
    assert _counts(store) == (1, 1)


def test_traversal_in_a_manifest_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 24: `../../../../etc/passwd` and `../../outside/secret.jpg` escape the root."""
    _jpeg(tmp_path / "outside" / "secret.jpg")
    root = _manifest(tmp_path / "a" / "b", ["../../../../etc/passwd", "../../outside/secret.jpg"])
    _refused(cli_store, _import("polyp-reports", root, "sec"), "escapes the dataset root")


def test_an_absolute_media_path_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 25: an absolute path to an existing JPEG must be relative to the root."""
    secret = _jpeg(tmp_path / "outside" / "secret.jpg")
    root = _manifest(tmp_path / "ds", [str(secret)])
    _refused(cli_store, _import("polyp-reports", root, "sec"), "must be relative")


def test_a_symlinked_image_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 26: `evil.jpg` is a symlink out of the dataset folder."""
    secret = _jpeg(tmp_path / "outside" / "secret.jpg")
    root = _manifest(tmp_path / "ds", ["evil.jpg"])
    os.symlink(secret, root / "evil.jpg")
    _refused(cli_store, _import("polyp-reports", root, "sec"), "'evil.jpg' escapes")


def test_a_truncated_jpeg_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 27: half a JPEG passed `verify()` at ebb17df ("2 added"); a full decode refuses it."""
    root = _manifest(tmp_path / "ds", ["ok.jpg", "half.jpg"])
    _jpeg(root / "ok.jpg", seed=1)
    _truncate(_jpeg(root / "half.jpg", seed=2, size=256))
    _refused(
        cli_store,
        _import("polyp-reports", root, "sec"),
        "unreadable image 'half.jpg'",
        "truncated",
        "replace it",
    )


def test_a_manifest_without_split_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 28: the missing column is named, with the columns found."""
    root = tmp_path / "ds"
    root.mkdir()
    _jpeg(root / "a.jpg")
    (root / "manifest.csv").write_text("image,report\na.jpg,A polyp.\n", encoding="utf-8")
    _refused(
        cli_store,
        _import("polyp-reports", root, "sec"),
        "missing required column 'split'",
        "columns found: image, report",
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ("unreadable image 'x.jpg'",)),
        (b"This is a note, not a picture.\n" * 4, ("unreadable image 'x.jpg'",)),
    ],
    ids=["empty-image", "text-as-jpg"],
)
def test_an_empty_or_fake_image_is_refused(
    cli_store: Store, tmp_path: Path, content: bytes, words: tuple[str, ...]
) -> None:
    """row 29: a 0-byte image and text saved as `.jpg`."""
    root = _manifest(tmp_path / "ds", ["x.jpg"])
    (root / "x.jpg").write_bytes(content)
    _refused(cli_store, _import("polyp-reports", root, "sec"), *words)


def test_an_empty_manifest_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 29: a 0-byte manifest."""
    root = tmp_path / "ds"
    root.mkdir()
    (root / "manifest.csv").write_bytes(b"")
    _refused(cli_store, _import("polyp-reports", root, "sec"), "empty")


def _frames_dataset(root: Path) -> Path:
    folder = root / "clips" / "f1"
    for index in range(5):
        _jpeg(folder / f"frame_{index:03d}.jpg", seed=index)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "video", "split", "report"])
        writer.writerow(["clip-1", "clips/f1", "test", "A 6 mm polyp in the sigmoid colon."])
    return folder


def test_a_frame_folder_with_symlinks_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 30: symlinks to /etc/passwd and to an outside JPEG inside a frame folder were
    imported at ebb17df ("1 added") and hashed; each is refused by name."""
    folder = _frames_dataset(tmp_path / "ds")
    outside = _jpeg(tmp_path / "outside" / "secret.jpg")
    os.symlink("/etc/passwd", folder / "frame_002b.jpg")
    os.symlink(outside, folder / "frame_009.jpg")
    result = _import("polyp-video", tmp_path / "ds", "sec")
    _refused(cli_store, result, "symlinks", "'frame_002b.jpg'", "'frame_009.jpg'", "replace them")


def test_a_truncated_frame_in_the_middle_is_refused(cli_store: Store, tmp_path: Path) -> None:
    """row 30: only the first and last frames were checked at ebb17df; every frame decodes now."""
    folder = _frames_dataset(tmp_path / "ds")
    _truncate(_jpeg(folder / "frame_002.jpg", seed=9, size=256))
    result = _import("polyp-video", tmp_path / "ds", "sec")
    _refused(cli_store, result, "frame folder 'f1'", "'frame_002.jpg'", "truncated")


def test_a_frame_folder_reads_only_image_suffixes(cli_store: Store, tmp_path: Path) -> None:
    """row 30: a `.DS_Store` or notes file beside the frames is not a frame (it is not
    decoded, shown or sampled), so it neither blocks the import nor counts."""
    folder = _frames_dataset(tmp_path / "ds")
    (folder / ".DS_Store").write_bytes(b"\x00\x01binary")
    (folder / "notes.txt").write_text("frames exported from the recorder", encoding="utf-8")
    result = _import("polyp-video", tmp_path / "ds", "sec")
    assert result.exit_code == 0, result.output
    assert _counts(cli_store) == (2, 2)


def test_the_folder_hash_never_follows_a_symlink(tmp_path: Path) -> None:
    """row 30: the folder hash read /etc/passwd through a symlink at ebb17df."""
    folder = tmp_path / "frames"
    _jpeg(folder / "frame_000.jpg")
    os.symlink("/etc/passwd", folder / "frame_001.jpg")
    with pytest.raises(MediaPathError, match="frame_001.jpg is a symlink"):
        sha256_folder(folder)


@pytest.mark.parametrize("option", ["manifest", "absolute"])
def test_a_manifest_option_outside_the_root_is_refused(
    cli_store: Store, tmp_path: Path, option: str
) -> None:
    """row 31: `-o manifest=../../outside/m.csv` was read from outside the root at ebb17df."""
    root = tmp_path / "a" / "b"
    root.mkdir(parents=True)
    outside = _manifest(tmp_path / "outside", ["m.jpg"], name="m.csv")
    _jpeg(outside / "m.jpg")
    value = "../../outside/m.csv" if option == "manifest" else str(outside / "m.csv")
    result = _import("polyp-reports", root, "sec", f"manifest={value}")
    _refused(cli_store, result, "option manifest", "is outside", "choose a path inside it")


def test_media_corrupted_after_import_is_refused_at_the_next_import(
    cli_store: Store, tmp_path: Path
) -> None:
    """row 32 (import side): an image truncated after its import is refused by the next
    import, and the case keeps the hash of the image as it was imported (the rating page's
    side of row 32 is in the rating tests)."""
    root = _manifest(tmp_path / "ds", ["a.jpg"])
    _jpeg(root / "a.jpg", seed=5, size=256)
    assert _import("polyp-reports", root, "later").exit_code == 0
    later = select(Case.media).join(Benchmark).where(Benchmark.name == "later")
    with cli_store.session() as session:
        (media_before,) = list(session.scalars(later))
    _truncate(root / "a.jpg")
    result = _import("polyp-reports", root, "later")
    assert result.exit_code == 1 and "unreadable image 'a.jpg'" in result.output, result.output
    with cli_store.session() as session:
        assert list(session.scalars(later)) == [media_before]
    assert _counts(cli_store) == (2, 2)


def test_a_re_import_decodes_again_only_what_changed(cli_store: Store, tmp_path: Path) -> None:
    """row 27 (at scale): media unchanged in size and modification time since the last import
    of the same root are not decoded again, as they are not hashed again; `--rehash`
    decodes (and hashes) everything. A file replaced behind the import's back with its
    size and time restored is therefore caught by --rehash, and any other change at once."""
    root = _manifest(tmp_path / "ds", ["a.jpg"])
    image = _jpeg(root / "a.jpg", seed=6, size=128)
    past = time.time_ns() - 100 * 10**9  # settled: its signature is recorded
    os.utime(image, ns=(past, past))
    assert _import("polyp-reports", root, "scale").exit_code == 0
    image.write_bytes(b"x" * image.stat().st_size)
    os.utime(image, ns=(past, past))
    again = _import("polyp-reports", root, "scale")
    assert again.exit_code == 0 and "1 unchanged" in again.output, again.output
    full = runner.invoke(
        app, ["benchmarks", "import", "polyp-reports", str(root), "--name", "scale", "--rehash"]
    )
    assert full.exit_code == 1 and "unreadable image 'a.jpg'" in full.output, full.output
