"""What every benchmark loader returns, and the checks loaders share.

A loader reads one dataset layout into `CaseRecord`s and a list of `RowProblem`s; it writes
nothing. The importer decides what reaches the store (nothing, when there are problems and
skip_bad is off).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from model.video import FRAME_SUFFIXES, frame_files
from studies.store.media import (
    MediaPathError,
    path_inside,
    resolve_media,
    sha256_text,
    stat_signature,
    symlinks_below,
)

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
# One list of image suffixes: the frame images the video sampler reads.
IMAGE_SUFFIXES = set(FRAME_SUFFIXES)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm"}
MAX_PROBLEMS_SHOWN = 20
# Frames of one folder decode in parallel (Pillow's decoders release the GIL).
DECODE_WORKERS = max(1, min(8, os.cpu_count() or 1))
# Absolute media path -> the size-and-time signature the last import of the same root
# recorded: those files decoded then and have not changed since, so a re-import does not
# decode them again (the importer sets it while its loader runs; empty otherwise).
_DECODED_BEFORE: ContextVar[dict[str, str] | None] = ContextVar("decoded_before", default=None)


@dataclass
class CaseRecord:
    """One case as a loader read it; media paths are relative to the benchmark root."""

    case_key: str
    split: str
    modality: str  # image | video | frames
    media: list[str]
    references: list[str]
    question: str | None = None
    findings: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    """One bad row: the file, the row (1-based data row or line, None for the whole file)."""

    file: str
    row: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}, row {self.row}"
        return f"{where}: {self.message}"


class BenchmarkImportError(ValueError):
    """A dataset that cannot be imported as it is; lists the first problems."""

    def __init__(self, problems: list[RowProblem], hint: str = "") -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        hint_line = f"\n{hint}" if hint else ""
        super().__init__(f"{len(problems)} problem(s) in the dataset:\n{shown}{tail}{hint_line}")


@dataclass
class LoadResult:
    records: list[CaseRecord]
    problems: list[RowProblem] = field(default_factory=list)


class BenchmarkLoader(Protocol):
    """A dataset layout. `name` is the registry key shown by `medvision benchmarks list`."""

    name: str
    task: str  # report | vqa | cxr-report | video-report
    synthetic: bool
    description: str

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult: ...


def normalise_split(value: object) -> str | None:
    """The canonical split name, or None when the value is not a known split."""
    if value is None:
        return None
    return SPLIT_ALIASES.get(str(value).strip().lower())


def check_media_path(root: Path, relative: str) -> Path:
    """Resolve a relative media path under root; raises ValueError with a clear message."""
    try:
        path = resolve_media(root, relative)
    except MediaPathError as exc:
        raise ValueError(str(exc)) from exc
    if not path.exists():
        raise ValueError(f"missing file {relative!r}")
    return path


def option_path(root: Path, options: dict[str, Any], key: str, default: str | None = None) -> Path:
    """The file or folder a loader option names (e.g. `-o manifest=...`), inside the dataset
    root; raises BenchmarkImportError (nothing is imported) when it leaves the root."""
    value = options.get(key) or default
    try:
        return path_inside(root, str(value), what=f"option {key}")
    except MediaPathError as exc:
        raise BenchmarkImportError(
            [RowProblem(str(root), None, f"{exc} (the dataset root)")],
            hint=f"Put the file inside the dataset folder and name it relative to it: -o {key}=...",
        ) from None


@contextmanager
def decoded_before(signatures: dict[str, str]) -> Iterator[None]:
    """While a loader runs: media whose signature still equals `signatures[path]` passed a
    full decode at an earlier import and are not decoded again."""
    token = _DECODED_BEFORE.set(signatures)
    try:
        yield
    finally:
        _DECODED_BEFORE.reset(token)


def _unchanged_since_decoded(path: Path) -> bool:
    recorded = (_DECODED_BEFORE.get() or {}).get(str(path))
    return recorded is not None and stat_signature(path) == recorded


def check_image(path: Path) -> None:
    """Raise ValueError when `path` is not an image that decodes completely.

    `Image.verify()` does not decode JPEG data, so a truncated JPEG passed it and broke the
    rating page later; `load()` decodes every pixel, as the rating page and the models will.
    """
    from PIL import Image, UnidentifiedImageError

    if _unchanged_since_decoded(path):
        return
    try:
        with Image.open(path) as image:
            image.load()
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"image {path.name!r} is too large to decode safely ({exc}); downscale it"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(
            f"unreadable image {path.name!r}: {exc}; replace it with a complete image file"
        ) from exc


def check_video(path: Path) -> int:
    """Decode the first frame of a video; return its frame count (0 when unknown)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for _frame in container.decode(stream):
                break
            else:
                raise ValueError(f"video {path.name!r} has no decodable frame")
            return int(stream.frames or 0)
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise ValueError(f"corrupt or unreadable video {path.name!r}: {exc}") from exc


def check_frame_folder(path: Path) -> int:
    """Raise ValueError unless `path` is a folder of images that all decode, with no symlink
    anywhere below it; return the frame count. Frames are the files with an image suffix
    (`model.video.frame_files`); other files are never shown or sampled."""
    if not path.is_dir():
        raise ValueError(f"frame folder {path.name!r} is missing")
    links = symlinks_below(path)
    if links:
        names = ", ".join(repr(link.relative_to(path).as_posix()) for link in links[:5])
        more = f" and {len(links) - 5} more" if len(links) > 5 else ""
        raise ValueError(
            f"frame folder {path.name!r} holds symlinks ({names}{more}); "
            "replace them with the image files themselves"
        )
    frames = frame_files(path)
    if not frames:
        raise ValueError(
            f"frame folder {path.name!r} holds no images "
            f"(frames are files ending in {', '.join(FRAME_SUFFIXES)})"
        )
    if not _unchanged_since_decoded(path):
        _decode_frames(path, frames)
    return len(frames)


def _decode_frames(folder: Path, frames: list[Path]) -> None:
    """Decode every frame (in parallel); the first bad one in frame order is the error."""
    from concurrent.futures import ThreadPoolExecutor

    def problem(frame: Path) -> str | None:
        try:
            check_image(frame)
        except ValueError as exc:
            return str(exc)
        return None

    pool = ThreadPoolExecutor(max_workers=DECODE_WORKERS)
    try:
        for message in pool.map(problem, frames):
            if message is not None:
                raise ValueError(f"frame folder {folder.name!r}: {message}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


CONTENT_KEY_DIGITS = 12


def content_key(stem: str, *content: str | None) -> str:
    """A case key derived from what the case holds, for datasets without a stable id per
    row: `stem` (e.g. the image id) plus a short hash of `content` (e.g. the question), with
    runs of whitespace read as one space. Reordering the rows of a file keeps every case's
    key; editing the content gives a new key. Two rows with the same stem and content get
    the same key, so a loader reports them with `duplicate_problems`."""
    parts = [" ".join(str(part).split()) if part is not None else "" for part in content]
    return f"{stem}#{sha256_text(*parts)[:CONTENT_KEY_DIGITS]}"


def duplicate_problems(
    file: str, keys: Iterable[tuple[int, str]], what: str = "id"
) -> list[RowProblem]:
    """RowProblems for every repeated key; `keys` are (row, key) pairs."""
    seen: dict[str, int] = {}
    problems: list[RowProblem] = []
    for row, key in keys:
        if key in seen:
            problems.append(
                RowProblem(file, row, f"duplicate {what} {key!r} (first seen in row {seen[key]})")
            )
        else:
            seen[key] = row
    return problems
