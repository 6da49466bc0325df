"""A report generator that calls an OpenAI-compatible chat-completions server (vLLM, SGLang).

Images travel as base64 data URLs; a video travels either as its sampled frames (images)
with their timestamps in the text, which every OpenAI-compatible vision server accepts, or as
one mp4 of exactly the frames the local path samples (`video_url`, which vLLM and SGLang
accept), so that a served Qwen-VL sees the frames the local generator would. Frames are
downscaled to the clip's pixel budget shared out per frame. A LoRA adapter served by vLLM
(`--lora-modules NAME=PATH`) is asked for by its name as `remote_model`. Requests run with
bounded concurrency (a thread pool), a per-request timeout, and retries with exponential
backoff on timeouts, connection errors, 429 and 5xx answers; the run hands this generator
chunks large enough to keep `remote_concurrency` requests in flight (`chunk_size`).
"""

from __future__ import annotations

import base64
import io
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import httpx

from model.media import MediaReadError, load_image
from model.prompts import PromptTemplate
from model.requests import ReportRequest, ReportResult
from model.spec import SystemSpec
from model.video import sample_video

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0


class RemoteError(RuntimeError):
    """A remote server that failed for good; the message names the case and the server."""


def _png_data_url(image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_data_url(path: Path, max_pixels: int | None = None, key: str = "?") -> str:
    """A data URL for an image file, written again from its pixels so that no metadata (EXIF
    with GPS, XMP, ICC, PNG text chunks) leaves the machine: a JPEG as a JPEG (quality 95),
    anything else as a PNG."""
    from PIL import Image

    image = load_image(path, max_pixels, key)  # validates and, if asked, downscales
    with Image.open(path) as original:
        fmt = (original.format or "").upper()
    # A new image from the pixels alone: nothing of the file's `info` travels on.
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    if fmt != "JPEG":
        return _png_data_url(clean)
    buffer = io.BytesIO()
    clean.save(buffer, format="JPEG", quality=95)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _frame_budget(spec: SystemSpec, n_frames: int) -> int | None:
    """Pixels per frame: the clip budget shared out, else the still-image budget."""
    if spec.video_max_pixels:
        return max(1, spec.video_max_pixels // max(1, n_frames))
    return spec.image_max_pixels


def _downscaled(frame, max_pixels: int | None):
    from PIL import Image

    image = Image.fromarray(frame)
    if max_pixels and image.width * image.height > max_pixels:
        scale = (max_pixels / (image.width * image.height)) ** 0.5
        size = (
            max(2, int(image.width * scale) // 2 * 2),
            max(2, int(image.height * scale) // 2 * 2),
        )
        image = image.resize(size)
    return image


def mp4_data_url(frames: list, fps: float) -> str:
    """One mp4 (MPEG-4 part 2, every frame a key frame) holding exactly `frames` at `fps`, so
    a server that samples at `fps` or takes every frame sees these frames and their times."""
    from fractions import Fraction

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        rate = Fraction(fps).limit_denominator(1000)
        stream = container.add_stream("mpeg4", rate=rate)
        first = np.asarray(frames[0])
        stream.width, stream.height = first.shape[1] // 2 * 2, first.shape[0] // 2 * 2
        stream.pix_fmt = "yuv420p"
        stream.gop_size = 1
        stream.bit_rate = 8_000_000
        for frame in frames:
            pixels = np.asarray(frame)[: stream.height, : stream.width]
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return "data:video/mp4;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def build_chat_messages(
    request: ReportRequest, prompt: PromptTemplate, spec: SystemSpec
) -> tuple[list[dict], dict]:
    """OpenAI chat messages for one request, and meta about what was sent."""
    import numpy as np

    if not request.images and request.video is None:
        raise MediaReadError(f"case {request.key}: no image or video to report on")
    content: list[dict[str, Any]] = []
    meta: dict[str, Any] = {}
    for path in request.images:
        url = image_data_url(path, spec.image_max_pixels, request.key)
        content.append({"type": "image_url", "image_url": {"url": url}})
    text = prompt.user_text(request.question)
    if request.video is not None:
        try:
            clip = sample_video(
                Path(request.video), spec.video_fps, spec.video_max_frames, request.video_fps
            )
        except ValueError as exc:
            raise MediaReadError(f"case {request.key}: {exc}") from exc
        budget = _frame_budget(spec, len(clip.frames))
        frames = [_downscaled(frame, budget) for frame in clip.frames]
        meta.update(
            frame_indices=clip.frame_indices,
            video_fps=clip.fps,
            video_as=spec.remote_video,
            frame_size=list(frames[0].size),
        )
        if spec.remote_video == "video_url":
            # The sampled frames at the rate they were sampled: the server's own sampling at
            # that rate (or of every frame) keeps them all, with their real spacing in time.
            indices = clip.frame_indices
            spacing = (indices[-1] - indices[0]) / max(1, len(indices) - 1) if indices else 1
            rate = clip.fps / spacing if spacing else clip.fps
            url = mp4_data_url([np.asarray(f) for f in frames], rate)
            content.append({"type": "video_url", "video_url": {"url": url}})
            meta["sent_fps"] = round(rate, 4)
        else:
            stamps = [round(i / clip.fps, 2) for i in clip.frame_indices]
            for frame in frames:
                url = _png_data_url(frame)
                content.append({"type": "image_url", "image_url": {"url": url}})
            listed = ", ".join(f"{s:g} s" for s in stamps)
            text = f"The images are frames of one video clip at {listed}.\n{text}"
    content.append({"type": "text", "text": text})
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    messages.append({"role": "user", "content": content})
    return messages, meta


class RemoteGenerator:
    """A `ReportGenerator` for kind "remote"."""

    def __init__(self, spec: SystemSpec, client: httpx.Client | None = None) -> None:
        if spec.kind != "remote" or not spec.remote_url or not spec.remote_model:
            raise ValueError("a remote system needs kind 'remote', 'remote_url' and 'remote_model'")
        self.spec = spec
        self.url = spec.remote_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if spec.remote_api_key_env:
            key = os.environ.get(spec.remote_api_key_env)
            if not key:
                raise ValueError(
                    f"the environment variable {spec.remote_api_key_env} (the remote API key) "
                    "is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=spec.remote_concurrency)
        self.client = client or httpx.Client(
            headers=headers, timeout=httpx.Timeout(spec.remote_timeout_s), limits=limits
        )
        self.backoff_base_s = BACKOFF_BASE_S

    @property
    def device(self) -> str:
        return f"remote:{self.spec.remote_url}"

    @property
    def chunk_size(self) -> int:
        """Requests a run hands over at once: enough for `remote_concurrency` in flight for a
        while (a server's throughput comes from many concurrent requests), never fewer than
        the batch size; each chunk is committed when it is done."""
        return max(self.spec.batch_size, 4 * self.spec.remote_concurrency)

    def close(self) -> None:
        self.client.close()

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), BACKOFF_MAX_S)
        return min(self.backoff_base_s * (2**attempt), BACKOFF_MAX_S)

    def _post(self, request: ReportRequest, body: dict) -> tuple[dict, int]:
        """POST with retries; returns the JSON answer and the number of retries used."""
        last_error = ""
        for attempt in range(self.spec.remote_retries + 1):
            response = None
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                last_error = f"no answer within {self.spec.remote_timeout_s:g} s"
            except httpx.TransportError as exc:
                last_error = f"connection error: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json(), attempt
                    except ValueError:
                        last_error = "the answer is not JSON"
                elif response.status_code in RETRY_STATUS:
                    last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                else:
                    raise RemoteError(
                        f"case {request.key}: {self.url} answered HTTP {response.status_code}: "
                        f"{response.text[:300]}"
                    )
            if attempt < self.spec.remote_retries:
                delay = self._backoff(attempt, response)
                log.warning(
                    "case %s: %s (attempt %d); retrying in %.2f s",
                    request.key,
                    last_error,
                    attempt + 1,
                    delay,
                )
                time.sleep(delay)
        raise RemoteError(
            f"case {request.key}: {self.url} failed after {self.spec.remote_retries + 1} "
            f"attempt(s): {last_error}"
        )

    def _one(self, request: ReportRequest, prompt: PromptTemplate) -> ReportResult:
        messages, meta = build_chat_messages(request, prompt, self.spec)
        body = {
            "model": self.spec.remote_model,
            "messages": messages,
            "max_tokens": self.spec.max_new_tokens,
            # Greedy, as the local path: temperature 0, one choice, and the system's own
            # repetition penalty (1.0 unless set; vLLM and SGLang read this extra field).
            "temperature": 0.0,
            "top_p": 1.0,
            "n": 1,
            "repetition_penalty": float(self.spec.repetition_penalty),
        }
        started = time.perf_counter()
        answer, retries = self._post(request, body)
        latency = time.perf_counter() - started
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise RemoteError(
                f"case {request.key}: {self.url} answered without choices[0].message.content"
            ) from exc
        usage = answer.get("usage") or {}
        meta.update(
            retries=retries,
            finish_reason=choice.get("finish_reason"),
            remote_model=answer.get("model", self.spec.remote_model),
        )
        return ReportResult(
            text=text.strip(),
            latency_s=latency,
            prompt_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
            device=self.device,
            meta=meta,
        )

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        """Reports in input order; at most `remote_concurrency` requests in flight."""
        results: list[ReportResult | None] = [None] * len(requests)
        done = 0
        lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=self.spec.remote_concurrency) as pool:
            futures = {pool.submit(self._one, r, prompt): i for i, r in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    with lock:
                        done += 1
                        if progress is not None:
                            progress(done)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [r for r in results if r is not None]
