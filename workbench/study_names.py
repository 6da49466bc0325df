"""How every command names a study: `--study NAME`, one spelling everywhere.

`studies start|pause|resume|close|progress|enrol|export` once took the study as a first
positional argument, while `stats study`, `prefs export|preview` and `studies invite` took
`--study`. The option is the one spelling now; the positional one is still accepted, hidden
from the help, with a note that says what to type instead.
"""

from __future__ import annotations

import shlex
from typing import Any, NoReturn

import typer

STUDY_HELP = "Study name, as `medvision studies list` shows it."


def study_option(help: str = STUDY_HELP, required: bool = False) -> Any:
    """The `--study NAME` option (required ones say so in the help)."""
    return typer.Option(... if required else None, "--study", help=help)


def legacy_study_argument() -> Any:
    """The old positional spelling, hidden from the help."""
    return typer.Argument(None, hidden=True, metavar="", show_default=False)


def study_name(option: str | None, positional: str | None, command: str) -> str:
    """The study a command names: `--study`, or the old positional spelling with a note.

    Exits with code 2 and a message naming `--study` when none or two different are given.
    """
    if option and positional and option != positional:
        _usage(
            f"two study names ({option!r} with --study and {positional!r} before it); "
            "name one, with --study"
        )
    if option:
        return option
    if positional:
        typer.echo(
            f"Note: name the study with --study: `medvision {command} --study "
            f"{shlex.quote(positional)}` (the name without --study will stop working).",
            err=True,
        )
        return positional
    _usage("name the study with --study NAME (`medvision studies list` lists them)")


def _usage(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)
