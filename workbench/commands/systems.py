"""`medvision systems add|list`: report generators (models and baselines).

`systems add` offers the kinds of `model.kinds.KINDS` and one option per `SystemSpec` field
(generated from the field's help), so a new kind or spec field needs no edit here.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from model.kinds import COMMON_FIELDS, KINDS, readers_of
from model.options import Option, options
from model.spec import SystemSpec
from workbench.options import option_names, typer_parameters, with_parameters

systems_app = typer.Typer()
console = Console(stderr=True)

SPEC_OPTIONS = options(SystemSpec, skip=("kind",))


def _which_kinds(option: Option) -> str:
    if option.name in COMMON_FIELDS:
        return ""
    return f". Kinds: {', '.join(readers_of(option.name))}"


def _kinds_help() -> str:
    lines = [f"{name}: {kind.description}." for name, kind in KINDS.items()]
    return "Register a system; re-adding the same definition changes nothing.\n\nKinds:\n\n" + (
        "\n\n".join(lines)
    )


def add(
    name: str = typer.Argument(..., help="A unique system name."),
    kind: str = typer.Option(..., help=f"One of: {', '.join(KINDS)}."),
    version: str | None = typer.Option(None, help="Version label (default 1, bumped on replace)."),
    description: str = typer.Option("", help="Free text shown with the system."),
    replace: bool = typer.Option(False, "--replace", help="Replace a system of the same name."),
    **spec_values: Any,
) -> None:
    # The store (SQLAlchemy) is imported when the command runs, not for --help.
    from studies.store.db import get_store
    from studies.systems.registry import SystemConfigError, register_system, spec_from_options

    try:
        spec = spec_from_options(kind, **{o.name: spec_values.get(o.name) for o in SPEC_OPTIONS})
        info, created = register_system(
            get_store(), name, spec, version=version, description=description, replace=replace
        )
    except SystemConfigError as exc:
        message = option_names(str(exc), exc.fields, SPEC_OPTIONS)
        typer.echo(f"System not added: {message}", err=True)
        raise typer.Exit(1) from exc
    state = "Added" if created else "Up to date"
    typer.echo(f"{state}: {info.name} v{info.version} ({info.summary()})")
    typer.echo(f"fingerprint {info.fingerprint[:16]}")


add.__doc__ = _kinds_help()
systems_app.command("add")(
    with_parameters(add, typer_parameters(SPEC_OPTIONS, help_suffix=_which_kinds))
)


@systems_app.command("list")
def list_command() -> None:
    """One line per system: name, version, kind and settings, fingerprint."""
    from studies.store.db import get_store
    from studies.systems.registry import list_systems

    systems = list_systems(get_store())
    if not systems:
        typer.echo("No systems yet: add one with `medvision systems add NAME --kind ...`.")
        return
    for info in systems:
        typer.echo(f"{info.name}\tv{info.version}\t{info.summary()}\t{info.fingerprint[:16]}")
