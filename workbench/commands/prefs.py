"""`medvision prefs export|preview|automatic`: preference pairs from reader-study judgments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from studies.preferences.harvest import (
    HarvestPolicy,
    HarvestResult,
    PreferenceError,
    export_preferences,
    harvest_automatic,
    harvest_preferences,
)
from studies.store.db import get_store

prefs_app = typer.Typer()
console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _policy(
    min_raters: int,
    min_agreement: float,
    ties: str,
    both_bad: str,
    min_likert_margin: float | None,
    likert_criteria: str | None,
    include_gold: bool,
    automatic: bool,
    validation_fraction: float,
    seed: int,
    prompt: str | None,
) -> HarvestPolicy:
    return HarvestPolicy(
        min_raters=min_raters,
        min_agreement=min_agreement,
        ties=ties,
        both_bad=both_bad,
        min_likert_margin=min_likert_margin,
        likert_criteria=[c.strip() for c in likert_criteria.split(",") if c.strip()]
        if likert_criteria
        else None,
        include_gold=include_gold,
        automatic=automatic,
        validation_fraction=validation_fraction,
        seed=seed,
        prompt=prompt,
    )


_POLICY_OPTIONS: dict[str, Any] = {
    "min_raters": typer.Option(1, "--min-raters", help="Raters an item needs."),
    "min_agreement": typer.Option(
        0.0, "--min-agreement", help="Share of raters on the winning side (1 = unanimous)."
    ),
    "ties": typer.Option("drop", help="drop, or keep (both orders; train with --loss-type ipo)."),
    "both_bad": typer.Option(
        "drop", "--both-bad", help="drop, or reference (the human reference as chosen)."
    ),
    "min_likert_margin": typer.Option(
        None, "--min-likert-margin", help="Mean Likert difference winner minus loser."
    ),
    "likert_criteria": typer.Option(
        None, "--likert-criteria", help="Comma-separated criteria for the margin (default all)."
    ),
    "include_gold": typer.Option(False, "--include-gold", help="Also harvest gold items."),
    "automatic": typer.Option(
        False, "--automatic", help="Add automatic cold-start pairs (clinical metric errors)."
    ),
    "validation_fraction": typer.Option(
        0.1, "--validation-fraction", help="Share of cases held out (split by case)."
    ),
    "seed": typer.Option(0, help="Seed of the train/validation split."),
    "prompt": typer.Option(None, help="Prompt name (default: the benchmark task's)."),
}


def _print_counts(result: HarvestResult) -> None:
    counts = result.counts
    typer.echo(
        f"study {result.study}: {counts['pairs']} pairs ({counts['train']} train / "
        f"{counts['validation']} validation), human {counts['human_pairs']}, automatic "
        f"{counts['automatic_pairs']}; judged items {counts['items_judged']}/{counts['items']}"
    )
    if counts["dropped"]:
        typer.echo("dropped: " + ", ".join(f"{k} {v}" for k, v in counts["dropped"].items()))
    if result.synthetic:
        typer.echo("SYNTHETIC data.")


@prefs_app.command("export")
def prefs_export(
    study: str = typer.Option(..., help="Study name."),
    out: Path = typer.Option(..., help="Output folder (must be new or empty)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export."),
    min_raters: int = _POLICY_OPTIONS["min_raters"],
    min_agreement: float = _POLICY_OPTIONS["min_agreement"],
    ties: str = _POLICY_OPTIONS["ties"],
    both_bad: str = _POLICY_OPTIONS["both_bad"],
    min_likert_margin: float | None = _POLICY_OPTIONS["min_likert_margin"],
    likert_criteria: str | None = _POLICY_OPTIONS["likert_criteria"],
    include_gold: bool = _POLICY_OPTIONS["include_gold"],
    automatic: bool = _POLICY_OPTIONS["automatic"],
    validation_fraction: float = _POLICY_OPTIONS["validation_fraction"],
    seed: int = _POLICY_OPTIONS["seed"],
    prompt: str | None = _POLICY_OPTIONS["prompt"],
) -> None:
    """Harvest a study's judgments into TRL vision preference pairs (datasets + JSONL)."""
    policy = _policy(
        min_raters,
        min_agreement,
        ties,
        both_bad,
        min_likert_margin,
        likert_criteria,
        include_gold,
        automatic,
        validation_fraction,
        seed,
        prompt,
    )
    try:
        result = harvest_preferences(get_store(), study, policy)
        summary = export_preferences(result, out, overwrite=overwrite)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    typer.echo(
        f"wrote {summary.out_dir} ({summary.n_train} train, {summary.n_validation} validation, "
        f"{summary.n_images} images; data sha256 {summary.data_hash[:16]})"
    )


@prefs_app.command("preview")
def prefs_preview(
    study: str = typer.Option(..., help="Study name."),
    limit: int = typer.Option(5, help="Pairs to print."),
    min_raters: int = _POLICY_OPTIONS["min_raters"],
    min_agreement: float = _POLICY_OPTIONS["min_agreement"],
    ties: str = _POLICY_OPTIONS["ties"],
    both_bad: str = _POLICY_OPTIONS["both_bad"],
    min_likert_margin: float | None = _POLICY_OPTIONS["min_likert_margin"],
    likert_criteria: str | None = _POLICY_OPTIONS["likert_criteria"],
    include_gold: bool = _POLICY_OPTIONS["include_gold"],
    automatic: bool = _POLICY_OPTIONS["automatic"],
    validation_fraction: float = _POLICY_OPTIONS["validation_fraction"],
    seed: int = _POLICY_OPTIONS["seed"],
    prompt: str | None = _POLICY_OPTIONS["prompt"],
) -> None:
    """Counts and the first pairs a policy gives, without writing anything."""
    policy = _policy(
        min_raters,
        min_agreement,
        ties,
        both_bad,
        min_likert_margin,
        likert_criteria,
        include_gold,
        automatic,
        validation_fraction,
        seed,
        prompt,
    )
    try:
        result = harvest_preferences(get_store(), study, policy)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    for row in result.preview(limit):
        typer.echo(json.dumps(row, ensure_ascii=False))


@prefs_app.command("automatic")
def prefs_automatic(
    benchmark: str = typer.Option(..., help="Benchmark name."),
    system: list[str] = typer.Option(..., help="System whose reports are checked (repeat)."),
    out: Path = typer.Option(..., help="Output folder (must be new or empty)."),
    split: str = typer.Option("train", help="Split (train keeps the test cases unseen)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export."),
    validation_fraction: float = _POLICY_OPTIONS["validation_fraction"],
    seed: int = _POLICY_OPTIONS["seed"],
    prompt: str | None = _POLICY_OPTIONS["prompt"],
) -> None:
    """Cold-start pairs without a study: reference vs reports with a significant clinical error."""
    policy = HarvestPolicy(
        automatic=True, validation_fraction=validation_fraction, seed=seed, prompt=prompt
    )
    try:
        result = harvest_automatic(get_store(), benchmark, list(system), split, policy)
        summary = export_preferences(result, out, overwrite=overwrite)
    except PreferenceError as exc:
        _fail(str(exc))
    _print_counts(result)
    typer.echo(
        f"wrote {summary.out_dir} ({summary.n_train} train, {summary.n_validation} validation "
        "automatic pairs)"
    )


# --- train ----------------------------------------------------------------------------
