"""Systems: named, versioned report generators registered in the store.

A system row holds its `SystemSpec` (model/systems.py) as JSON and a fingerprint. The stored
fingerprint uses the system's own prompt (or the colonoscopy report prompt); a run recomputes
it with the prompt of the benchmark's task, and the generation cache is keyed by that
run-time fingerprint, the case and the prompt hash, so one system on two tasks never mixes
its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from model.prompts import PromptTemplate, get_prompt, prompt_for_task
from model.systems import SystemSpec, fingerprint
from studies.store.db import Store
from studies.store.schema import System

KINDS: dict[str, str] = {
    "vlm": "a vision-language model (hub id or local folder), optionally with a LoRA adapter",
    "vlm-base": "the same model with its LoRA adapter disabled (shares the loaded weights)",
    "retrieval": "the report of the nearest training image (needs the benchmark's train split)",
    "template": "the most frequent training report, per class where labels exist",
    "reference": "the human reference text of each case",
    "remote": "an OpenAI-compatible chat-completions server (vLLM, SGLang)",
}
MODEL_KINDS = ("vlm", "vlm-base")
# The prompt a system is fingerprinted with at registration when it names none.
DEFAULT_TASK = "report"


class SystemConfigError(ValueError):
    """A system definition that cannot work; the message names the field to fix."""


@dataclass
class SystemInfo:
    """A registered system as the CLI and the pages show it."""

    id: int
    name: str
    kind: str
    version: str
    config: dict[str, Any]
    fingerprint: str
    description: str
    created_at: datetime | None

    @property
    def spec(self) -> SystemSpec:
        return SystemSpec.from_dict(self.config)

    def summary(self) -> str:
        """One line: what the system is made of."""
        spec = self.spec
        parts = [self.kind]
        if spec.model:
            parts.append(f"model={spec.model}")
        if spec.adapter:
            parts.append(f"adapter={spec.adapter}")
        if spec.remote_url:
            parts.append(f"url={spec.remote_url}")
        if spec.embedding:
            parts.append(f"embedding={spec.embedding}")
        if spec.prompt:
            parts.append(f"prompt={spec.prompt}")
        if self.kind in MODEL_KINDS or self.kind == "remote":
            parts.append(f"max_new_tokens={spec.max_new_tokens}")
        return " ".join(parts)


def _info(row: System) -> SystemInfo:
    return SystemInfo(
        id=row.id,
        name=row.name,
        kind=row.kind,
        version=row.version,
        config=dict(row.config),
        fingerprint=row.fingerprint,
        description=row.description,
        created_at=row.created_at,
    )


def _looks_local(value: str) -> bool:
    """True when a model reference is a filesystem path rather than a hub id."""
    return value.startswith(("/", ".", "~")) or Path(value).expanduser().exists()


def normalise_spec(spec: SystemSpec) -> SystemSpec:
    """A copy with local model and adapter paths made absolute (hub ids are left alone)."""
    data = spec.to_dict()
    if data.get("model") and _looks_local(data["model"]):
        data["model"] = str(Path(data["model"]).expanduser().resolve())
    if data.get("adapter"):
        data["adapter"] = str(Path(data["adapter"]).expanduser().resolve())
    return SystemSpec.from_dict(data)


def validate_spec(spec: SystemSpec) -> None:
    """Raise SystemConfigError naming the field to fix when `spec` cannot work."""
    if spec.kind not in KINDS:
        known = ", ".join(KINDS)
        raise SystemConfigError(f"unknown system kind {spec.kind!r}; expected one of: {known}")
    if spec.kind in MODEL_KINDS:
        if not spec.model:
            raise SystemConfigError(
                f"a {spec.kind} system needs --model (a hub id or a local model folder)"
            )
        if _looks_local(spec.model):
            folder = Path(spec.model).expanduser()
            if not folder.is_dir():
                raise SystemConfigError(f"model folder {spec.model!r} does not exist")
            if not (folder / "config.json").is_file():
                raise SystemConfigError(
                    f"model folder {spec.model!r} has no config.json; "
                    "is it a Hugging Face model folder?"
                )
    if spec.adapter:
        if spec.kind not in MODEL_KINDS:
            raise SystemConfigError(f"--adapter only applies to vlm and vlm-base, not {spec.kind}")
        folder = Path(spec.adapter).expanduser()
        if not folder.is_dir():
            raise SystemConfigError(f"adapter folder {spec.adapter!r} does not exist")
        if not (folder / "adapter_config.json").is_file():
            raise SystemConfigError(
                f"adapter folder {spec.adapter!r} has no adapter_config.json; "
                "is it a peft LoRA adapter folder?"
            )
    if spec.kind == "vlm-base" and not spec.adapter:
        raise SystemConfigError(
            "a vlm-base system disables a LoRA adapter: give the --adapter it disables "
            "(for a plain model without an adapter, use kind vlm)"
        )
    if spec.merge_adapter and not spec.adapter:
        raise SystemConfigError("--merge-adapter needs --adapter")
    if spec.kind == "remote":
        if not spec.remote_url:
            raise SystemConfigError(
                "a remote system needs --remote-url (the base URL of an OpenAI-compatible "
                "server, e.g. http://127.0.0.1:8000/v1)"
            )
        if not spec.remote_url.startswith(("http://", "https://")):
            raise SystemConfigError(
                f"--remote-url {spec.remote_url!r} must start with http:// or https://"
            )
    elif spec.remote_url:
        raise SystemConfigError(f"--remote-url only applies to remote systems, not {spec.kind}")
    if spec.prompt is not None:
        try:
            get_prompt(spec.prompt)
        except ValueError as exc:
            raise SystemConfigError(f"--prompt: {exc}") from None
    for name in ("max_new_tokens", "batch_size", "video_max_frames", "remote_concurrency"):
        if getattr(spec, name) < 1:
            raise SystemConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if spec.video_fps <= 0:
        raise SystemConfigError("--video-fps must be positive")


def prompt_for(spec: SystemSpec, task: str) -> PromptTemplate:
    """The prompt a system uses on a benchmark of `task`: its own, else the task's default."""
    if spec.prompt:
        return get_prompt(spec.prompt)
    return prompt_for_task(task)


def system_fingerprint(spec: SystemSpec, task: str = DEFAULT_TASK) -> tuple[str, PromptTemplate]:
    """(fingerprint, prompt) of `spec` on a benchmark of `task`."""
    prompt = prompt_for(spec, task)
    return fingerprint(spec, prompt), prompt


def register_system(
    store: Store,
    name: str,
    spec: SystemSpec,
    *,
    version: str | None = None,
    description: str = "",
    replace: bool = False,
) -> tuple[SystemInfo, bool]:
    """Add a system; returns (system, created).

    Re-adding the same definition is a no-op. A different definition under an existing
    name is refused unless `replace` is set, which stores it and bumps the version (the old
    generations stay cached under the old fingerprint).
    """
    name = name.strip()
    if not name:
        raise SystemConfigError("a system needs a non-empty name")
    if len(name) > 200:
        raise SystemConfigError("a system name is at most 200 characters")
    validate_spec(spec)
    spec = normalise_spec(spec)
    config = spec.to_dict()
    print_fingerprint, _prompt = system_fingerprint(spec)
    with store.session() as session:
        row = session.scalar(select(System).where(System.name == name))
        if row is not None:
            if row.config == config and (version is None or version == row.version):
                if row.fingerprint != print_fingerprint:
                    # Same definition, changed files (e.g. a retrained adapter folder).
                    row.fingerprint = print_fingerprint
                return _info(row), False
            if not replace:
                raise SystemConfigError(
                    f"a system named {name!r} already exists with another definition; "
                    "choose another name or pass --replace"
                )
            row.kind = spec.kind
            row.config = config
            row.fingerprint = print_fingerprint
            row.version = version or _next_version(row.version)
            if description:
                row.description = description
            session.flush()
            return _info(row), False
        row = System(
            name=name,
            kind=spec.kind,
            version=version or "1",
            config=config,
            fingerprint=print_fingerprint,
            description=description,
        )
        session.add(row)
        session.flush()
        return _info(row), True


def _next_version(version: str) -> str:
    return str(int(version) + 1) if version.isdigit() else f"{version}+1"


def list_systems(store: Store) -> list[SystemInfo]:
    with store.session() as session:
        rows = session.scalars(select(System).order_by(System.name)).all()
        return [_info(row) for row in rows]


def get_system(store: Store, name: str) -> SystemInfo:
    """The system called `name`; SystemConfigError listing the known names otherwise."""
    with store.session() as session:
        row = session.scalar(select(System).where(System.name == name))
        if row is None:
            known = sorted(session.scalars(select(System.name)).all())
            hint = ", ".join(known) if known else "none yet; add one with `medvision systems add`"
            raise SystemConfigError(f"unknown system {name!r}; registered systems: {hint}")
        return _info(row)


def spec_from_options(kind: str, **options: Any) -> SystemSpec:
    """A SystemSpec from CLI/page options; None values keep the SystemSpec defaults."""
    known = {f.name for f in fields(SystemSpec)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SystemConfigError(f"unknown system option(s): {', '.join(unknown)}")
    values = {key: value for key, value in options.items() if value is not None}
    # Checked here first so the message names the command-line option to fix.
    if kind not in KINDS:
        known = ", ".join(KINDS)
        raise SystemConfigError(f"unknown system kind {kind!r}; expected one of: {known}")
    if kind == "remote":
        if not values.get("remote_url"):
            raise SystemConfigError(
                "a remote system needs --remote-url (the base URL of an OpenAI-compatible "
                "server, e.g. http://127.0.0.1:8000/v1)"
            )
        if not values.get("remote_model"):
            raise SystemConfigError(
                "a remote system needs --remote-model (the model name the server serves)"
            )
    try:
        return SystemSpec(kind=kind, **values)
    except (TypeError, ValueError) as exc:
        raise SystemConfigError(str(exc)) from None
