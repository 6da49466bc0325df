"""System specifications, their fingerprints and the generator factory."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from model.prompts import PromptTemplate
from model.requests import ReportRequest, ReportResult, TrainExample

SYSTEM_KINDS: tuple[str, ...] = ("vlm", "vlm-base", "retrieval", "template", "reference", "remote")

# Bumped when generation code changes in a way that changes outputs for the same spec.
GENERATION_CODE_VERSION = "1"

# Fields that change how fast or where a system runs, never what it writes.
RUNTIME_ONLY_FIELDS: frozenset[str] = frozenset(
    {
        "batch_size",
        "device",
        "remote_api_key_env",
        "remote_concurrency",
        "remote_timeout_s",
        "remote_retries",
    }
)


@dataclass
class SystemSpec:
    """Everything that determines a system's output; JSON-serialisable."""

    kind: str  # one of SYSTEM_KINDS
    model: str | None = None  # hub id or local folder (vlm, vlm-base)
    adapter: str | None = None  # LoRA adapter folder (vlm; vlm-base shares the loaded model)
    merge_adapter: bool = False
    prompt: str | None = None  # PROMPTS key; None -> by the benchmark task
    max_new_tokens: int = 256
    batch_size: int = 8
    video_fps: float = 2.0
    video_max_frames: int = 16
    image_max_pixels: int | None = None
    device: str | None = None  # None -> cuda if available else cpu
    dtype: str | None = None  # None -> bf16 on cuda, float32 on cpu
    remote_url: str | None = None  # remote: base URL of an OpenAI-compatible server
    remote_model: str | None = None
    remote_api_key_env: str | None = None  # name of the env var holding the key (never the key)
    remote_concurrency: int = 4
    remote_timeout_s: float = 120.0
    remote_retries: int = 3
    embedding: str | None = None  # retrieval: which CPU image embedding

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field to fix."""
        if self.kind not in SYSTEM_KINDS:
            raise ValueError(
                f"system kind {self.kind!r} is unknown; expected one of: {', '.join(SYSTEM_KINDS)}"
            )
        if self.kind in ("vlm", "vlm-base") and not self.model:
            raise ValueError(f"a {self.kind} system needs 'model' (a hub id or a local folder)")
        if self.kind == "remote" and not (self.remote_url and self.remote_model):
            raise ValueError("a remote system needs 'remote_url' and 'remote_model'")
        if self.max_new_tokens < 1:
            raise ValueError("'max_new_tokens' must be at least 1")
        if self.batch_size < 1:
            raise ValueError("'batch_size' must be at least 1")
        if self.video_max_frames < 2:
            raise ValueError("'video_max_frames' must be at least 2")
        if self.video_fps <= 0:
            raise ValueError("'video_fps' must be positive")
        if self.remote_concurrency < 1:
            raise ValueError("'remote_concurrency' must be at least 1")
        if self.remote_retries < 0:
            raise ValueError("'remote_retries' must not be negative")
        if self.remote_timeout_s <= 0:
            raise ValueError("'remote_timeout_s' must be positive")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(
                f"'dtype' {self.dtype!r} is unknown; expected one of: {', '.join(DTYPES)}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SystemSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown system field(s): {', '.join(unknown)}")
        if "kind" not in d:
            raise ValueError("a system needs 'kind'")
        return cls(**d)


DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")


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


_FOLDER_HASH_CACHE: dict[tuple, str] = {}


def folder_content_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (cached on path, size and mtime)."""
    folder = Path(folder).resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    stamp = tuple(
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    key = (str(folder), stamp)
    if key in _FOLDER_HASH_CACHE:
        return _FOLDER_HASH_CACHE[key]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    value = digest.hexdigest()
    _FOLDER_HASH_CACHE[key] = value
    return value


def _source_identity(ref: str | None) -> str | None:
    """A local folder is identified by its content, a hub id by its name."""
    if not ref:
        return None
    path = Path(os.path.expanduser(ref))
    if path.is_dir():
        return "sha256:" + folder_content_hash(path)
    return "hub:" + ref


def fingerprint(spec: SystemSpec, prompt: PromptTemplate) -> str:
    """sha256 over the output-determining spec fields, model/adapter identity and prompt hash."""
    fields = {k: v for k, v in spec.to_dict().items() if k not in RUNTIME_ONLY_FIELDS}
    fields["model"] = _source_identity(spec.model)
    if spec.kind == "vlm-base":
        # The adapter is disabled: the output does not depend on it.
        fields["adapter"] = None
        fields["merge_adapter"] = False
    else:
        fields["adapter"] = _source_identity(spec.adapter)
    if spec.kind in ("vlm", "vlm-base") and fields.get("dtype") is None:
        # The default dtype depends on the device; record the resolved one.
        fields["dtype"] = default_dtype_name(resolve_device(spec.device))
    payload = {
        "code_version": GENERATION_CODE_VERSION,
        "spec": fields,
        "prompt": prompt.hash,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def resolve_device(device: str | None) -> str:
    """None -> "cuda:0" when a GPU is present, else "cpu"."""
    if device:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def default_dtype_name(device: str) -> str:
    return "bfloat16" if device.startswith("cuda") else "float32"


def build_generator(spec: SystemSpec, train: list[TrainExample] | None = None) -> ReportGenerator:
    """The generator for a system; baselines that learn from the train split need `train`."""
    spec.validate()
    if spec.kind in ("vlm", "vlm-base"):
        from model.generation import VLMGenerator

        return VLMGenerator(spec)
    if spec.kind == "remote":
        from model.remote import RemoteGenerator

        return RemoteGenerator(spec)
    from model.baselines import ReferenceBaseline, RetrievalBaseline, TemplateBaseline

    if spec.kind == "reference":
        return ReferenceBaseline(spec)
    if not train:
        raise ValueError(f"the {spec.kind} baseline needs the train split (no train cases given)")
    if spec.kind == "retrieval":
        return RetrievalBaseline(spec, train)
    return TemplateBaseline(spec, train)
