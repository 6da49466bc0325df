"""`medvision train sft|dpo|jobs`: LoRA training jobs whose adapters become systems."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from model.training import (
    DPO_LOSS_TYPES,
    DPOSettings,
    LoraSettings,
    SFTSettings,
    TrainingDataError,
)
from studies.store.db import get_store
from studies.systems.training_jobs import (
    TrainingJobError,
    TrainingJobInfo,
    list_training_jobs,
    run_dpo_job,
    run_sft_job,
)

train_app = typer.Typer()
console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _lora(rank: int, alpha: int, dropout: float, target_modules: str | None) -> LoraSettings:
    lora = LoraSettings(rank=rank, alpha=alpha, dropout=dropout)
    if target_modules:
        parts = [p.strip() for p in target_modules.split(",") if p.strip()]
        lora.target_modules = (
            parts[0] if len(parts) == 1 and any(c in parts[0] for c in "*.(|") else parts
        )
    return lora


def _settings_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        _fail(f"--settings {path}: {exc}")
    return {}


def _apply(settings: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is not None:
            setattr(settings, key, value)


def _with_progress(run: Any) -> TrainingJobInfo:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=None, loss="")

        def progress(step: int, total: int, logs: dict[str, Any]) -> None:
            loss = logs.get("loss")
            bar.update(
                task,
                completed=step,
                total=total or None,
                loss=f"loss {loss:.4f}" if isinstance(loss, float) else "",
            )

        return run(progress)


def _report(job: TrainingJobInfo) -> None:
    result = job.result
    typer.echo(
        f"job {job.id} {job.status}: {result.get('steps')} steps, final loss "
        f"{result.get('final_loss')}, reward accuracy {result.get('reward_accuracy')}"
    )
    typer.echo(f"adapter {job.output_dir} registered as system {job.system_name!r}")
    typer.echo(
        f"next: medvision run --benchmark BENCHMARK --system {job.system_name}  "
        "(then put it on the leaderboard or into the next study)"
    )


_COMMON: dict[str, Any] = {
    "model": typer.Option(..., help="Local Hugging Face model folder (the base model)."),
    "out": typer.Option(..., help="New folder for the adapter and its training card."),
    "system_name": typer.Option(
        None, "--system-name", help="Name of the new system (default: the output folder name)."
    ),
    "like": typer.Option(
        None, "--like", help="Copy decoding settings from this registered vlm system."
    ),
    "settings": typer.Option(None, "--settings", help="JSON file with settings fields."),
    "learning_rate": typer.Option(None, "--learning-rate", "--lr"),
    "epochs": typer.Option(None, "--epochs"),
    "max_steps": typer.Option(None, "--max-steps", help="Overrides epochs when > 0."),
    "batch_size": typer.Option(None, "--batch-size"),
    "gradient_accumulation": typer.Option(None, "--gradient-accumulation"),
    "gradient_checkpointing": typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing"
    ),
    "bf16": typer.Option(None, "--bf16/--no-bf16", help="Default: bf16 on a GPU that has it."),
    "seed": typer.Option(None, "--seed"),
    "rank": typer.Option(16, "--rank", help="LoRA rank."),
    "alpha": typer.Option(32, "--alpha", help="LoRA alpha."),
    "dropout": typer.Option(0.05, "--dropout", help="LoRA dropout."),
    "target_modules": typer.Option(
        None,
        "--target-modules",
        help="A regex or comma-separated module names (default: language-model attention "
        "and MLP projections).",
    ),
    "device": typer.Option(None, "--device", help="cpu or cuda (default: cuda if present)."),
}


def _configure(
    settings_class: type[Any],
    settings: Path | None,
    lora: Callable[[], LoraSettings],
    overrides: dict[str, Any],
) -> Any:
    """Settings from a --settings file (or the defaults with the LoRA options), then the
    command-line overrides that were given."""
    try:
        config = settings_class.from_dict(_settings_file(settings))
    except (TypeError, ValueError) as exc:
        _fail(f"--settings: {exc}")
    if settings is None:
        config.lora = lora()
    _apply(config, overrides)
    return config


@train_app.command("sft")
def train_sft_command(
    benchmark: str = typer.Option(..., help="Benchmark whose train split is learned."),
    split: str = typer.Option("train", help="Split to train on."),
    validation_split: str | None = typer.Option(None, "--validation-split"),
    model: Path = _COMMON["model"],
    out: Path = _COMMON["out"],
    system_name: str | None = _COMMON["system_name"],
    like: str | None = _COMMON["like"],
    settings: Path | None = _COMMON["settings"],
    learning_rate: float | None = _COMMON["learning_rate"],
    epochs: float | None = _COMMON["epochs"],
    max_steps: int | None = _COMMON["max_steps"],
    batch_size: int | None = _COMMON["batch_size"],
    gradient_accumulation: int | None = _COMMON["gradient_accumulation"],
    gradient_checkpointing: bool | None = _COMMON["gradient_checkpointing"],
    bf16: bool | None = _COMMON["bf16"],
    seed: int | None = _COMMON["seed"],
    rank: int = _COMMON["rank"],
    alpha: int = _COMMON["alpha"],
    dropout: float = _COMMON["dropout"],
    target_modules: str | None = _COMMON["target_modules"],
    device: str | None = _COMMON["device"],
) -> None:
    """LoRA supervised fine-tuning on a benchmark split; registers the adapter as a system."""
    config = _configure(
        SFTSettings,
        settings,
        lambda: _lora(rank, alpha, dropout, target_modules),
        {
            "learning_rate": learning_rate,
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "gradient_accumulation": gradient_accumulation,
            "gradient_checkpointing": gradient_checkpointing,
            "bf16": bf16,
            "seed": seed,
            "device": device,
        },
    )
    store = get_store()
    try:
        job = _with_progress(
            lambda progress: run_sft_job(
                store,
                benchmark,
                model,
                out,
                config,
                system_name=system_name,
                split=split,
                validation_split=validation_split,
                like_system=like,
                progress=progress,
            )
        )
    except (TrainingJobError, TrainingDataError) as exc:
        _fail(str(exc))
    _report(job)


@train_app.command("dpo")
def train_dpo_command(
    prefs: Path = typer.Option(..., help="Preference export folder (`medvision prefs export`)."),
    init_adapter: Path | None = typer.Option(
        None, "--init-adapter", help="Continue from this adapter (e.g. an SFT one)."
    ),
    beta: float | None = typer.Option(None, "--beta"),
    loss_type: str | None = typer.Option(
        None, "--loss-type", help="One of: " + ", ".join(DPO_LOSS_TYPES)
    ),
    model: Path = _COMMON["model"],
    out: Path = _COMMON["out"],
    system_name: str | None = _COMMON["system_name"],
    like: str | None = _COMMON["like"],
    settings: Path | None = _COMMON["settings"],
    learning_rate: float | None = _COMMON["learning_rate"],
    epochs: float | None = _COMMON["epochs"],
    max_steps: int | None = _COMMON["max_steps"],
    batch_size: int | None = _COMMON["batch_size"],
    gradient_accumulation: int | None = _COMMON["gradient_accumulation"],
    gradient_checkpointing: bool | None = _COMMON["gradient_checkpointing"],
    bf16: bool | None = _COMMON["bf16"],
    seed: int | None = _COMMON["seed"],
    rank: int = _COMMON["rank"],
    alpha: int = _COMMON["alpha"],
    dropout: float = _COMMON["dropout"],
    target_modules: str | None = _COMMON["target_modules"],
    device: str | None = _COMMON["device"],
) -> None:
    """DPO with LoRA on harvested preference pairs; registers the adapter as a system."""
    config = _configure(
        DPOSettings,
        settings,
        lambda: _lora(rank, alpha, dropout, target_modules),
        {
            "beta": beta,
            "loss_type": loss_type,
            "learning_rate": learning_rate,
            "epochs": epochs,
            "max_steps": max_steps,
            "batch_size": batch_size,
            "gradient_accumulation": gradient_accumulation,
            "gradient_checkpointing": gradient_checkpointing,
            "bf16": bf16,
            "seed": seed,
            "device": device,
        },
    )
    store = get_store()
    try:
        job = _with_progress(
            lambda progress: run_dpo_job(
                store,
                prefs,
                model,
                out,
                config,
                system_name=system_name,
                init_adapter=init_adapter,
                like_system=like,
                progress=progress,
            )
        )
    except (TrainingJobError, TrainingDataError) as exc:
        _fail(str(exc))
    _report(job)


@train_app.command("jobs")
def train_jobs(limit: int = typer.Option(20, help="Most recent jobs to list.")) -> None:
    """Training jobs, newest first: id, kind, status, steps, final loss, system."""
    jobs = list_training_jobs(get_store(), limit)
    if not jobs:
        typer.echo("No training jobs yet.")
        return
    for job in jobs:
        typer.echo(
            f"{job.id}\t{job.kind}\t{job.status}\tsteps {job.result.get('steps', len(job.log))}"
            f"\tloss {job.result.get('final_loss')}\t{job.system_name or '-'}\t{job.output_dir}"
            + (f"\t{job.error}" if job.error else "")
        )
