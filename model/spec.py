"""The system specification, the `ReportGenerator` protocol and the device defaults.

`SystemSpec` holds everything that determines a system's output; each field's help text is
declared here once (read by `medvision systems add` and by the kinds' messages). What a kind
requires, allows and checks is `model.kinds`; the fingerprint is there too, because which
fields determine the output is a property of the kind. Imports no generator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from model.prompts import PromptTemplate
from model.requests import ReportRequest, ReportResult

DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")
REMOTE_VIDEO: tuple[str, ...] = ("frames", "video_url")


class SpecError(ValueError):
    """A system definition that cannot work; the message names the spec field(s) to fix.

    `fields` lists those fields, so a command line or a page can name its own option instead.
    """

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


def _help(text: str, **extra: object) -> dict[str, object]:
    return {"help": text, **extra}


@dataclass
class SystemSpec:
    """Everything that determines a system's output; JSON-serialisable."""

    kind: str  # a key of model.kinds.KINDS
    model: str | None = field(default=None, metadata=_help("a hub id or a local model folder"))
    adapter: str | None = field(default=None, metadata=_help("a LoRA adapter folder"))
    merge_adapter: bool = field(default=False, metadata=_help("merge the adapter into the weights"))
    prompt: str | None = field(
        default=None, metadata=_help("prompt name (default: by benchmark task)")
    )
    max_new_tokens: int = field(default=256, metadata=_help("most tokens to generate"))
    batch_size: int = field(default=8, metadata=_help("cases per batch (and per commit)"))
    video_fps: float = field(default=2.0, metadata=_help("frames per second sampled from video"))
    video_max_frames: int = field(default=16, metadata=_help("most frames per video"))
    image_max_pixels: int | None = field(
        default=None, metadata=_help("resize images above this many pixels")
    )
    video_max_pixels: int | None = field(
        default=None,
        metadata=_help(
            "pixel budget of one clip, all sampled frames together (default: the processor's)"
        ),
    )
    video_cap_pixels_per_frame: bool = field(
        default=True,
        metadata=_help(
            "cap each frame's pixels as Qwen's reference preprocessing (qwen-vl-utils) does, "
            "so a clip's token cost follows its frame count"
        ),
    )
    repetition_penalty: float = field(
        default=1.0,
        metadata=_help(
            "1.0 is pure greedy decoding; the checkpoint's own generation config is never inherited"
        ),
    )
    static_cache: bool = field(
        default=False,
        metadata=_help(
            "a static KV cache; on a GPU transformers then compiles the decoding step with "
            "torch.compile (the first batch of each shape is slow)"
        ),
    )
    device: str | None = field(
        default=None, metadata=_help("cpu, cuda, cuda:1 (default: cuda if any)")
    )
    dtype: str | None = field(
        default=None,
        metadata=_help("weights dtype (default: bfloat16 on cuda, float32 on cpu)", choices=DTYPES),
    )
    remote_url: str | None = field(
        default=None,
        metadata=_help(
            "the base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
        ),
    )
    remote_model: str | None = field(
        default=None, metadata=_help("the model name the server serves")
    )
    remote_api_key_env: str | None = field(
        default=None,
        metadata=_help("name of the environment variable holding the API key (never the key)"),
    )
    remote_concurrency: int = field(
        default=4,
        metadata=_help("requests in flight at once (independent of batch_size)"),
    )
    remote_video: str = field(
        default="frames",
        metadata=_help(
            "how a clip travels: 'frames' (images with their times in the text, any vision "
            "server) or 'video_url' (one mp4 of the sampled frames, vLLM and SGLang)",
            choices=REMOTE_VIDEO,
        ),
    )
    remote_timeout_s: float = field(
        default=120.0, metadata=_help("seconds one remote request may take")
    )
    remote_retries: int = field(
        default=3, metadata=_help("retries of a failed remote request (with backoff)")
    )
    embedding: str | None = field(
        default=None, metadata=_help("which CPU image embedding retrieval uses")
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise SpecError naming the field to fix (the kind's own rules: model.kinds)."""
        for name in ("max_new_tokens", "batch_size", "remote_concurrency"):
            if getattr(self, name) < 1:
                raise SpecError(f"'{name}' must be at least 1", name)
        if self.video_max_frames < 2:
            raise SpecError("'video_max_frames' must be at least 2", "video_max_frames")
        if self.video_fps <= 0:
            raise SpecError("'video_fps' must be positive", "video_fps")
        if self.repetition_penalty <= 0:
            raise SpecError("'repetition_penalty' must be positive", "repetition_penalty")
        if self.video_max_pixels is not None and self.video_max_pixels < 1:
            raise SpecError("'video_max_pixels' must be at least 1", "video_max_pixels")
        if self.remote_retries < 0:
            raise SpecError("'remote_retries' must not be negative", "remote_retries")
        if self.remote_timeout_s <= 0:
            raise SpecError("'remote_timeout_s' must be positive", "remote_timeout_s")
        if self.remote_video not in REMOTE_VIDEO:
            raise SpecError(
                f"'remote_video' {self.remote_video!r} is unknown; expected one of: "
                f"{', '.join(REMOTE_VIDEO)}",
                "remote_video",
            )
        if self.dtype is not None and self.dtype not in DTYPES:
            raise SpecError(
                f"'dtype' {self.dtype!r} is unknown; expected one of: {', '.join(DTYPES)}",
                "dtype",
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SystemSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise SpecError(f"unknown system field(s): {', '.join(unknown)}", *unknown)
        if "kind" not in d:
            raise SpecError("a system needs 'kind'", "kind")
        return cls(**d)


def field_help(name: str) -> str:
    """The help text of SystemSpec field `name`."""
    for item in dataclasses.fields(SystemSpec):
        if item.name == name:
            return str(item.metadata.get("help", name))
    raise KeyError(name)


@runtime_checkable
class ReportGenerator(Protocol):
    spec: SystemSpec

    def generate(
        self,
        requests: list[ReportRequest],
        prompt: PromptTemplate,
        progress: Callable[[int], None] | None = None,
    ) -> list[ReportResult]:
        """Output order equals input order; progress(n_done_in_this_call) after each batch."""
        ...


def resolve_device(device: str | None) -> str:
    """None -> "cuda:0" when a GPU is present, else "cpu"."""
    if device:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def default_dtype_name(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"
