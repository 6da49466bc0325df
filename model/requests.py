"""What a report generator is asked for and what it returns (no database, no UI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ReportRequest:
    """One case to report on: images or a video, plus an optional VQA question."""

    key: str  # case key, for logs only
    images: list[Path] = field(default_factory=list)  # absolute image paths
    video: Path | None = None  # an mp4 file, or a folder of frames (SUN-SEG style)
    # The frame rate of a frame folder where the dataset states it (REAL-colon's
    # video_info.csv); None: model.video.DEFAULT_FOLDER_FPS. An mp4 carries its own.
    video_fps: float | None = None
    question: str | None = None  # VQA question (kvasir-vqa-x1)
    reference: str | None = None  # only read by the reference baseline


@dataclass
class ReportResult:
    """A generated report with what it cost."""

    text: str
    latency_s: float
    prompt_tokens: int | None
    output_tokens: int | None
    device: str  # "cpu", "cuda:0", "remote:<url>", "baseline"
    meta: dict = field(default_factory=dict)  # frame indices, retries, nearest train id, ...


@dataclass
class TrainExample:
    """One training case, as the retrieval and template baselines see it."""

    images: list[Path]
    report: str
    label: str | None = None
    key: str | None = None  # train case key, reported by the retrieval baseline
