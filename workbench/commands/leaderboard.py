"""`medvision leaderboard`: metrics with CIs and paired tests against a baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from metrics.registry import default_groups, metric_groups
from metrics.significance import CORRECTIONS, FAMILIES

leaderboard_app = typer.Typer()


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code=2)


@leaderboard_app.command("leaderboard")
def leaderboard(
    benchmark: str = typer.Option(..., "--benchmark", help="Benchmark name."),
    baseline: str = typer.Option(..., "--baseline", help="Baseline system name."),
    fmt: str = typer.Option("markdown", "--format", help="csv | latex | markdown | json"),
    split: str = typer.Option("test", "--split"),
    metrics: str = typer.Option(
        ",".join(default_groups()),
        "--metrics",
        help=f"Comma-separated metric groups: {', '.join(metric_groups())}.",
    ),
    systems: str | None = typer.Option(
        None, "--systems", help="Comma-separated systems (default: all with generations)."
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples."),
    permutations: int = typer.Option(1000, "--permutations", help="AR permutations."),
    seed: int = typer.Option(0, "--seed"),
    correction: str = typer.Option("holm", "--correction", help=" | ".join(CORRECTIONS)),
    family: str = typer.Option(
        "per-metric",
        "--family",
        help="Comparisons one correction covers: per-metric (each metric's comparisons with "
        "the baseline) | all (every metric and system).",
    ),
    include_reference: bool = typer.Option(
        False,
        "--include-reference",
        help="Show systems that copy the reference reports, as a ceiling row (never in a "
        "correction family).",
    ),
    table: str = typer.Option(
        "paper",
        "--table",
        help="paper (systems x metrics, estimate [CI] cells) | long (metric x system rows "
        "with differences and p-values).",
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="Comma-separated metric columns of the paper table (default: all), e.g. "
        "BLEU-4,CIDEr,clinical.",
    ),
    cider_resampling: str = typer.Option(
        "exact",
        "--cider-resampling",
        help="exact (document frequencies per resample) | fixed-idf (faster)",
    ),
    bertscore_model: str | None = typer.Option(
        None, "--bertscore-model", help="Model name or local folder (with --bertscore-layers)."
    ),
    bertscore_layers: int | None = typer.Option(None, "--bertscore-layers"),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    out_dir: Path | None = typer.Option(
        None,
        "--out",
        help="Write every table (paper and long, CSV, LaTeX, Markdown, JSON) and the figures "
        "(PNG 300 dpi, SVG, PDF) to this folder.",
    ),
) -> None:
    """Metrics with 95% CIs and paired tests against a baseline, as a table."""
    # Scoring and the store load only when the command runs (fast --help).
    from metrics.bertscore import BertScoreConfig
    from studies.leaderboard.build import (
        FORMATS,
        LeaderboardConfig,
        LeaderboardError,
        build_leaderboard,
    )
    from studies.leaderboard.tables import (
        TABLES,
        export_leaderboard,
        paper_columns,
        write_leaderboard_outputs,
    )
    from studies.store.db import get_store

    if fmt not in FORMATS:
        _fail(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if family not in FAMILIES:
        _fail(f"--family {family!r}: use one of {', '.join(FAMILIES)}")
    if table not in TABLES:
        _fail(f"--table {table!r}: use one of {', '.join(TABLES)}")
    config = LeaderboardConfig(
        benchmark=benchmark,
        baseline=baseline,
        split=split,
        systems=[s.strip() for s in systems.split(",") if s.strip()] if systems else None,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        n_resamples=bootstrap,
        n_permutations=permutations,
        seed=seed,
        correction=correction,
        family=family,
        include_reference=include_reference,
        cider_resampling=cider_resampling,
        bertscore=BertScoreConfig(model=bertscore_model, num_layers=bertscore_layers)
        if bertscore_model or bertscore_layers
        else None,
    )
    try:
        board = build_leaderboard(
            get_store(),
            config,
            progress=lambda message, _fraction: typer.echo(f"... {message}", err=True),
        )
        chosen = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
        chosen = paper_columns(board, chosen)
    except LeaderboardError as exc:
        _fail(str(exc))
    if out_dir is not None:
        for path in write_leaderboard_outputs(board, out_dir, chosen):
            typer.echo(f"Wrote {path}", err=True)
    text = export_leaderboard(board, fmt, table, chosen)
    if output:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)
