"""`medvision stats pairwise|study`: reader statistics and significance tables.

The statistics stack (pandas, scipy, statsmodels) is imported inside the commands, so that
`medvision stats --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from studies.exports.render import FORMATS

if TYPE_CHECKING:
    from studies.reader_stats.analysis import AnalysisSettings

stats_app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(2)


def _settings(**values: object) -> AnalysisSettings:
    from studies.reader_stats.analysis import AnalysisSettings

    settings = AnalysisSettings(**values)  # type: ignore[arg-type]
    try:
        settings.check()
    except ValueError as exc:
        _fail(str(exc))
    return settings


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {out}", err=True)


@stats_app.command("pairwise")
def pairwise_command(
    input: Path = typer.Option(..., "--input", "-i", help="Judgments file (.csv or .jsonl)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", "-b", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    fmt: str = typer.Option("json", "--format", "-f", help="json, csv, latex or markdown."),
    cluster: str = typer.Option(
        "case+rater",
        help="Bradley-Terry clusters: case+rater (two-way, default), case, rater or none.",
    ),
    interval: str = typer.Option(
        "sandwich",
        help="Bradley-Terry interval: sandwich (cluster-robust, default) or bootstrap.",
    ),
    ties: str = typer.Option("half", help="Tie model: half (half wins) or davidson."),
    both_bad: str = typer.Option("tie", help="'Both unacceptable': tie or drop."),
    style: bool = typer.Option(False, "--style", help="Control for report length (len_a, len_b)."),
    correction: str = typer.Option("holm", help="Multiple comparisons: holm, bh or none."),
    level: float = typer.Option(0.95, help="Interval level."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write to this file."),
) -> None:
    """Bradley-Terry strengths, ranks, win/tie/loss and sign tests from a judgments file.

    The file needs the columns rater, case, system_a, system_b and winner (a, b, tie or
    both_bad). JSON has a top-level warnings list (disconnected comparisons, perfect
    separation, no resamples, ...) and lists each system with system, bt, ci_low, ci_high,
    rank and component (null interval and rank where the data give none).
    """
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    settings = _settings(
        n_resamples=bootstrap,
        seed=seed,
        cluster=cluster,
        interval=interval,
        tie_model=ties,
        both_bad=both_bad,
        style=style,
        correction=correction,
        level=level,
    )
    from studies.reader_stats import tables as reader_tables
    from studies.reader_stats.analysis import analyze_pairwise
    from studies.reader_stats.data import JudgmentsError, load_judgments_file

    try:
        judgments = load_judgments_file(input)
        with console.status("Bradley-Terry strengths and intervals..."):
            analysis = analyze_pairwise(judgments, settings)
    except (JudgmentsError, ValueError) as exc:
        _fail(str(exc))
    for warning in analysis.warnings:
        console.print(f"Warning: {warning}", markup=False, highlight=False)
    if fmt == "json":
        text = json.dumps(reader_tables.pairwise_json(analysis), indent=2, default=str) + "\n"
    else:
        tables = reader_tables.pairwise_tables(analysis)
        text = reader_tables.render_many(tables, analysis.provenance, fmt)
    _emit(text, out)


@stats_app.command("study")
def study_command(
    study: str | None = typer.Option(
        None, "--study", "-s", help="Study name (or --input FILE: a judgments file)."
    ),
    input: Path | None = typer.Option(
        None,
        "--input",
        "-i",
        help="Judgments file (.csv or .jsonl, e.g. a `studies export`) instead of --study.",
    ),
    fmt: str = typer.Option("markdown", "--format", "-f", help="json, csv, latex or markdown."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for every table (csv, latex, markdown), plots, manifest."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", "-b", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the bootstrap."),
    cluster: str = typer.Option(
        "case+rater",
        help="Bradley-Terry clusters: case+rater (two-way, default), case, rater or none.",
    ),
    interval: str = typer.Option(
        "sandwich",
        help="Bradley-Terry interval: sandwich (cluster-robust, default) or bootstrap.",
    ),
    ties: str = typer.Option("half", help="Tie model: half (half wins) or davidson."),
    both_bad: str = typer.Option("tie", help="'Both unacceptable': tie or drop."),
    style: bool = typer.Option(False, "--style", help="Control for report length."),
    correction: str = typer.Option("holm", help="Multiple comparisons: holm, bh or none."),
    comparator: str | None = typer.Option(
        None, help="Reference system for models and harm non-inferiority."
    ),
    margin: float = typer.Option(0.5, help="Non-inferiority margin on the harm criterion."),
    harm_criterion: str | None = typer.Option(
        None,
        "--harm-criterion",
        help="Criterion for harm non-inferiority (default: the one the form declares harm).",
    ),
    metrics: Path | None = typer.Option(
        None, help="Per-case metric table (.csv: case, system, metric columns)."
    ),
    lower_is_better: list[str] = typer.Option(
        [], "--lower-is-better", help="Metric where lower is better (repeatable)."
    ),
    plots: bool = typer.Option(
        True, "--plots/--no-plots", help="Write the figures (PNG at 300 dpi, SVG, PDF)."
    ),
) -> None:
    """All reader analyses of a study: tables, the combined paper table and plots."""
    import pandas as pd

    from studies.reader_stats import tables as reader_tables
    from studies.reader_stats.analysis import analyze_study
    from studies.reader_stats.data import JudgmentsError, load_judgments_file
    from studies.readers.judgments import study_judgments
    from studies.store.db import get_store

    if (study is None) == (input is None):
        _fail("name the study with --study NAME, or give its judgments with --input FILE (one)")
    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    settings = _settings(
        n_resamples=bootstrap,
        seed=seed,
        cluster=cluster,
        interval=interval,
        tie_model=ties,
        both_bad=both_bad,
        style=style,
        correction=correction,
        comparator=comparator,
        margin=margin,
        lower_is_better=tuple(lower_is_better),
        harm_criterion=harm_criterion,
    )
    metric_table = None
    if metrics is not None:
        if not metrics.exists():
            _fail(f"{metrics}: no such file")
        try:
            metric_table = pd.read_csv(metrics)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            _fail(f"{metrics}: not a readable CSV file ({exc})")
    try:
        if input is not None:
            judgments = load_judgments_file(input)
        else:
            judgments = study_judgments(get_store(), study)
        with console.status(f"Analysing {len(judgments)} judgments ({bootstrap} resamples)..."):
            analysis = analyze_study(judgments, settings, metric_table=metric_table)
    except (JudgmentsError, ValueError) as exc:
        _fail(str(exc))
    if out is not None:
        formats = reader_tables.FORMATS if fmt == "json" else ("csv", fmt)
        # The json format writes analysis.json next to every table.
        written = reader_tables.write_study_outputs(
            analysis, out, formats=tuple(dict.fromkeys(formats)), plots=plots
        )
        typer.echo(f"Wrote {len(written)} files to {out}", err=True)
        return
    if fmt == "json":
        text = json.dumps(reader_tables.study_json(analysis), indent=2, default=str) + "\n"
    else:
        tables = reader_tables.study_tables(analysis)
        text = reader_tables.render_many(tables, analysis.provenance, fmt)
    _emit(text, None)


from workbench.commands.mrmc import register as _register_mrmc  # noqa: E402

_register_mrmc(stats_app)  # stats mrmc, stats power
