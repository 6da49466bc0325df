"""`medvision demo`, `medvision serve`, `medvision db upgrade`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from model.notice import RESEARCH_NOTICE
from workbench.environment import describe_database

APP_FILE = Path(__file__).resolve().parent.parent / "app.py"
db_app = typer.Typer(no_args_is_help=True)
demo_app = typer.Typer()
serve_app_cli = typer.Typer()


def upload_limit_mb() -> int:
    """MEDVISION_MAX_UPLOAD_MB as Streamlit's whole-megabyte `server.maxUploadSize`."""
    import math

    from studies.store.settings import get_settings

    return max(1, math.ceil(get_settings().max_upload_mb))


def serve_app(host: str, port: int) -> int:
    """Run the Streamlit app in the foreground; returns its exit code."""
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # No "Deploy" button or developer menu for raters.
        "--client.toolbarMode",
        "minimal",
        # No traceback (server paths, code) in a rater's browser; pages say what to do.
        "--client.showErrorDetails",
        "none",
        # The server refuses bigger uploads itself (Streamlit's default is 200 MB whatever
        # MEDVISION_MAX_UPLOAD_MB says); save_uploads checks the exact limit again.
        "--server.maxUploadSize",
        str(upload_limit_mb()),
    ]
    env = dict(os.environ)
    # The app imports the project packages; make sure they resolve from any folder.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(APP_FILE.parent.parent), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    return _run_forwarding_signals(command, env)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run the server as a child and pass SIGTERM, SIGINT and SIGHUP on to it, so stopping
    `medvision serve` or `medvision demo` by its pid stops the server too."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {
        signum: signal.signal(signum, forward)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    # Stopped by a signal we passed on: a normal stop, not a failure.
    return 0 if code in (-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP) else code


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version (SQLite: copied first)."""
    from studies.store.db import SchemaError, upgrade
    from studies.store.settings import get_settings

    settings = get_settings()
    try:
        upgrade(settings.url, echo=typer.echo)
    except SchemaError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Database is up to date: {describe_database(settings.url)}")


@demo_app.command("demo")
def demo(
    host: str = typer.Option("127.0.0.1", help="Address to serve on."),
    port: int = typer.Option(8501, help="Port to serve on."),
    seed_only: bool = typer.Option(False, "--seed-only", help="Seed, do not serve."),
) -> None:
    """Seed the synthetic demo data (idempotent) and serve the app."""
    from studies.demo.seed import seed_demo
    from studies.store.db import get_store, upgrade
    from studies.store.settings import get_settings

    settings = get_settings()
    upgrade(settings.url, echo=typer.echo)  # copies the SQLite file first when it migrates
    store = get_store(settings.url)
    typer.echo(f"Med-Vision Workbench demo. {RESEARCH_NOTICE}")
    typer.echo(f"Database: {describe_database(settings.url)}")
    from studies.readers.accounts import AccountError

    try:
        logins = seed_demo(store, settings, typer.echo)
    except AccountError as exc:  # e.g. MEDVISION_ADMIN_NAME is not a valid username
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if seed_only:
        for line in logins:
            typer.echo(line)
        return
    typer.echo(f"\nOpen http://{host}:{port} in a browser.")
    for line in logins:
        typer.echo(line)
    raise typer.Exit(serve_app(host, port))


@serve_app_cli.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to serve on."),
    port: int = typer.Option(8501, help="Port to serve on."),
) -> None:
    """Serve the app (migrates the database first)."""
    from studies.store.db import upgrade
    from studies.store.settings import get_settings

    settings = get_settings()
    upgrade(settings.url, echo=typer.echo)  # copies the SQLite file first when it migrates
    typer.echo(f"Database: {describe_database(settings.url)}")
    typer.echo(f"Open http://{host}:{port} in a browser.")
    raise typer.Exit(serve_app(host, port))
