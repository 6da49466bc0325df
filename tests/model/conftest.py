"""Synthetic media for the model tests: small images, an mp4 clip and a frame folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_mp4(
    path: Path, n_frames: int, fps: int = 10, width: int = 160, height: int = 120
) -> Path:
    """An mpeg4 clip whose frames differ (a moving bar on a changing background)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(n_frames):
            frame = np.zeros((height, width, 3), np.uint8)
            frame[..., 0] = (i * 7) % 255
            frame[:, : (i * 3) % width + 1, 1] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_image(path: Path, seed: int, size: tuple[int, int] = (224, 224)) -> Path:
    """A synthetic colour image: a random-noise texture tinted by the seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    tint = np.array([(seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256], np.uint8)
    pixels = (pixels // 2 + tint // 2).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model-media")
    for i in range(6):
        write_image(folder / f"image{i}.png", seed=i, size=(224 + 16 * i, 200))
    write_mp4(folder / "clip.mp4", n_frames=40, fps=10)
    frames = folder / "frames"
    frames.mkdir()
    for i in range(12):
        write_image(frames / f"frame_{i:04d}.jpg", seed=100 + i, size=(128, 96))
    return folder
