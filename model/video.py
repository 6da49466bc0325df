"""Video frame sampling: by fps and a max frame count, from an mp4 file or a frame folder.

Frames are returned with a `transformers.video_utils.VideoMetadata` (source fps and the sampled
frame indices) so Qwen3-VL gets real timestamps. Short clips are decoded with
`transformers.video_utils.load_video(..., backend="pyav")`; long clips are sampled from their
keyframes only, so decoding time and memory stay bounded whatever the clip length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Above this many frames (about 2 minutes at 30 fps) only keyframes are decoded.
LONG_CLIP_FRAMES = 3600
# A frame folder has no timing of its own; SUN-SEG frames come from 30 fps video.
DEFAULT_FOLDER_FPS = 30.0


def frame_order(path: Path | str) -> tuple[object, ...]:
    """Sort key of a frame file by the numbers in its name, compared as numbers: frame names
    are often unpadded (REAL-colon `002-001_18185.jpg`), so text order puts `_10` before `_2`;
    SUN-SEG names order by their `_aN` segment, then `imageNNNN`."""
    parts = re.split(r"(\d+)", Path(path).stem.lower())
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts))


def frame_files(folder: Path) -> list[Path]:
    """The frame images of a folder in frame order."""
    files = (p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    return sorted(files, key=lambda p: (frame_order(p), p.name))


class VideoReadError(ValueError):
    """A video or frame folder that cannot be read; the message names the file."""


@dataclass
class SampledVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    metadata: object  # transformers.video_utils.VideoMetadata
    source: str  # "pyav", "pyav-keyframes" or "frames"

    @property
    def frame_indices(self) -> list[int]:
        return [int(i) for i in self.metadata.frames_indices]

    @property
    def fps(self) -> float:
        return float(self.metadata.fps)


def sample_indices(total_frames: int, source_fps: float, fps: float, max_frames: int) -> list[int]:
    """Uniform indices at `fps` frames per second, at most `max_frames`, at least 2 (or all)."""
    if total_frames <= 0:
        return []
    wanted = int(round(total_frames / source_fps * fps)) if source_fps > 0 else max_frames
    count = max(2, min(wanted, max_frames))
    count = min(count, total_frames)
    return sorted({int(i) for i in np.linspace(0, total_frames - 1, count).round()})


def _metadata(total: int, fps: float, indices: list[int], width: int, height: int, backend: str):
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(
        total_num_frames=int(total),
        fps=float(fps),
        width=int(width),
        height=int(height),
        duration=float(total / fps) if fps else None,
        video_backend=backend,
        frames_indices=list(indices),
    )


def _ensure_two(frames: np.ndarray, indices: list[int]) -> tuple[np.ndarray, list[int]]:
    # The vision tower consumes frames in temporal pairs; a one-frame clip is doubled.
    if len(frames) == 1:
        return np.concatenate([frames, frames]), [indices[0], indices[0]]
    return frames, indices


def sample_video_file(path: Path, fps: float, max_frames: int) -> SampledVideo:
    """Sample an mp4 (or any PyAV-readable file) by fps with at most `max_frames` frames."""
    import av

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            source_fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
            width, height = stream.codec_context.width, stream.codec_context.height
            if total == 0 and stream.duration and stream.time_base:
                total = int(float(stream.duration * stream.time_base) * source_fps)
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise VideoReadError(f"cannot read video {path}: {exc}") from exc
    if total <= 0:
        raise VideoReadError(f"cannot read video {path}: it has no frames")
    if total > LONG_CLIP_FRAMES:
        return _sample_keyframes(path, total, source_fps, fps, max_frames, width, height)

    from transformers.video_utils import load_video

    indices = sample_indices(total, source_fps, fps, max_frames)

    def pick(metadata, **_kwargs):
        return np.array([i for i in indices if i < metadata.total_num_frames] or [0])

    try:
        frames, metadata = load_video(str(path), backend="pyav", sample_indices_fn=pick)
    except Exception as exc:  # PyAV raises many types for corrupt data
        raise VideoReadError(f"cannot decode video {path}: {exc}") from exc
    got = [int(i) for i in metadata.frames_indices][: len(frames)]
    frames, got = _ensure_two(np.asarray(frames), got)
    meta = _metadata(total, source_fps, got, width, height, "pyav")
    return SampledVideo(frames=frames, metadata=meta, source="pyav")


def _sample_keyframes(
    path: Path, total: int, source_fps: float, fps: float, max_frames: int, width: int, height: int
) -> SampledVideo:
    """Decode keyframes only and keep up to `max_frames` of them spread over the clip."""
    import av

    wanted = max(2, min(int(round(total / source_fps * fps)), max_frames))
    keyframes: list[tuple[int, np.ndarray]] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.skip_frame = "NONKEY"
            # Keep a bounded reservoir: thin to every other keyframe when it overflows.
            stride = 1
            seen = 0
            for frame in container.decode(stream):
                if seen % stride == 0:
                    seconds = float(frame.pts * stream.time_base) if frame.pts is not None else 0.0
                    keyframes.append(
                        (int(round(seconds * source_fps)), frame.to_ndarray(format="rgb24"))
                    )
                    if len(keyframes) > 4 * wanted:
                        keyframes = keyframes[::2]
                        stride *= 2
                seen += 1
    except Exception as exc:
        raise VideoReadError(f"cannot decode video {path}: {exc}") from exc
    if not keyframes:
        raise VideoReadError(f"cannot decode video {path}: no keyframes")
    chosen = sorted({int(i) for i in np.linspace(0, len(keyframes) - 1, wanted).round()})
    indices = [keyframes[i][0] for i in chosen]
    frames = np.stack([keyframes[i][1] for i in chosen])
    frames, indices = _ensure_two(frames, indices)
    meta = _metadata(total, source_fps, indices, width, height, "pyav-keyframes")
    return SampledVideo(frames=frames, metadata=meta, source="pyav-keyframes")


def sample_frame_folder(
    folder: Path, fps: float, max_frames: int, folder_fps: float = DEFAULT_FOLDER_FPS
) -> SampledVideo:
    """Sample a folder of frame images (in frame order, `frame_order`) as a clip at
    `folder_fps`."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise VideoReadError(f"frame folder {folder} has no image files")
    indices = sample_indices(len(files), folder_fps, fps, max_frames)
    frames = []
    size: tuple[int, int] | None = None
    for i in indices:
        try:
            with Image.open(files[i]) as image:
                rgb = image.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise VideoReadError(f"cannot read frame {files[i]}: {exc}") from exc
        # Frames of one clip must share a size for the video processor.
        size = size or rgb.size
        if rgb.size != size:
            rgb = rgb.resize(size)
        frames.append(np.asarray(rgb))
    array, indices = _ensure_two(np.stack(frames), indices)
    meta = _metadata(len(files), folder_fps, indices, size[0], size[1], "frames")
    return SampledVideo(frames=array, metadata=meta, source="frames")


def sample_video(
    path: Path, fps: float = 2.0, max_frames: int = 16, folder_fps: float | None = None
) -> SampledVideo:
    """An mp4 file or a frame folder, sampled by fps with at most `max_frames` frames;
    `folder_fps` is a frame folder's own rate where the dataset states it."""
    path = Path(path)
    if path.is_dir():
        return sample_frame_folder(path, fps, max_frames, folder_fps or DEFAULT_FOLDER_FPS)
    if not path.is_file():
        raise VideoReadError(f"video {path} does not exist")
    return sample_video_file(path, fps, max_frames)
