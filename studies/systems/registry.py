"""Systems: named, versioned report generators registered in the store.

A system row holds its `SystemSpec` (model/spec.py) as JSON and a fingerprint; what a kind
needs and allows is checked by the one kinds table (model/kinds.py). The stored fingerprint
uses the system's own prompt (or the colonoscopy report prompt); a run recomputes it with the
prompt of the benchmark's task, and the generation cache is keyed by that run-time
fingerprint, the case and the prompt hash, so one system on two tasks never mixes its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from model.kinds import KINDS, check_spec, fingerprint, looks_local
from model.prompts import PromptTemplate, get_prompt, prompt_for_task
from model.spec import SpecError, SystemSpec
from studies.store.db import Store
from studies.store.schema import System

# The prompt a system is fingerprinted with at registration when it names none.
DEFAULT_TASK = "report"


class SystemConfigError(SpecError):
    """A system that cannot be registered or found; the message names what to fix
    (spec fields in quotes, listed in `fields`, so the CLI can name its own options)."""


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
        if self.kind in KINDS and KINDS[self.kind].generates_text:
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


def normalise_spec(spec: SystemSpec) -> SystemSpec:
    """A copy with local model and adapter paths made absolute (hub ids are left alone)."""
    data = spec.to_dict()
    if data.get("model") and looks_local(data["model"]):
        data["model"] = str(Path(data["model"]).expanduser().resolve())
    if data.get("adapter"):
        data["adapter"] = str(Path(data["adapter"]).expanduser().resolve())
    return SystemSpec.from_dict(data)


def validate_spec(spec: SystemSpec) -> None:
    """Raise SystemConfigError naming the spec field to fix when `spec` cannot work.

    The rules are the kind's (`model.kinds.check_spec`), registration rules included.
    """
    try:
        check_spec(spec, strict=True)
    except SpecError as exc:
        raise SystemConfigError(str(exc), *exc.fields) from None


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
    """A checked SystemSpec from CLI/page options; None values keep the SystemSpec defaults."""
    known = {f.name for f in fields(SystemSpec)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SystemConfigError(f"unknown system field(s): {', '.join(unknown)}", *unknown)
    values = {key: value for key, value in options.items() if value is not None}
    try:
        spec = SystemSpec(kind=kind, **values)
        check_spec(spec)
    except SpecError as exc:
        raise SystemConfigError(str(exc), *exc.fields) from None
    return spec
