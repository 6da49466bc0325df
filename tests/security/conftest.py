"""Fixtures for the attack-table tests (tests/security).

The two-backend fixtures come from tests/conftest.py and pytest finds them from here:
`db_url` and `store` (a fresh database on SQLite AND on PostgreSQL), `sqlite_store`,
`pg_url` and `tmp_home`. This file adds a started reader study on such a store, as the
rating page meets it (tests/support/started_study.py), for the rows that attack rating.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.started_study import StartedStudy, make_started_study

from studies.store.db import Store


@pytest.fixture
def started_study(store: Store, tmp_path: Path) -> StartedStudy:
    """A started study with two raters, on SQLite and on PostgreSQL."""
    return make_started_study(store, tmp_path / "bench")
