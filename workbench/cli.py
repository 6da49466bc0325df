"""The `medvision` command line: one table of commands, each module imported only when run.

`medvision --help` lists the table without importing any command module (they pull in
torch, pandas and the store), so help answers at once; `medvision NAME ...` imports just
the module that owns NAME.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup

from model.notice import RESEARCH_NOTICE


class Command:
    """One entry of the command table: where the typer app lives and its one-line help."""

    def __init__(self, target: str, summary: str, *, group: bool = True) -> None:
        self.target = target  # "module:attribute" of a typer.Typer
        self.summary = summary
        # a group keeps its sub-commands even when it has one (`db upgrade`); a plain
        # command is the typer app's single command (`run`, `leaderboard`)
        self.group = group


# Order is the order of `medvision --help`.
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "workbench.commands.core:demo_app",
        "Seed the synthetic demo data (idempotent) and serve the app.",
        group=False,
    ),
    "serve": Command(
        "workbench.commands.core:serve_app_cli",
        "Serve the app (migrates the database first).",
        group=False,
    ),
    "db": Command("workbench.commands.core:db_app", "The workbench database."),
    "benchmarks": Command(
        "workbench.commands.benchmarks:benchmarks_app",
        "Benchmarks: dataset loaders and imported cases.",
    ),
    "systems": Command(
        "workbench.commands.systems:systems_app",
        "Systems: report generators (models and baselines).",
    ),
    "run": Command(
        "workbench.commands.runs:run_app",
        "Run systems over a benchmark split; cached cases are skipped, Ctrl-C resumes.",
        group=False,
    ),
    "leaderboard": Command(
        "workbench.commands.leaderboard:leaderboard_app",
        "Metrics with 95% CIs and paired tests against a baseline, as a table.",
        group=False,
    ),
    "extract": Command(
        "workbench.commands.extract:extract_app",
        "Report text (JSON lines on stdin) -> structured findings.",
        group=False,
    ),
    "studies": Command("workbench.commands.studies:studies_app", "Blinded reader studies."),
    "accounts": Command("workbench.commands.accounts:accounts_app", "Admin and rater accounts."),
    "stats": Command(
        "workbench.commands.stats:stats_app",
        "Reader statistics: Bradley-Terry, sign tests, Likert models, agreement, tables.",
    ),
    "prefs": Command(
        "workbench.commands.prefs:prefs_app",
        "Preference pairs harvested from reader-study judgments.",
    ),
    "train": Command(
        "workbench.commands.train:train_app",
        "LoRA SFT and DPO training; each adapter is registered as a new system.",
    ),
}


def load_command(name: str) -> click.Command:
    """Import the module that owns command NAME and build its click command."""
    entry = COMMANDS[name]
    module, _, attribute = entry.target.partition(":")
    typer_app: typer.Typer = getattr(importlib.import_module(module), attribute)
    build = typer.main.get_group if entry.group else typer.main.get_command
    command = build(typer_app)
    _tidy_help(command)
    command.name = name
    if not command.help:
        command.help = entry.summary
    return command


def _tidy_help(command: click.Command) -> None:
    """Help that shows flags as flags: no `<bool>` after `--overwrite` (typer prints the type
    of every option), and no usage piece for a hidden argument (an old spelling kept)."""
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)
    # By duck type: typer's parameters are not click's own classes.
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if kind == "argument" and getattr(param, "hidden", False):
            param.get_usage_pieces = lambda ctx: []  # type: ignore[method-assign]
    if getattr(command, "_help_tidied", False):
        return
    command._help_tidied = True  # type: ignore[attr-defined]
    make_help = command.get_help_option

    def help_option(ctx: click.Context) -> click.Option | None:
        option = make_help(ctx)  # made afresh for every help page
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option  # type: ignore[method-assign]


class LazyGroup(TyperGroup):
    """A group whose commands come from COMMANDS, imported on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:
            # The help page needs names and summaries only: no module is imported.
            summary = COMMANDS[cmd_name].summary
            return click.Command(cmd_name, help=summary, short_help=summary)
        return load_command(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if type(exc).__module__.startswith(("click", "typer")):
                raise  # exits, help and usage errors
            # Imported only on an error, so `--help` never loads the store.
            from studies.store.db import SchemaError

            if isinstance(exc, SchemaError):
                # A database at an older schema revision: its message, rc 1, no traceback.
                typer.echo(f"Error: {exc}", err=True)
                raise typer.Exit(1) from exc
            raise

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The root's own options (--help, completion) are flags too; typer adds them late.
        _tidy_help(self)
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="medvision",
    cls=LazyGroup,
    help="Med-Vision Workbench: evaluate and reader-study AI-written colonoscopy reports. "
    + RESEARCH_NOTICE,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback makes typer build a group (LazyGroup) even with no command declared here.
    pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
