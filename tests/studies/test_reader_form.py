"""The rating form: criteria declared once, checked with messages naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.data import criteria_of, harm_criterion_of
from studies.reader_stats.simulation import simulate_judgments
from studies.readers.form import (
    DEFAULT_FORM,
    FormError,
    check_form,
    criteria,
    criteria_in_columns,
    default_form,
    default_guidelines,
    harm_criterion,
    load_form_file,
)


def test_the_default_form_declares_safety_as_its_harm_criterion() -> None:
    declared = criteria(default_form())
    assert [c.key for c in declared] == ["accuracy", "completeness", "safety"]
    assert [c.key for c in declared if c.harm] == ["safety"]
    assert declared[0].column("b") == "likert_b_accuracy" and declared[0].scale == (1, 2, 3, 4, 5)


def test_a_form_frozen_before_the_harm_flag_keeps_safety_as_harm() -> None:
    old = default_form()
    for criterion in old["criteria"]:
        criterion.pop("harm", None)
    assert harm_criterion(check_form(old)) == "safety"
    # An explicit flag wins over the default form's declaration.
    old["criteria"][2]["harm"] = False
    assert harm_criterion(check_form(old)) is None


def test_guidelines_name_the_form_criteria() -> None:
    form = default_form()
    assert "on accuracy, completeness and clinical safety;" in default_guidelines(form)
    form["criteria"].append({**form["criteria"][0], "key": "clarity", "label": "Clarity"})
    assert "accuracy, completeness, clinical safety and clarity;" in default_guidelines(form)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.update(criteria=[]), "form.criteria: give at least one criterion"),
        (lambda f: f.update(colour="red"), "form.colour: unknown field"),
        (lambda f: f["criteria"][1].update(key="a"), "form.criteria[2].key"),
        (lambda f: f["criteria"][1].update(key="accuracy"), "'accuracy' appears twice"),
        (lambda f: f["criteria"][0]["anchors"].pop("3"), "form.criteria[1].anchors"),
        (lambda f: f["criteria"][0].update(harm="yes"), "form.criteria[1].harm: use true"),
        (lambda f: f["criteria"][0].update(harm=True), "only one criterion may be the harm"),
        (lambda f: f.update(comment_required_for=["maybe"]), "form.comment_required_for"),
        (lambda f: f.update(require_likert="no"), "form.require_likert: use true or false"),
    ],
)
def test_check_form_names_the_field(change, message: str) -> None:  # noqa: ANN001
    form = default_form()
    change(form)
    with pytest.raises(FormError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_form(form)


def test_form_files_in_toml_and_json(tmp_path: Path) -> None:
    as_json = tmp_path / "form.json"
    as_json.write_text(json.dumps({"form": DEFAULT_FORM}))
    assert [c.key for c in criteria(load_form_file(as_json))] == [
        "accuracy",
        "completeness",
        "safety",
    ]
    missing = tmp_path / "missing.toml"
    with pytest.raises(FormError, match="cannot read the form file"):
        load_form_file(missing)


def test_stats_discover_criteria_from_columns_and_read_the_harm_flag() -> None:
    assert criteria_in_columns(["likert_a_clarity", "likert_b_clarity", "likert_a_x1"]) == [
        "clarity"
    ]
    frame = simulate_judgments(
        {"x": 0.5, "y": 0.0}, n_cases=8, criteria=("clarity", "risk"), seed=1
    )
    assert criteria_of(frame) == ["clarity", "risk"]
    # A file without a form: no declared harm criterion among these keys, and the analysis
    # says why it has no harm table.
    assert harm_criterion_of(frame) is None
    skipped = analyze_study(frame, AnalysisSettings(n_resamples=0))
    assert skipped.harm.empty and any("no harm criterion declared" in n for n in skipped.notes)
    form = default_form()
    form["criteria"] = [
        {**form["criteria"][0], "key": "clarity", "harm": False},
        {**form["criteria"][2], "key": "risk", "harm": True},
    ]
    frame.attrs["form"] = check_form(form)
    assert harm_criterion_of(frame) == "risk"
    analysis = analyze_study(frame, AnalysisSettings(n_resamples=0))
    assert set(analysis.harm["criterion"]) == {"risk"}
    with pytest.raises(ValueError, match="harm criterion 'safety': not among"):
        analyze_study(frame, AnalysisSettings(n_resamples=0, harm_criterion="safety"))
