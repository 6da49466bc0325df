"""`medvision accounts ...` and `medvision studies ...` end to end on the default store."""

from __future__ import annotations

import csv
from pathlib import Path

from support.reader_world import build_world
from typer.testing import CliRunner

from studies.readers import accounts
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import get_store
from workbench.cli import app

runner = CliRunner()
PASSWORD = "rater-password-1"


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_studies_cli_round_trip(tmp_home: Path) -> None:
    store = get_store()
    world = build_world(store, tmp_home / "data" / "reader", n_cases=4)
    for name in ("ada", "bob"):
        _ok("accounts", "add", name, "--password", PASSWORD)
    assert "ada\trater\tactive" in _ok("accounts", "list")
    systems = [arg for s in world.systems for arg in ("--system", s)]
    _ok(
        "studies",
        "create",
        "--name",
        "Round A",
        "--benchmark",
        world.benchmark,
        *systems,
        "--rater",
        "ada",
        "--rater",
        "bob",
        "--seed",
        "5",
    )
    assert "Started: 4 cases, 12 items" in _ok("studies", "start", "--study", "Round A")
    again = runner.invoke(app, ["studies", "start", "--study", "Round A"])
    assert again.exit_code == 1 and "already started" in again.output
    link = _ok("studies", "invite", "--base-url", "http://host:8501").strip()
    assert link.startswith("http://host:8501/invite?token=")
    assert accounts.inspect_invite(store, link.split("token=")[1]).role == "rater"
    ada = accounts.get_account(store, "ada")
    task = next_assignment(store, ada.id, 1)
    likert = {side: {"accuracy": 3, "completeness": 3, "safety": 3} for side in ("left", "right")}
    submit_judgment(store, ada.id, task.token, "k1", "right", likert, "", 2.0)
    assert "done 1/" in _ok("studies", "list")
    assert "rater ada\t1/" in _ok("studies", "progress", "--study", "Round A")
    out = tmp_home / "judgments.csv"
    assert "Wrote 1 judgments" in _ok("studies", "export", "--study", "Round A", "--out", str(out))
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["rater"] == "ada" and rows[0]["preference_shown"] == "right"
    assert "paused" in _ok("studies", "pause", "--study", "Round A")
    bad = runner.invoke(
        app,
        [
            "studies",
            "create",
            "--name",
            "x",
            "--benchmark",
            "nope",
            "--system",
            "a",
            "--system",
            "b",
        ],
    )
    assert bad.exit_code == 1 and "no benchmark named 'nope'" in bad.output
