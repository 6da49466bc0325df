"""`medvision prefs`: the harvest-policy options come from HarvestPolicy's fields, reach the
policy by name, and a criterion outside the study's form is refused."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from support.reader_world import build_world
from typer.testing import CliRunner

from studies.preferences.harvest import HarvestPolicy
from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import get_store
from workbench.cli import app

LIKERT = {
    "left": {"accuracy": 5, "completeness": 4, "safety": 5},
    "right": {"accuracy": 1, "completeness": 2, "safety": 1},
}


def _judged_study(tmp_home: Path) -> None:
    store = get_store()
    world = build_world(store, tmp_home / "bench", n_cases=4, systems=("sys-a", "sys-b"))
    rater = accounts.create_account(store, "rater1", "rater", "pw-rater-123")
    study_id = create_study(
        store,
        StudyDesign(name="Prefs", benchmark=world.benchmark, systems=world.systems, overlap=1),
    )
    enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    step = 0
    while (task := next_assignment(store, rater.id, study_id)) is not None:
        step += 1
        submit_judgment(store, rater.id, task.token, f"k{step}", "left", LIKERT)


def test_every_policy_field_is_an_option_that_reaches_the_policy_by_name(tmp_home: Path) -> None:
    _judged_study(tmp_home)
    out = tmp_home / "export"
    chosen = {
        "min_raters": 1,
        "min_agreement": 0.75,
        "ties": "keep",
        "both_bad": "reference",
        "min_likert_margin": 0.25,
        "likert_criteria": ["accuracy", "safety"],
        "likert_lower_is_better": ["completeness"],
        "adjudication": "use",
        "include_gold": True,
        "automatic": False,
        "validation_fraction": 0.3,
        "seed": 7,
        "prompt": None,
    }
    # The test covers every field: a new field must be added here too.
    assert set(chosen) == {f.name for f in fields(HarvestPolicy)}
    args = ["prefs", "export", "--study", "Prefs", "--out", str(out)]
    args += ["--min-raters", "1", "--min-agreement", "0.75", "--ties", "keep"]
    args += ["--both-bad", "reference", "--min-likert-margin", "0.25"]
    args += ["--likert-criteria", "accuracy, safety", "--likert-lower-is-better", "completeness"]
    args += ["--include-gold", "--validation-fraction", "0.3", "--seed", "7"]
    args += ["--adjudication", "use"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    policy = json.loads((out / "export.json").read_text())["policy"]
    assert policy == chosen
    # Defaults are the dataclass defaults.
    preview = CliRunner().invoke(app, ["prefs", "preview", "--study", "Prefs", "--limit", "1"])
    assert preview.exit_code == 0, preview.output
    help_text = (
        CliRunner().invoke(app, ["prefs", "export", "--help"], env={"COLUMNS": "240"}).output
    )
    for spec in fields(HarvestPolicy):
        assert "--" + spec.name.replace("_", "-") in help_text


def test_a_margin_criterion_outside_the_form_is_a_clear_message(tmp_home: Path) -> None:
    _judged_study(tmp_home)
    result = CliRunner().invoke(
        app, ["prefs", "preview", "--study", "Prefs", "--likert-criteria", "clarity"]
    )
    assert result.exit_code != 0
    assert "likert_criteria: study 'Prefs' has no criterion 'clarity'" in result.output
    assert "accuracy, completeness, safety" in result.output
