"""Media on disk: content hashes, the size-and-time signatures that let a re-import skip
hashing unchanged files, and path resolution that never leaves a dataset root."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

CHUNK = 1 << 20
# A file modified this recently may still change within the same timestamp tick (file
# times are only as fine as the kernel's coarse clock), so its signature is not trusted.
SETTLE_NS = 2_000_000_000


class MediaPathError(ValueError):
    """A media path that is absolute or escapes its root (`..`, symlinks)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def symlinks_below(folder: Path) -> list[Path]:
    """Every symlink below `folder` (files and folders), without following any of them."""
    links: list[Path] = []
    for current, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            if (Path(current) / name).is_symlink():
                links.append(Path(current) / name)
    return sorted(links)


def folder_files(path: Path) -> list[Path]:
    """The regular files below `path`, sorted; never follows a symlink: a symlink below the
    folder raises MediaPathError (a frame folder linking to /etc/passwd was hashed)."""
    links = symlinks_below(path)
    if links:
        raise MediaPathError(
            f"{links[0]} is a symlink; a media folder must hold the files themselves"
        )
    files = []
    for current, _dirs, names in os.walk(path, followlinks=False):
        files.extend(Path(current) / name for name in names)
    return sorted(file for file in files if file.is_file())


def sha256_folder(path: Path) -> str:
    """Hash of every file below `path` (relative names and contents), order-independent."""
    digest = hashlib.sha256()
    for file in folder_files(path):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def stat_signature(path: Path, now_ns: int | None = None) -> str | None:
    """Size and modification time of a file, or of every file below a folder (with their
    relative names), as one string; None when something was modified in the last
    SETTLE_NS, whose content must be hashed again next time."""
    settled = (time.time_ns() if now_ns is None else now_ns) - SETTLE_NS
    if not path.is_dir():
        stat = path.stat()
        return None if stat.st_mtime_ns > settled else f"{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256()
    for file in folder_files(path):
        stat = file.stat()
        if stat.st_mtime_ns > settled:
            return None
        digest.update(
            f"{file.relative_to(path).as_posix()}\0{stat.st_size}:{stat.st_mtime_ns}\0".encode()
        )
    return "folder:" + digest.hexdigest()


def sha256_text(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def resolve_media(root: Path | str, relative: str) -> Path:
    """Absolute path of `relative` under `root`; refuses anything that escapes the root."""
    root_path = Path(root).resolve()
    if not relative or Path(relative).is_absolute():
        raise MediaPathError(f"media path {relative!r} must be relative to the dataset root")
    candidate = (root_path / relative).resolve()
    if not candidate.is_relative_to(root_path):
        raise MediaPathError(f"media path {relative!r} escapes the dataset root {root_path}")
    return candidate


def relative_media(root: Path | str, path: Path | str) -> str:
    """`path` as a POSIX path relative to `root` (it must lie inside the root)."""
    root_path = Path(root).resolve()
    full = Path(path).resolve()
    if not full.is_relative_to(root_path):
        raise MediaPathError(f"{path} is outside the dataset root {root_path}")
    return full.relative_to(root_path).as_posix()


def path_inside(root: Path | str, typed: Path | str, what: str = "path") -> Path:
    """`typed` (absolute, or relative to `root`) resolved, when it stays inside `root`; the
    one check that a path typed by a person (an admin page's folder, a loader option) never
    leaves its root. Raises MediaPathError naming the root to choose inside of."""
    root_path = Path(root).expanduser().resolve()
    text = str(typed).strip()
    if not text:
        raise MediaPathError(f"{what} is empty; name a path inside {root_path}")
    candidate = Path(text).expanduser()
    full = (candidate if candidate.is_absolute() else root_path / candidate).resolve()
    if not full.is_relative_to(root_path):
        raise MediaPathError(f"{what} {text!r} is outside {root_path}; choose a path inside it")
    return full
