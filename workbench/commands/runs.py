"""`medvision run`: systems over a benchmark split, through the generation cache.

Progress is per case with an estimate of the time left: a live line on a terminal, and a
plain line every few cases or seconds otherwise (a log file, CI, a pipe).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from studies.systems.runs import RunProgress

run_app = typer.Typer()
console = Console(stderr=True)

# Without a terminal: a line at each stage, then every tenth of the cases or this often.
PLAIN_EVERY_S = 30.0
PLAIN_LINES = 10


class PlainProgress:
    """Progress as plain lines for a log: each stage once, then every `every_cases` cases
    or `every_s` seconds, whichever comes first, and the last case."""

    def __init__(
        self,
        echo: Callable[[str], None],
        *,
        every_s: float = PLAIN_EVERY_S,
        lines: int = PLAIN_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.echo = echo
        self.every_s = every_s
        self.lines = lines
        self.clock = clock
        self._stage = ""
        self._done = -1
        self._at = 0.0

    def __call__(self, state: RunProgress) -> None:
        now = self.clock()
        every_cases = max(1, math.ceil(state.total / self.lines)) if state.total else 1
        due = (
            state.stage != self._stage
            or (state.done - self._done >= every_cases)
            or (state.done > self._done and now - self._at >= self.every_s)
        )
        if due:
            self.echo(state.text())
            self._stage, self._done, self._at = state.stage, state.done, now


class LiveProgress:
    """A rich progress line on a terminal, moved case by case."""

    def __init__(self, bar) -> None:  # noqa: ANN001 - a rich.progress.Progress
        self.bar = bar
        self.task = bar.add_task("", total=None, status="")

    def __call__(self, state: RunProgress) -> None:
        self.bar.update(
            self.task,
            description=state.system,
            completed=state.done,
            total=state.total or None,
            status=state.text().removeprefix(f"{state.system}: "),
        )


def _live_bar():  # noqa: ANN202
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@run_app.command("run")
def run(
    benchmark: str = typer.Option(..., help="Benchmark name."),
    system: list[str] = typer.Option(..., help="System name (repeat for several)."),
    split: str = typer.Option("test", help="train, val or test."),
    limit: int | None = typer.Option(None, help="Only the first N cases of the split."),
) -> None:
    """Run systems over a benchmark split; cached cases are skipped, Ctrl-C resumes."""
    from contextlib import nullcontext

    from studies.store.db import get_store
    from studies.systems.runs import RunError, run_system

    store = get_store()
    failed = False
    for name in system:
        live = console.is_terminal
        bar = _live_bar() if live else nullcontext()
        with bar:
            watch = LiveProgress(bar) if live else PlainProgress(lambda t: typer.echo(t, err=True))

            def stop(bar=bar, live=live) -> None:
                if live:
                    bar.stop()

            try:
                report = run_system(
                    store, benchmark, name, split=split, limit=limit, on_progress=watch
                )
            except RunError as exc:
                stop()
                typer.echo(f"{name}: nothing was run: {exc}", err=True)
                failed = True
                continue
            except KeyboardInterrupt:
                stop()
                typer.echo(
                    f"{name}: interrupted; finished chunks are saved, run again to resume.",
                    err=True,
                )
                raise typer.Exit(130) from None
            except Exception as exc:
                stop()
                typer.echo(
                    f"{name}: failed ({type(exc).__name__}: {exc}); finished chunks are "
                    "saved, run again to resume.",
                    err=True,
                )
                failed = True
                continue
        typer.echo(report.summary())
        for warning in report.warnings:
            typer.echo(f"Warning: {name}: {warning}", err=True)
    if failed:
        raise typer.Exit(1)
