"""Typer options generated from dataclass fields (`model.options`), so a command's options
are the settings' fields, with their help, and never a hand-written copy of them.

Shared by the command modules; it lives outside `workbench/commands/` so that a command's
`--help` imports no command module but its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import typer

from model.options import Option


def typer_parameters(
    found: Iterable[Option], help_suffix: Callable[[Option], str] | None = None
) -> list[inspect.Parameter]:
    """One keyword parameter per option; every default is None ("not given")."""
    parameters = []
    for option in found:
        help_text = option.full_help
        if help_suffix is not None:
            help_text += help_suffix(option)
        if option.type is bool:
            negative = "--no-" + option.flag.removeprefix("--")
            info = typer.Option(None, f"{option.flag}/{negative}", help=help_text)
        else:
            # Choices are checked by the settings' own validation, whose message names them.
            info = typer.Option(None, *option.flags, help=help_text)
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=info,
                annotation=option.type | None,
            )
        )
    return parameters


def with_parameters(func: Callable[..., Any], extra: list[inspect.Parameter]) -> Callable:
    """`func` (which takes **values) with `extra` added to the signature typer reads."""
    signature = inspect.signature(func, eval_str=True)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    func.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]
    func.__annotations__ = {
        **{p.name: p.annotation for p in own},
        **{p.name: p.annotation for p in extra},
        "return": signature.return_annotation,
    }
    return func


def option_names(message: str, fields: Iterable[str], found: Iterable[Option]) -> str:
    """A message that names spec/settings fields ('remote_url') with their flags (--remote-url)."""
    flags = {option.name: option.flag for option in found}
    for name in fields:
        if name in flags:
            message = message.replace(f"'{name}'", flags[name])
    return message
