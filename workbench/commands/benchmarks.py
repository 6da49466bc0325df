"""`medvision benchmarks list|import|show`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

benchmarks_app = typer.Typer()
console = Console(stderr=True)


@benchmarks_app.command("list")
def list_benchmarks() -> None:
    """One line per registered loader (name, task, the benchmarks imported with it), then
    one line per imported benchmark (name, loader, task, case counts per split)."""
    from studies.benchmarks import get_loader, loader_names
    from studies.store.db import get_store
    from studies.systems.catalog import benchmark_summaries

    summaries = benchmark_summaries(get_store())
    for name in loader_names():
        loader = get_loader(name)
        mine = [summary.name for summary in summaries if summary.loader == name]
        imported = f"imported as {', '.join(mine)}" if mine else "not imported"
        tag = " [synthetic]" if loader.synthetic else ""
        typer.echo(f"{name}\t{loader.task}\t{imported}{tag}\t{loader.description}")
    if summaries:
        typer.echo("\nimported benchmarks:")
    for summary in summaries:
        counts = ", ".join(f"{split} {count}" for split, count in summary.splits.items())
        tag = " [synthetic]" if summary.synthetic else ""
        typer.echo(f"{summary.name}\t{summary.loader}\t{summary.task}\t{counts}{tag}")


@benchmarks_app.command("import")
def import_command(
    loader: str = typer.Argument(..., help="Loader name (see `medvision benchmarks list`)."),
    root: Path = typer.Argument(..., help="Dataset folder."),
    name: str | None = typer.Option(None, help="Benchmark name (default: the loader name)."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Import the good rows and report the bad ones."
    ),
    rehash: bool = typer.Option(
        False,
        "--rehash",
        help="Read and hash every media file again, even those whose size and modification "
        "time are unchanged since the last import.",
    ),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Loader option KEY=VALUE (repeatable)."
    ),
) -> None:
    """Import (or update) a dataset; re-importing unchanged data changes nothing."""
    from studies.benchmarks import BenchmarkImportError, loader_names
    from studies.benchmarks.importer import import_benchmark
    from studies.store.db import get_store

    if loader not in loader_names():
        typer.echo(f"Unknown loader {loader!r}; known: {', '.join(loader_names())}", err=True)
        raise typer.Exit(2)
    options: dict[str, object] = {}
    for item in option:
        if "=" not in item:
            typer.echo(f"--option {item!r} must look like KEY=VALUE", err=True)
            raise typer.Exit(2)
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    store = get_store()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("hashing media (cases)", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            report = import_benchmark(
                store,
                loader,
                root,
                name=name,
                skip_bad=skip_bad,
                rehash=rehash,
                options=options,
                progress=advance,
            )
        except BenchmarkImportError as exc:
            progress.stop()
            typer.echo(f"Nothing was imported.\n{exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(report.summary())
    typer.echo(report.media_summary())
    for problem in report.skipped[:20]:
        typer.echo(f"  skipped: {problem}")


@benchmarks_app.command("show")
def show(
    name: str = typer.Argument(..., help="Benchmark name."),
    split: str | None = typer.Option(None, help="Only this split."),
    limit: int = typer.Option(10, help="How many cases to print."),
) -> None:
    """Print a benchmark's splits and its first cases."""
    from studies.store.db import get_store
    from studies.systems.catalog import benchmark_summaries, list_cases

    store = get_store()
    summaries = {s.name: s for s in benchmark_summaries(store)}
    if name not in summaries:
        typer.echo(f"No benchmark called {name!r}; imported: {', '.join(summaries)}", err=True)
        raise typer.Exit(1)
    summary = summaries[name]
    tag = " (SYNTHETIC data)" if summary.synthetic else ""
    typer.echo(f"{summary.name}{tag}: loader {summary.loader}, task {summary.task}")
    typer.echo(f"root: {summary.root}")
    typer.echo("splits: " + ", ".join(f"{k} {v}" for k, v in summary.splits.items()))
    for case in list_cases(store, name, split=split, limit=limit):
        reference = (case.references[0] if case.references else "").replace("\n", " ")
        typer.echo(f"- {case.case_key} [{case.split}, {case.modality}] {reference[:100]}")
        if case.question:
            typer.echo(f"  question: {case.question[:200]}")
