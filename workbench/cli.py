"""The `medvision` command line: one typer app; each area registers its own commands."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="medvision",
    help="Med-Vision Workbench: evaluate and reader-study AI-written colonoscopy reports. "
    "Research software, not a medical device.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Each module exposes register(app); order is the order of `medvision --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "workbench.commands.core",
    "workbench.commands.benchmarks",
    "workbench.commands.runs",
    "workbench.commands.stats",
    "workbench.commands.studies",
    "workbench.commands.train",
    "workbench.commands.metrics",
)

for _module in COMMAND_MODULES:
    importlib.import_module(_module).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
