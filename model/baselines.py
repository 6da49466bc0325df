"""Baselines: retrieval (nearest training image), template (most frequent report), reference.

The retrieval embedding is self-contained and runs on the CPU (no pretrained weights):
"colour-texture-v1" = a 8x8x8 joint RGB colour histogram, a 4x4-cell histogram of gradient
orientations (9 bins) and a 16x16 grey thumbnail, each block L2-normalised, concatenated with
fixed weights and L2-normalised again. Nearest neighbour is by cosine similarity.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from model.media import MediaReadError, load_image
from model.prompts import PromptTemplate
from model.requests import ReportRequest, ReportResult, TrainExample
from model.spec import SystemSpec
from model.video import sample_video

DEFAULT_EMBEDDING = "colour-texture-v1"
_SIDE = 64  # every image is resized to 64x64 before its features are taken


def _l2(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _colour_texture_v1(rgb: np.ndarray) -> np.ndarray:
    """The colour-texture-v1 feature of one (64, 64, 3) uint8 image (length 512 + 144 + 256)."""
    bins = (rgb // 32).astype(np.int64)  # 8 levels per channel
    joint = bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]
    colour = np.bincount(joint.ravel(), minlength=512).astype(np.float64)

    grey = rgb.astype(np.float64).mean(axis=2)
    gy, gx = np.gradient(grey)
    magnitude = np.hypot(gx, gy)
    orientation = (np.arctan2(gy, gx) % np.pi) / np.pi * 9  # unsigned, 9 bins
    orient_bin = np.minimum(orientation.astype(np.int64), 8)
    cells = []
    step = _SIDE // 4
    for r in range(4):
        for c in range(4):
            sl = (slice(r * step, (r + 1) * step), slice(c * step, (c + 1) * step))
            cells.append(
                np.bincount(orient_bin[sl].ravel(), weights=magnitude[sl].ravel(), minlength=9)
            )
    texture = np.concatenate(cells)

    thumb = grey.reshape(16, 4, 16, 4).mean(axis=(1, 3)).ravel()
    thumb = thumb - thumb.mean()
    return _l2(np.concatenate([_l2(colour) * 1.0, _l2(texture) * 0.7, _l2(thumb) * 0.5])).astype(
        np.float32
    )


EMBEDDINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    DEFAULT_EMBEDDING: _colour_texture_v1,
}


def _embedding_fn(name: str | None) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    name = name or DEFAULT_EMBEDDING
    if name not in EMBEDDINGS:
        raise ValueError(
            f"unknown retrieval embedding {name!r}; expected one of: {', '.join(EMBEDDINGS)}"
        )
    return name, EMBEDDINGS[name]


def _pixels(image) -> np.ndarray:
    from PIL import Image

    return np.asarray(image.convert("RGB").resize((_SIDE, _SIDE), Image.BILINEAR))


def embed_images(paths: list[Path], embedding: str | None = None, key: str = "?") -> np.ndarray:
    """The mean embedding of a case's images (L2-normalised)."""
    _, fn = _embedding_fn(embedding)
    vectors = [fn(_pixels(load_image(p, key=key))) for p in paths]
    return _l2(np.mean(vectors, axis=0)).astype(np.float32)


def embed_request(request: ReportRequest, embedding: str | None, spec: SystemSpec) -> np.ndarray:
    """Images of the request, or its sampled video frames, embedded and averaged."""
    from PIL import Image

    if request.images:
        return embed_images(request.images, embedding, request.key)
    if request.video is None:
        raise MediaReadError(f"case {request.key}: no image or video to report on")
    try:
        clip = sample_video(
            Path(request.video), spec.video_fps, spec.video_max_frames, request.video_fps
        )
    except ValueError as exc:
        raise MediaReadError(f"case {request.key}: {exc}") from exc
    _, fn = _embedding_fn(embedding)
    vectors = [fn(_pixels(Image.fromarray(frame))) for frame in clip.frames]
    return _l2(np.mean(vectors, axis=0)).astype(np.float32)


def _validate_train(train: list[TrainExample], kind: str) -> None:
    for i, example in enumerate(train):
        if not example.report or not example.report.strip():
            name = example.key or f"row {i}"
            raise ValueError(f"the {kind} baseline got a train case with an empty report ({name})")


class RetrievalBaseline:
    """The training report of the nearest training image (cosine over a CPU embedding)."""

    def __init__(self, spec: SystemSpec, train: list[TrainExample]) -> None:
        _validate_train(train, "retrieval")
        usable = [t for t in train if t.images]
        if not usable:
            raise ValueError("the retrieval baseline needs train cases with images")
        self.spec = spec
        self.embedding, _ = _embedding_fn(spec.embedding)
        self.train = usable
        self.matrix = np.stack(
            [
                embed_images(t.images, self.embedding, t.key or f"train {i}")
                for i, t in enumerate(usable)
            ]
        )

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        results = []
        for request in requests:
            started = time.perf_counter()
            query = embed_request(request, self.embedding, self.spec)
            scores = self.matrix @ query
            best = int(np.argmax(scores))  # first index wins ties: deterministic
            example = self.train[best]
            results.append(
                ReportResult(
                    text=example.report,
                    latency_s=time.perf_counter() - started,
                    prompt_tokens=None,
                    output_tokens=None,
                    device="baseline",
                    meta={
                        "embedding": self.embedding,
                        "nearest_index": best,
                        "nearest_key": example.key,
                        "similarity": float(scores[best]),
                    },
                )
            )
            if progress is not None:
                progress(len(results))
        return results


def most_frequent(reports: list[str]) -> str:
    """The most frequent report; ties go to the alphabetically first, so the result is fixed."""
    counts = Counter(r.strip() for r in reports)
    return min(counts.items(), key=lambda item: (-item[1], item[0]))[0]


class TemplateBaseline:
    """The most frequent training report; per label when the train split has labels.

    A test case's label is unknown to a system, so it is predicted by the nearest label centroid
    of the retrieval embedding; the label's most frequent report is returned.
    """

    def __init__(self, spec: SystemSpec, train: list[TrainExample]) -> None:
        _validate_train(train, "template")
        self.spec = spec
        self.global_report = most_frequent([t.report for t in train])
        labelled = [t for t in train if t.label and t.images]
        labels = sorted({t.label for t in labelled})
        self.embedding, _ = _embedding_fn(spec.embedding)
        self.labels: list[str] = []
        self.label_reports: dict[str, str] = {}
        self.centroids: np.ndarray | None = None
        if len(labels) >= 2:
            centroids = []
            for label in labels:
                members = [t for t in labelled if t.label == label]
                self.label_reports[label] = most_frequent([t.report for t in members])
                vectors = [embed_images(t.images, self.embedding, t.key or label) for t in members]
                centroids.append(_l2(np.mean(vectors, axis=0)))
            self.labels = labels
            self.centroids = np.stack(centroids).astype(np.float32)

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        results = []
        for request in requests:
            started = time.perf_counter()
            meta: dict = {}
            text = self.global_report
            if self.centroids is not None:
                scores = self.centroids @ embed_request(request, self.embedding, self.spec)
                label = self.labels[int(np.argmax(scores))]
                text = self.label_reports[label]
                meta = {"predicted_label": label, "embedding": self.embedding}
            else:
                meta = {"template": "most-frequent"}
            results.append(
                ReportResult(
                    text=text,
                    latency_s=time.perf_counter() - started,
                    prompt_tokens=None,
                    output_tokens=None,
                    device="baseline",
                    meta=meta,
                )
            )
            if progress is not None:
                progress(len(results))
        return results


class ReferenceBaseline:
    """The human reference text, so readers can compare AI reports with a clinician's."""

    def __init__(self, spec: SystemSpec) -> None:
        self.spec = spec

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        missing = [r.key for r in requests if not (r.reference and r.reference.strip())]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"the reference system needs a reference text; missing for: {shown}")
        results = [
            ReportResult(
                text=r.reference.strip(),
                latency_s=0.0,
                prompt_tokens=None,
                output_tokens=None,
                device="baseline",
                meta={"source": "reference"},
            )
            for r in requests
        ]
        if progress is not None and results:
            progress(len(results))
        return results
