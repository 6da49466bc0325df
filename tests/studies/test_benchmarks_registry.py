"""Every registered loader can be imported and describes itself; the importer at scale
(size and modification time before hashing, no empty benchmarks) and content-derived keys."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from benchmark_layouts import benchmark_row, cases_of

from studies.benchmarks import get_loader, loader_names
from studies.benchmarks.base import BenchmarkImportError, content_key
from studies.benchmarks.importer import import_benchmark
from studies.store.media import sha256_file


def test_every_loader_is_registered_under_its_own_name():
    names = loader_names()
    assert names == ["polyp-reports", "kvasir-vqa-x1", "iu-xray", "polyp-video", "synthetic-colon"]
    for name in names:
        loader = get_loader(name)
        assert loader.name == name
        assert loader.task in {"report", "vqa", "cxr-report", "video-report"}
        assert loader.description
        assert loader.synthetic is (name == "synthetic-colon")


@pytest.mark.parametrize("name", ["polyp-reports", "kvasir-vqa-x1", "iu-xray", "polyp-video"])
def test_an_empty_folder_is_a_clear_error_for_every_real_layout(
    sqlite_store, tmp_path: Path, name: str
):
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, name, tmp_path / "missing")
    assert "dataset folder does not exist" in str(caught.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, name, empty)
    assert str(empty) in str(caught.value) or "annotation.json" in str(caught.value)


# --- import at scale: size and modification time before hashing ---------------------------

OLD = 1_600_000_000_000_000_000  # 2020-09-13, long settled


def _bmp_dataset(root: Path, colours: list[tuple[int, int, int]]) -> Path:
    """A polyp-reports manifest over BMP images (equal size for equal dimensions), dated OLD."""
    from benchmark_layouts import write_table
    from PIL import Image

    rows = []
    for index, colour in enumerate(colours):
        path = root / f"img-{index}.bmp"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), colour).save(path)
        os.utime(path, ns=(OLD, OLD))
        rows.append({"case_id": f"c{index}", "images": path.name, "report": f"report {index}"})
    write_table(root / "manifest.csv", [dict(row, split="test") for row in rows])
    return root


def _overwrite_keeping_size_and_time(path: Path, colour: tuple[int, int, int]) -> None:
    from PIL import Image

    stat = path.stat()
    Image.new("RGB", (16, 16), colour).save(path)
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_unchanged_files_are_recognised_by_size_and_time_and_not_read(store, tmp_path: Path):
    """A file whose content changes while its size and modification time stay the same is
    not read again, so the change goes unseen until --rehash reads every file. Fails on
    ebb17df, which hashes every file on every import (the change is seen at once)."""
    root = _bmp_dataset(tmp_path / "ds", [(200, 0, 0), (0, 200, 0), (0, 0, 200)])
    first = import_benchmark(store, "polyp-reports", root, name="bmp")
    assert (first.added, first.media_hashed, first.media_recognised) == (3, 3, 0)
    before = cases_of(store, "bmp")["c1"].media[0]["sha256"]

    _overwrite_keeping_size_and_time(root / "img-1.bmp", (9, 9, 9))
    again = import_benchmark(store, "polyp-reports", root, name="bmp")
    assert (again.updated, again.unchanged) == (0, 3)
    assert (again.media_hashed, again.media_recognised) == (0, 3)
    assert cases_of(store, "bmp")["c1"].media[0]["sha256"] == before  # not re-read

    rehashed = import_benchmark(store, "polyp-reports", root, name="bmp", rehash=True)
    assert (rehashed.updated, rehashed.unchanged) == (1, 2)
    assert (rehashed.media_hashed, rehashed.media_recognised) == (3, 0)
    assert cases_of(store, "bmp")["c1"].media[0]["sha256"] == sha256_file(root / "img-1.bmp")

    # A changed modification time alone is read again (and found unchanged in content).
    os.utime(root / "img-2.bmp", ns=(OLD + 10**9, OLD + 10**9))
    touched = import_benchmark(store, "polyp-reports", root, name="bmp")
    assert (touched.updated, touched.media_hashed, touched.media_recognised) == (0, 1, 2)


def test_a_file_written_just_now_is_hashed_again_next_time(sqlite_store, tmp_path: Path):
    """File times are only as fine as the kernel's coarse clock: a file changed right after
    the import that saw it, at the same size and time, is still noticed."""
    root = _bmp_dataset(tmp_path / "ds", [(200, 0, 0), (0, 200, 0)])
    now = time.time_ns()
    os.utime(root / "img-0.bmp", ns=(now, now))
    import_benchmark(sqlite_store, "polyp-reports", root, name="fresh")
    _overwrite_keeping_size_and_time(root / "img-0.bmp", (1, 2, 3))
    again = import_benchmark(sqlite_store, "polyp-reports", root, name="fresh")
    assert (again.updated, again.media_hashed, again.media_recognised) == (1, 1, 1)


def test_another_root_is_hashed_in_full(sqlite_store, tmp_path: Path):
    first = _bmp_dataset(tmp_path / "one", [(200, 0, 0)])
    import_benchmark(sqlite_store, "polyp-reports", first, name="moved")
    second = _bmp_dataset(tmp_path / "two", [(200, 0, 0)])
    again = import_benchmark(sqlite_store, "polyp-reports", second, name="moved")
    assert (again.media_hashed, again.media_recognised, again.unchanged) == (1, 0, 1)


# --- whole-file problems never create an empty benchmark -----------------------------------


def test_skip_bad_with_only_whole_file_problems_creates_nothing(store, tmp_path: Path):
    """Fails on ebb17df: --skip-bad created an empty benchmark and reported success."""
    root = tmp_path / "iu"
    root.mkdir()
    (root / "annotation.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "iu-xray", root, name="iu-empty", skip_bad=True)
    message = str(caught.value)
    assert "expected an object" in message
    assert "Fix these rows" not in message and "--skip-bad" not in message
    assert "Fix these files" in message
    assert benchmark_row(store, "iu-empty") is None


def test_row_problems_keep_their_hint_and_skip_bad_imports_the_rest(sqlite_store, tmp_path):
    root = _bmp_dataset(tmp_path / "ds", [(200, 0, 0), (0, 200, 0)])
    (root / "img-1.bmp").write_bytes(b"not an image")
    with pytest.raises(BenchmarkImportError, match="Fix these rows, or pass --skip-bad"):
        import_benchmark(sqlite_store, "polyp-reports", root, name="rows")
    report = import_benchmark(sqlite_store, "polyp-reports", root, name="rows", skip_bad=True)
    assert (report.added, len(report.skipped)) == (1, 1)


# --- content-derived case keys ---------------------------------------------------------


def test_content_keys_follow_the_content_not_the_row_position():
    rows = [("img1", "Is there a polyp?"), ("img1", "Is there any text in the image?")]
    keys = [content_key(img, question) for img, question in rows]
    reordered = [content_key(img, question) for img, question in reversed(rows)]
    assert sorted(keys) == sorted(reordered) and len(set(keys)) == 2
    assert all(key.startswith("img1#") for key in keys)
    assert content_key("img1", "Is there  a\npolyp? ") == keys[0]  # whitespace is not content
    assert content_key("img1", "Is there a polyp now?") != keys[0]
    assert content_key("img2", "Is there a polyp?") != keys[0]
    assert content_key("img1", "a", "b") != content_key("img1", "ab")
