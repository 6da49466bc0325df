"""Media on disk: content hashes and path resolution that never leaves a dataset root."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


class MediaPathError(ValueError):
    """A media path that is absolute or escapes its root (`..`, symlinks)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_folder(path: Path) -> str:
    """Hash of every file below `path` (relative names and contents), order-independent."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


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
