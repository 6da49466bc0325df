"""Command-line options declared once, on dataclass fields (TRL's `XConfig` manner).

A settings field carries `field(default=..., metadata={"help": ...})`; `options(cls)` turns
every such field into an `Option` (flag, scalar type, help, choices), from which the argparse
launcher (`python -m model.training`) and the typer commands (`medvision train`, `medvision
systems add`) build their parsers. Imports nothing heavy, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One command-line option generated from one dataclass field."""

    name: str  # the field name (the key in the settings' dict)
    type: type  # int, float, str or bool (None is always accepted: "not given")
    help: str
    default: Any  # the field's default, shown in help
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()  # further flags, e.g. "--lr"
    parse: Callable[[str], Any] | None = None  # text -> field value when it is not a scalar

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag, *self.aliases)

    @property
    def full_help(self) -> str:
        """The help with the choices and the default (unless the help states its own)."""
        text = self.help
        if self.choices:
            text += f"; one of: {', '.join(self.choices)}"
        if self.default is not None and "(default:" not in self.help:
            text += f" (default: {self.default})"
        return text


def _scalar(annotation: Any) -> type:
    """The scalar behind `X`, `X | None` or `str | list[str]` (the first scalar member)."""
    if annotation in (int, float, str, bool):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        for member in members:
            if member in (bool, int, float, str):
                return member
    raise TypeError(f"no command-line type for {annotation!r}")


def options(cls: type, skip: Iterable[str] = ()) -> list[Option]:
    """Every field of dataclass `cls` that declares a help text, in declaration order."""
    hints = typing.get_type_hints(cls)
    skipped = set(skip)
    found = []
    for item in dataclasses.fields(cls):
        help_text = item.metadata.get("help")
        if help_text is None or item.name in skipped:
            continue
        default = item.default
        if default is dataclasses.MISSING and item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        found.append(
            Option(
                name=item.name,
                # A parsed field (e.g. a comma-separated list) is one text option.
                type=str if "parse" in item.metadata else _scalar(hints[item.name]),
                help=help_text,
                default=None if default is dataclasses.MISSING else default,
                choices=tuple(item.metadata["choices"]) if "choices" in item.metadata else None,
                aliases=tuple(item.metadata.get("aliases", ())),
                parse=item.metadata.get("parse"),
            )
        )
    return found


def add_arguments(parser: argparse.ArgumentParser, found: Iterable[Option]) -> None:
    """Add each option to an argparse parser; every default is None ("not given")."""
    for option in found:
        help_text = option.full_help
        if option.type is bool:
            parser.add_argument(
                *option.flags,
                dest=option.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
            continue
        parser.add_argument(
            *option.flags,
            dest=option.name,
            type=option.type,
            default=None,
            help=help_text,
        )


def given(values: dict[str, Any], found: Iterable[Option]) -> dict[str, Any]:
    """The options that were given (not None), by field name, parsed into field values."""
    out: dict[str, Any] = {}
    for option in found:
        value = values.get(option.name)
        if value is not None:
            out[option.name] = option.parse(value) if option.parse else value
    return out
