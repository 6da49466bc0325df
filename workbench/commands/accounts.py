"""`medvision accounts add|list|password|ensure-admin`: admin and rater accounts."""

from __future__ import annotations

import typer

accounts_app = typer.Typer(no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@accounts_app.command("add")
def add_account(
    username: str,
    role: str = typer.Option("rater", help="rater or admin."),
    display_name: str = typer.Option("", help="Name shown to admins."),
    email: str | None = typer.Option(None, help="E-mail (for single sign-on)."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 10 characters."
    ),
) -> None:
    """Create an account."""
    from studies.readers import accounts
    from studies.store.db import get_store

    try:
        info = accounts.create_account(
            get_store(), username, role, password, display_name=display_name, email=email
        )
    except accounts.AccountError as exc:
        _fail(str(exc))
    typer.echo(f"Created {info.role} account {info.username!r}.")


@accounts_app.command("list")
def list_accounts_command() -> None:
    """Every account with its role and state."""
    from studies.readers import accounts
    from studies.store.db import get_store

    for info in accounts.list_accounts(get_store()):
        state = "active" if info.active else "deactivated"
        typer.echo(f"{info.username}\t{info.role}\t{state}\t{info.display_name}")


@accounts_app.command("password")
def password_command(
    username: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
) -> None:
    """Set a new password (also clears the log-in delay and ends open sessions)."""
    from studies.readers import accounts
    from studies.store.db import get_store

    store = get_store()
    info = accounts.get_account(store, username)
    if info is None:
        _fail(f"no account named {username!r}")
    try:
        accounts.set_password(store, info.id, password)
    except accounts.AccountError as exc:
        _fail(str(exc))
    typer.echo(f"Password of {info.username!r} changed.")


@accounts_app.command("ensure-admin")
def ensure_admin_command() -> None:
    """Create the first admin (MEDVISION_ADMIN_NAME with MEDVISION_ADMIN_PASSWORD, or a
    printed password)."""
    from studies.readers import accounts
    from studies.store.db import get_store
    from studies.store.settings import get_settings

    settings = get_settings()
    said: list[str] = []
    try:
        accounts.ensure_admin(get_store(settings.url), settings, echo=said.append)
    except accounts.AccountError as exc:
        _fail(f"MEDVISION_ADMIN_NAME / MEDVISION_ADMIN_PASSWORD: {exc}")
    typer.echo("\n".join(said) or "An admin account exists.")
