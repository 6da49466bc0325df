"""Case media for every generator: images read and downscaled, videos sampled, chat messages.

The baselines, the remote client and the Qwen-VL generator all read a case's media through
here, so none of them imports the torch-loading generation module to open an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.prompts import PromptTemplate
from model.requests import ReportRequest
from model.spec import SystemSpec
from model.video import SampledVideo, sample_video


class MediaReadError(ValueError):
    """An image or video of a case that cannot be read; the message names case and file."""


def load_image(path: Path, max_pixels: int | None = None, key: str = "?"):
    """An RGB PIL image, downscaled to at most `max_pixels` pixels when given."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except FileNotFoundError:
        raise MediaReadError(f"case {key}: image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise MediaReadError(f"case {key}: cannot read image {path}: {exc}") from exc
    if max_pixels and rgb.width * rgb.height > max_pixels:
        scale = (max_pixels / (rgb.width * rgb.height)) ** 0.5
        rgb = rgb.resize((max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale))))
    return rgb


@dataclass
class PreparedRequest:
    request: ReportRequest
    messages: list[dict]
    images: list[Any]
    video: SampledVideo | None


def build_messages(
    prompt: PromptTemplate, n_images: int, has_video: bool, question: str | None
) -> list[dict]:
    """Chat messages in the Qwen-VL content format: media first, then the instruction."""
    content: list[dict] = [{"type": "image"} for _ in range(n_images)]
    if has_video:
        content.append({"type": "video"})
    content.append({"type": "text", "text": prompt.user_text(question)})
    messages: list[dict] = []
    if prompt.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": prompt.system}]})
    messages.append({"role": "user", "content": content})
    return messages


def processor_size(size: Any, max_pixels: int | None) -> dict[str, int]:
    """A Qwen-VL image or video processor's `size` ({shortest_edge, longest_edge}: pixel
    bounds) with at most `max_pixels` pixels. Training and inference both resize through this
    (the processor's own smart_resize), so an adapter sees the same token grid at both."""
    bounds = {
        "shortest_edge": int(size["shortest_edge"]),
        "longest_edge": int(size["longest_edge"]),
    }
    if max_pixels:
        bounds["longest_edge"] = int(max_pixels)
        bounds["shortest_edge"] = min(bounds["shortest_edge"], int(max_pixels))
    return bounds


def prepare_request(
    request: ReportRequest, prompt: PromptTemplate, spec: SystemSpec, *, downscale: bool = True
) -> PreparedRequest:
    """The case's media read and its chat messages. `downscale=False` leaves images at full
    size for a Qwen-VL processor, which applies `spec.image_max_pixels` itself."""
    if not request.images and request.video is None:
        raise MediaReadError(f"case {request.key}: no image or video to report on")
    max_pixels = spec.image_max_pixels if downscale else None
    images = [load_image(p, max_pixels, request.key) for p in request.images]
    video = None
    if request.video is not None:
        try:
            video = sample_video(
                Path(request.video), spec.video_fps, spec.video_max_frames, request.video_fps
            )
        except ValueError as exc:
            raise MediaReadError(f"case {request.key}: {exc}") from exc
    messages = build_messages(prompt, len(images), video is not None, request.question)
    return PreparedRequest(request=request, messages=messages, images=images, video=video)
