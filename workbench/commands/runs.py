"""`medvision run`: systems over a benchmark split, through the generation cache."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

run_app = typer.Typer()
console = Console(stderr=True)


@run_app.command("run")
def run(
    benchmark: str = typer.Option(..., help="Benchmark name."),
    system: list[str] = typer.Option(..., help="System name (repeat for several)."),
    split: str = typer.Option("test", help="train, val or test."),
    limit: int | None = typer.Option(None, help="Only the first N cases of the split."),
) -> None:
    """Run systems over a benchmark split; cached cases are skipped, Ctrl-C resumes."""
    from studies.store.db import get_store
    from studies.systems.runs import RunError, run_system

    store = get_store()
    failed = False
    for name in system:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(f"{name} on {benchmark}/{split}", total=None)

            def advance(done: int, total: int, task=task, bar=bar) -> None:
                bar.update(task, completed=done, total=total)

            try:
                report = run_system(
                    store, benchmark, name, split=split, limit=limit, progress=advance
                )
            except RunError as exc:
                bar.stop()
                typer.echo(f"{name}: nothing was run: {exc}", err=True)
                failed = True
                continue
            except KeyboardInterrupt:
                bar.stop()
                typer.echo(
                    f"{name}: interrupted; finished chunks are saved, run again to resume.",
                    err=True,
                )
                raise typer.Exit(130) from None
            except Exception as exc:
                bar.stop()
                typer.echo(
                    f"{name}: failed ({type(exc).__name__}: {exc}); finished chunks are "
                    "saved, run again to resume.",
                    err=True,
                )
                failed = True
                continue
        typer.echo(report.summary())
    if failed:
        raise typer.Exit(1)
