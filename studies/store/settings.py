"""Settings from environment variables with the MEDVISION_ prefix (documented in README)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "MEDVISION_"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Every setting of the workbench, read once from the environment."""

    home: Path = field(default_factory=lambda: Path(_env("HOME", ".medvision")).resolve())
    database_url: str | None = field(default_factory=lambda: _env("DATABASE_URL"))
    admin_password: str | None = field(default_factory=lambda: _env("ADMIN_PASSWORD"))
    # The first admin's username: a fixed, well-known name is the first one guessed.
    admin_name: str = field(default_factory=lambda: _env("ADMIN_NAME", "admin"))
    device: str | None = field(default_factory=lambda: _env("DEVICE"))
    model: str = field(default_factory=lambda: _env("MODEL", "Qwen/Qwen3-VL-2B-Instruct"))
    adapter: str | None = field(default_factory=lambda: _env("ADAPTER"))
    session_hours: float = field(default_factory=lambda: float(_env("SESSION_HOURS", "12")))
    max_upload_mb: float = field(default_factory=lambda: float(_env("MAX_UPLOAD_MB", "200")))
    # How long a write waits for another writer's lock (SQLite busy timeout, PostgreSQL
    # lock_timeout) before a rater is told "busy, press Submit again".
    busy_timeout_s: float = field(default_factory=lambda: float(_env("BUSY_TIMEOUT_S", "30")))
    # Addresses of the reverse proxies in front of the app (comma-separated): a request from
    # one of them is attributed to the address the proxy appended to X-Forwarded-For, so the
    # per-client log-in delay tells browsers apart behind the proxy.
    trusted_proxies: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            a.strip() for a in (_env("TRUSTED_PROXIES", "") or "").split(",") if a.strip()
        )
    )
    # "message" (a page error is a message with a reference) or "raise" (the test suite: an
    # error stays an exception that AppTest reports).
    page_errors: str = field(default_factory=lambda: _env("PAGE_ERRORS", "message"))

    @property
    def data_dir(self) -> Path:
        """Root of all media (benchmark copies, uploads, adapters); never outside it."""
        return self.home / "data"

    @property
    def url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'workbench.db'}"


def get_settings() -> Settings:
    return Settings()
