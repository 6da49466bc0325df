"""Writers of small datasets in each public layout (nothing is downloaded), and store look-ups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from studies.db import Store
from studies.schema import Benchmark, Case
from studies.synthetic import write_mp4

SMALL_SYNTHETIC = {"n_images": 6, "n_videos": 2, "seed": 3, "image_size": 96, "video_frames": 4}


def write_png(path: Path, seed: int = 0, size: int = 32, suffix_format: str | None = None) -> Path:
    """A small random picture; different seeds give different bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    fmt = suffix_format or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def write_clip(path: Path, seed: int = 0, frames: int = 4, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(frames)]
    write_mp4(path, arrays, fps=4, codec="mpeg4")
    return path


def write_frames(folder: Path, seed: int = 0, frames: int = 3) -> Path:
    for index in range(frames):
        write_png(folder / f"frame_{index:04d}.jpg", seed=seed * 100 + index)
    return folder


def corrupt(path: Path) -> None:
    """Overwrite a media file with bytes no decoder accepts."""
    path.write_bytes(b"this is not media" * 10)


def cases_of(store: Store, benchmark: str) -> dict[str, Case]:
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == benchmark))
        if bench is None:
            return {}
        cases = session.scalars(select(Case).where(Case.benchmark_id == bench.id)).all()
        for case in cases:
            session.expunge(case)
        return {case.case_key: case for case in cases}


def benchmark_row(store: Store, name: str) -> Benchmark | None:
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if bench is not None:
            session.expunge(bench)
        return bench
