"""`medvision train sft|dpo|jobs`: LoRA training jobs whose adapters become systems.

The settings options of `sft` and `dpo` are generated from the settings dataclasses
(`model.training.settings`), the same ones `python -m model.training` offers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from model.training.settings import (
    SETTINGS_FILE_HELP,
    DPOSettings,
    SFTSettings,
    TrainerSettings,
    build_settings,
    read_settings_file,
    settings_options,
)
from workbench.options import typer_parameters, with_parameters

train_app = typer.Typer()
console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _with_progress(run: Any) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


def _report(job: Any) -> None:
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
    "settings": typer.Option(None, "--settings", help=SETTINGS_FILE_HELP + "."),
}


def _configure(settings_class: type[TrainerSettings], values: dict[str, Any]) -> Any:
    """Settings from the --settings file (or the defaults), then the options given."""
    try:
        return build_settings(settings_class, read_settings_file(values["settings"]), values)
    except ValueError as exc:
        _fail(str(exc))


def train_sft_command(
    benchmark: str = typer.Option(..., help="Benchmark whose train split is learned."),
    split: str = typer.Option("train", help="Split to train on."),
    validation_split: str | None = typer.Option(None, "--validation-split"),
    model: Path = _COMMON["model"],
    out: Path = _COMMON["out"],
    system_name: str | None = _COMMON["system_name"],
    like: str | None = _COMMON["like"],
    settings: Path | None = _COMMON["settings"],
    **values: Any,
) -> None:
    """LoRA supervised fine-tuning on a benchmark split; registers the adapter as a system."""
    from model.training.data import TrainingDataError
    from studies.store.db import get_store
    from studies.systems.training_jobs import TrainingJobError, run_sft_job

    config = _configure(SFTSettings, {**values, "settings": settings})
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


def train_dpo_command(
    prefs: Path = typer.Option(..., help="Preference export folder (`medvision prefs export`)."),
    init_adapter: Path | None = typer.Option(
        None, "--init-adapter", help="Continue from this adapter (e.g. an SFT one)."
    ),
    model: Path = _COMMON["model"],
    out: Path = _COMMON["out"],
    system_name: str | None = _COMMON["system_name"],
    like: str | None = _COMMON["like"],
    settings: Path | None = _COMMON["settings"],
    **values: Any,
) -> None:
    """DPO with LoRA on harvested preference pairs; registers the adapter as a system."""
    from model.training.data import TrainingDataError
    from studies.store.db import get_store
    from studies.systems.training_jobs import TrainingJobError, run_dpo_job

    config = _configure(DPOSettings, {**values, "settings": settings})
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


for _name, _command, _settings in (
    ("sft", train_sft_command, SFTSettings),
    ("dpo", train_dpo_command, DPOSettings),
):
    train_app.command(_name)(
        with_parameters(_command, typer_parameters(settings_options(_settings)))
    )


@train_app.command("jobs")
def train_jobs(limit: int = typer.Option(20, help="Most recent jobs to list.")) -> None:
    """Training jobs, newest first: id, kind, status, steps, final loss, system."""
    from studies.store.db import get_store
    from studies.systems.training_jobs import list_training_jobs

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
