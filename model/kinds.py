"""THE table of system kinds: what each kind is, which spec fields it needs and reads, how it
is checked and fingerprinted, and the generator that serves it (imported only when built).

Every other place reads this table: the store's system registry validates through
`check_spec`, runs ask `learns_from_train`, `medvision systems add` offers the kinds and
the spec fields as options, and the pages pick systems by these flags. Adding a kind is one
generator class and one `KINDS` entry, as in lmms-eval's `AVAILABLE_SIMPLE_MODELS`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.prompts import PromptTemplate, get_prompt
from model.requests import TrainExample
from model.spec import (
    ReportGenerator,
    SpecError,
    SystemSpec,
    default_dtype_name,
    field_help,
    resolve_device,
)

# Bumped when generation code changes in a way that changes outputs for the same spec.
# 2: greedy no longer inherits the checkpoint's repetition penalty; the Qwen3-VL per-frame
# pixel cap is on by default; the batch size of model kinds is part of the fingerprint.
GENERATION_CODE_VERSION = "2"

# Fields that change how fast or where a system runs, never what it writes. (The batch
# size of a kind that runs model weights is the exception: in bf16 on a GPU, greedy text
# depends on the batch's shape and padding, so for those kinds it is fingerprinted.)
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

# Fields every kind reads (prompt, decoding, media sampling, device). The other spec fields
# belong to the kinds that list them in `options`; set on any other kind they are refused.
COMMON_FIELDS: frozenset[str] = frozenset(
    {
        "kind",
        "prompt",
        "max_new_tokens",
        "batch_size",
        "video_fps",
        "video_max_frames",
        "image_max_pixels",
        "device",
    }
)

Check = Callable[[SystemSpec, bool], None]


@dataclass(frozen=True)
class SystemKind:
    """One kind of report generator."""

    name: str
    generator: str  # "module:Class", imported by build_generator only
    description: str
    required: tuple[str, ...] = ()  # spec fields that must be set
    options: tuple[str, ...] = ()  # kind-specific spec fields it reads (besides COMMON_FIELDS)
    needs_model: bool = False  # loads model weights (a base model, maybe an adapter)
    learns_from_train: bool = False  # built from the benchmark's train split
    generates_text: bool = False  # writes new text from the media (max_new_tokens applies)
    ignores_adapter_output: bool = False  # the adapter is named but off: not fingerprinted
    # Writes the case's reference text (an oracle): a ceiling, not a system to compare, so
    # leaderboards leave it out of tables and correction families unless asked.
    copies_reference: bool = False
    check: Check | None = None  # further rules: check(spec, strict) raises SpecError

    def allows(self, field: str) -> bool:
        return field in COMMON_FIELDS or field in self.options


def looks_local(value: str) -> bool:
    """True when a model reference is a filesystem path rather than a hub id."""
    return value.startswith(("/", ".", "~")) or Path(value).expanduser().exists()


def _check_model_files(spec: SystemSpec) -> None:
    if spec.model and looks_local(spec.model):
        folder = Path(spec.model).expanduser()
        if not folder.is_dir():
            raise SpecError(f"model folder {spec.model!r} does not exist", "model")
        if not (folder / "config.json").is_file():
            raise SpecError(
                f"model folder {spec.model!r} has no config.json; "
                "is it a Hugging Face model folder?",
                "model",
            )
    if spec.adapter:
        folder = Path(spec.adapter).expanduser()
        if not folder.is_dir():
            raise SpecError(f"adapter folder {spec.adapter!r} does not exist", "adapter")
        if not (folder / "adapter_config.json").is_file():
            raise SpecError(
                f"adapter folder {spec.adapter!r} has no adapter_config.json; "
                "is it a peft LoRA adapter folder?",
                "adapter",
            )


def _check_vlm(spec: SystemSpec, strict: bool) -> None:
    if spec.merge_adapter and not spec.adapter:
        raise SpecError("'merge_adapter' needs 'adapter'", "merge_adapter", "adapter")
    if strict:
        _check_model_files(spec)


def _check_vlm_base(spec: SystemSpec, strict: bool) -> None:
    # Generating with no adapter to disable is the plain model; registering one is a mistake.
    if strict and not spec.adapter:
        raise SpecError(
            "a vlm-base system disables a LoRA adapter: give the 'adapter' it disables "
            "(for a plain model without an adapter, use kind vlm)",
            "adapter",
        )
    if strict:
        _check_model_files(spec)


def _check_remote(spec: SystemSpec, strict: bool) -> None:
    if spec.remote_url and not spec.remote_url.startswith(("http://", "https://")):
        raise SpecError(
            f"'remote_url' {spec.remote_url!r} must start with http:// or https://", "remote_url"
        )


_VLM_OPTIONS = (
    "model",
    "adapter",
    "merge_adapter",
    "dtype",
    "repetition_penalty",
    "video_max_pixels",
    "video_cap_pixels_per_frame",
    "static_cache",
)

KINDS: dict[str, SystemKind] = {
    "vlm": SystemKind(
        "vlm",
        "model.generation:VLMGenerator",
        "a vision-language model (hub id or local folder), optionally with a LoRA adapter",
        required=("model",),
        options=_VLM_OPTIONS,
        needs_model=True,
        generates_text=True,
        check=_check_vlm,
    ),
    "vlm-base": SystemKind(
        "vlm-base",
        "model.generation:VLMGenerator",
        "the same model with its LoRA adapter disabled (shares the loaded weights)",
        required=("model",),
        options=_VLM_OPTIONS,
        needs_model=True,
        generates_text=True,
        ignores_adapter_output=True,
        check=_check_vlm_base,
    ),
    "retrieval": SystemKind(
        "retrieval",
        "model.baselines:RetrievalBaseline",
        "the report of the nearest training image (needs the benchmark's train split)",
        options=("embedding",),
        learns_from_train=True,
    ),
    "template": SystemKind(
        "template",
        "model.baselines:TemplateBaseline",
        "the most frequent training report, per class where labels exist",
        learns_from_train=True,
    ),
    "reference": SystemKind(
        "reference",
        "model.baselines:ReferenceBaseline",
        "the human reference text of each case",
        copies_reference=True,
    ),
    "remote": SystemKind(
        "remote",
        "model.remote:RemoteGenerator",
        "an OpenAI-compatible chat-completions server (vLLM, SGLang)",
        required=("remote_url", "remote_model"),
        options=(
            "remote_url",
            "remote_model",
            "remote_api_key_env",
            "remote_concurrency",
            "remote_timeout_s",
            "remote_retries",
            "repetition_penalty",
            "video_max_pixels",
            "remote_video",
        ),
        generates_text=True,
        check=_check_remote,
    ),
}


def kind_of(name: str) -> SystemKind:
    """The kind called `name`; SpecError listing the known kinds otherwise."""
    if name not in KINDS:
        raise SpecError(
            f"unknown system kind {name!r}; expected one of: {', '.join(KINDS)}", "kind"
        )
    return KINDS[name]


def kinds_where(**flags: bool) -> tuple[str, ...]:
    """Names of the kinds whose flags have the given values, e.g. needs_model=True."""
    return tuple(
        name
        for name, kind in KINDS.items()
        if all(getattr(kind, flag) == value for flag, value in flags.items())
    )


def readers_of(field: str) -> tuple[str, ...]:
    """The kinds that read spec field `field`."""
    return tuple(name for name, kind in KINDS.items() if kind.allows(field))


def check_spec(spec: SystemSpec, *, strict: bool = False) -> SystemKind:
    """Raise SpecError naming the spec field to fix when `spec` cannot work; the kind otherwise.

    `strict` adds the rules for registering a system: local model and adapter folders exist
    and look like what they claim, and a vlm-base names the adapter it disables.
    """
    spec.validate()
    kind = kind_of(spec.kind)
    for name in kind.required:
        if not getattr(spec, name):
            raise SpecError(f"a {kind.name} system needs '{name}' ({field_help(name)})", name)
    defaults = SystemSpec(kind=spec.kind)
    for name, value in spec.to_dict().items():
        if value != getattr(defaults, name) and not kind.allows(name):
            raise SpecError(
                f"'{name}' only applies to {', '.join(readers_of(name))} systems, not {kind.name}",
                name,
            )
    if spec.prompt is not None:
        try:
            get_prompt(spec.prompt)
        except ValueError as exc:
            raise SpecError(f"'prompt': {exc}", "prompt") from None
    if kind.check is not None:
        kind.check(spec, strict)
    return kind


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
    kind = KINDS.get(spec.kind)
    fields = {k: v for k, v in spec.to_dict().items() if k not in RUNTIME_ONLY_FIELDS}
    if kind is not None and kind.needs_model:
        fields["batch_size"] = spec.batch_size
    fields["model"] = _source_identity(spec.model)
    if kind is not None and kind.ignores_adapter_output:
        # The adapter is disabled: the output does not depend on it.
        fields["adapter"] = None
        fields["merge_adapter"] = False
    else:
        fields["adapter"] = _source_identity(spec.adapter)
    if kind is not None and kind.needs_model and fields.get("dtype") is None:
        # The default dtype depends on the device; record the resolved one.
        fields["dtype"] = default_dtype_name(resolve_device(spec.device))
    payload = {
        "code_version": GENERATION_CODE_VERSION,
        "spec": fields,
        "prompt": prompt.hash,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generator_class(kind: SystemKind) -> type:
    """Import the class that serves `kind` (only now: the VLM one pulls in torch)."""
    module, _, attribute = kind.generator.partition(":")
    return getattr(importlib.import_module(module), attribute)


def build_generator(spec: SystemSpec, train: list[TrainExample] | None = None) -> ReportGenerator:
    """The generator for a system; kinds that learn from the train split need `train`."""
    kind = check_spec(spec)
    cls = generator_class(kind)
    if not kind.learns_from_train:
        return cls(spec)
    if not train:
        raise ValueError(f"the {spec.kind} baseline needs the train split (no train cases given)")
    return cls(spec, train)
