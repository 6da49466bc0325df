"""`medvision systems add|list`: report generators (models and baselines)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from studies.store.db import get_store
from studies.systems.registry import (
    KINDS,
    SystemConfigError,
    list_systems,
    register_system,
    spec_from_options,
)

systems_app = typer.Typer()
console = Console(stderr=True)


@systems_app.command("add")
def add(
    name: str = typer.Argument(..., help="A unique system name."),
    kind: str = typer.Option(..., help=f"One of: {', '.join(KINDS)}."),
    model: str | None = typer.Option(None, help="Hub id or local model folder (vlm, vlm-base)."),
    adapter: Path | None = typer.Option(None, help="LoRA adapter folder (vlm, vlm-base)."),
    merge_adapter: bool = typer.Option(
        False, "--merge-adapter", help="Merge the adapter into the weights."
    ),
    prompt: str | None = typer.Option(None, help="Prompt name (default: by benchmark task)."),
    max_new_tokens: int | None = typer.Option(None, help="Most tokens to generate."),
    batch_size: int | None = typer.Option(None, help="Cases per batch (and per commit)."),
    video_fps: float | None = typer.Option(None, help="Frames per second sampled from video."),
    video_max_frames: int | None = typer.Option(None, help="Most frames per video."),
    image_max_pixels: int | None = typer.Option(None, help="Resize images above this."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 (default: cuda if any)."),
    dtype: str | None = typer.Option(None, help="float32, bfloat16 or float16."),
    remote_url: str | None = typer.Option(None, help="Base URL of an OpenAI-compatible server."),
    remote_model: str | None = typer.Option(None, help="Model name on the remote server."),
    remote_api_key_env: str | None = typer.Option(
        None, help="Name of the environment variable holding the API key (never the key)."
    ),
    remote_concurrency: int | None = typer.Option(None, help="Parallel remote requests."),
    embedding: str | None = typer.Option(None, help="Retrieval: which CPU image embedding."),
    version: str | None = typer.Option(None, help="Version label (default 1, bumped on replace)."),
    description: str = typer.Option("", help="Free text shown with the system."),
    replace: bool = typer.Option(False, "--replace", help="Replace a system of the same name."),
) -> None:
    """Register a system; re-adding the same definition changes nothing."""
    try:
        spec = spec_from_options(
            kind,
            model=model,
            adapter=str(adapter) if adapter else None,
            merge_adapter=merge_adapter or None,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            video_fps=video_fps,
            video_max_frames=video_max_frames,
            image_max_pixels=image_max_pixels,
            device=device,
            dtype=dtype,
            remote_url=remote_url,
            remote_model=remote_model,
            remote_api_key_env=remote_api_key_env,
            remote_concurrency=remote_concurrency,
            embedding=embedding,
        )
        info, created = register_system(
            get_store(), name, spec, version=version, description=description, replace=replace
        )
    except SystemConfigError as exc:
        typer.echo(f"System not added: {exc}", err=True)
        raise typer.Exit(1) from exc
    state = "Added" if created else "Up to date"
    typer.echo(f"{state}: {info.name} v{info.version} ({info.summary()})")
    typer.echo(f"fingerprint {info.fingerprint[:16]}")


@systems_app.command("list")
def list_command() -> None:
    """One line per system: name, version, kind and settings, fingerprint."""
    systems = list_systems(get_store())
    if not systems:
        typer.echo("No systems yet: add one with `medvision systems add NAME --kind ...`.")
        return
    for info in systems:
        typer.echo(f"{info.name}\tv{info.version}\t{info.summary()}\t{info.fingerprint[:16]}")
