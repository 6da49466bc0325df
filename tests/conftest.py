"""Shared fixtures: a fresh store on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from studies.store.db import Store

# A page that fails stays an exception AppTest reports (the app shows raters a message).
os.environ.setdefault("MEDVISION_PAGE_ERRORS", "raise")


@pytest.fixture(autouse=True, scope="session")
def _streamlit_error_details() -> None:
    """AppTest shows a failing page's real message (.streamlit/config.toml, read by AppTest
    from the checkout, hides error details from raters)."""
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")


PG_ADMIN_URL = os.environ.get(
    "MEDVISION_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _pg_database() -> Iterator[str]:
    """Create a uniquely named PostgreSQL database, yield its URL, drop it afterwards."""
    import psycopg

    name = f"mvw_test_{uuid.uuid4().hex[:12]}"
    plain = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # pragma: no cover - CI starts the server
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MEDVISION_HOME in a temporary folder, with its SQLite database."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MEDVISION_HOME", str(home))
    monkeypatch.delenv("MEDVISION_DATABASE_URL", raising=False)
    return home


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield from _pg_database()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on SQLite and on PostgreSQL (every store test runs on both)."""
    instance = Store(db_url)
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store, for slow tests where one backend is enough."""
    instance = Store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database URL."""
    yield from _pg_database()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight Qwen3-VL folder (built once per test session, offline)."""
    from model.tiny import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-qwen3-vl") / "model", seed=0)


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter for the tiny model whose weights change its output (built once)."""
    from model.tiny import build_tiny_lora_adapter

    folder = tmp_path_factory.mktemp("tiny-lora") / "adapter"
    return build_tiny_lora_adapter(tiny_model_dir, folder, seed=0)
