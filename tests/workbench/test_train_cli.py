"""`medvision prefs` and `medvision train`: bad input gives a message, exit code 2, no change."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from studies.store.db import get_store
from studies.systems.training_jobs import list_training_jobs
from workbench.cli import app

runner = CliRunner()


def test_prefs_export_unknown_study(tmp_home: Path) -> None:
    result = runner.invoke(
        app, ["prefs", "export", "--study", "ghost", "--out", str(tmp_home / "o")]
    )
    assert result.exit_code == 2
    assert "unknown study 'ghost'" in result.output
    assert not (tmp_home / "o").exists()


def test_prefs_bad_policy_value(tmp_home: Path) -> None:
    result = runner.invoke(app, ["prefs", "preview", "--study", "ghost", "--ties", "sometimes"])
    assert result.exit_code == 2 and "ties must be 'drop' or 'keep'" in result.output


def test_train_dpo_refuses_bad_input(tmp_home: Path, tiny_model_dir: Path) -> None:
    out = tmp_home / "adapter"
    missing_model = runner.invoke(
        app,
        [
            "train",
            "dpo",
            "--prefs",
            str(tmp_home),
            "--model",
            str(tmp_home / "m"),
            "--out",
            str(out),
        ],
    )
    assert missing_model.exit_code == 2 and "has no config.json" in missing_model.output
    no_prefs = runner.invoke(
        app,
        [
            "train",
            "dpo",
            "--prefs",
            str(tmp_home / "p"),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
        ],
    )
    assert no_prefs.exit_code == 2 and "preference data not found" in no_prefs.output
    bad_settings = tmp_home / "settings.json"
    bad_settings.write_text(json.dumps({"betta": 0.2}))
    typo = runner.invoke(
        app,
        [
            "train",
            "dpo",
            "--prefs",
            str(tmp_home / "p"),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--settings",
            str(bad_settings),
        ],
    )
    assert typo.exit_code == 2 and "unknown DPOSettings field(s): betta" in typo.output
    assert list_training_jobs(get_store()) == [] and not out.exists()


def test_train_sft_unknown_benchmark_and_jobs_listing(tmp_home: Path, tiny_model_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "sft",
            "--benchmark",
            "ghost",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_home / "a"),
        ],
    )
    assert result.exit_code == 2 and "unknown benchmark 'ghost'" in result.output
    listing = runner.invoke(app, ["train", "jobs"])
    assert listing.exit_code == 0 and "No training jobs yet." in listing.output
