"""The app shell and the core CLI: Home and Benchmarks pages, `benchmarks list|import|show`."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from model.notice import RESEARCH_NOTICE, RESEARCH_WARNING
from studies.benchmarks import loader_names
from studies.readers import accounts
from studies.store.db import get_store
from workbench.access import SESSION_KEY
from workbench.cli import app

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "app.py")
runner = CliRunner()


@pytest.fixture
def demo_home(tmp_home: Path) -> Path:
    result = runner.invoke(app, ["demo", "--seed-only"])
    assert result.exit_code == 0, result.output
    return tmp_home


def test_benchmarks_list_prints_every_loader_name_first(tmp_home: Path) -> None:
    result = runner.invoke(app, ["benchmarks", "list"])
    assert result.exit_code == 0, result.output
    first_words = [line.split("\t")[0] for line in result.output.strip().splitlines()]
    assert first_words == loader_names()
    assert "synthetic-colon" in first_words


def test_db_upgrade_creates_the_database(tmp_home: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_home / "workbench.db").exists()


def test_demo_seed_is_idempotent(demo_home: Path) -> None:
    again = runner.invoke(app, ["demo", "--seed-only"])
    assert again.exit_code == 0, again.output
    assert "0 added, 0 updated" in again.output
    shown = runner.invoke(app, ["benchmarks", "show", "synthetic-colon", "--limit", "3"])
    assert shown.exit_code == 0, shown.output
    assert "SYNTHETIC" in shown.output


def test_import_of_a_missing_folder_says_so_and_writes_nothing(tmp_home: Path) -> None:
    result = runner.invoke(app, ["benchmarks", "import", "polyp-reports", "/no/such/folder"])
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert get_store().engine.dialect.name == "sqlite"


def test_import_with_unknown_loader_lists_the_known(tmp_home: Path) -> None:
    result = runner.invoke(app, ["benchmarks", "import", "nope", str(tmp_home)])
    assert result.exit_code == 2
    assert "polyp-reports" in result.output


def _as_admin() -> AppTest:
    store = get_store()
    admin = accounts.create_account(store, "curator", "admin", "a long demo password 1")
    page = AppTest.from_file(APP, default_timeout=60)
    page.session_state[SESSION_KEY] = accounts.open_session(store, admin.id)
    return page


def test_home_page_hides_systems_from_visitors(demo_home: Path) -> None:
    page = AppTest.from_file(APP, default_timeout=60).run()
    assert not page.exception
    text = " ".join(e.value for e in [*page.markdown, *page.error, *page.text])
    assert RESEARCH_NOTICE in text
    assert "tiny-qwen3-vl" not in text and "retrieval-baseline" not in text
    assert "Log in" in " ".join(e.value for e in page.info)


def test_home_page_shows_disclaimer_database_and_benchmarks(demo_home: Path) -> None:
    page = _as_admin().run()
    assert not page.exception
    # Benchmark and system names are data: plain Text elements.
    text = " ".join(e.value for e in [*page.markdown, *page.error, *page.text])
    assert RESEARCH_WARNING in text
    assert "SQLite" in text
    assert "synthetic-colon" in text
    assert "SYNTHETIC" in text


def test_benchmarks_page_is_for_admins_only(demo_home: Path) -> None:
    page = AppTest.from_file(APP, default_timeout=60).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        page.switch_page(str(Path(APP).parent / "views" / "benchmarks.py"))


def test_benchmarks_page_filters_by_split_and_finding(demo_home: Path) -> None:
    page = _as_admin().run()
    page.switch_page(str(Path(APP).parent / "views" / "benchmarks.py")).run()
    assert not page.exception
    assert any("SYNTHETIC" in w.value for w in page.warning)
    split = page.selectbox(key="split")
    assert "test" in split.options
    split.set_value("test").run()
    assert not page.exception
    captions = " ".join(c.value for c in page.caption)
    assert "matching cases · page 1 of " in captions
    shown = [t.value for t in page.text if "· test ·" in t.value]
    assert shown and all("· test ·" in value for value in shown)


def test_benchmarks_page_opened_by_its_own_url_asks_for_a_log_in(demo_home: Path) -> None:
    # Streamlit can run a file under pages/ without app.py (its first request after a start).
    page = AppTest.from_file(str(Path(APP).parent / "views" / "benchmarks.py"), default_timeout=60)
    page.run()
    assert not page.exception, page.exception
    assert any("Please log in" in i.value for i in page.info)
    assert not page.selectbox and not page.warning
