"""The command line of an expert annotation study (SYNTHETIC cases): `studies create --kind
annotation`, `studies agreement`, `studies adjudicate`, `studies references --to`,
`extract --validate STUDY` (per-field accuracy with CIs, text/json/csv), `studies export`
(the annotations) and `prefs export` (on-policy pairs that train in TRL's DPOTrainer).
(6d1d245 had the annotation study but no command for any of these.)"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from support.dpo import export_trains
from support.reader_world import build_world
from typer.testing import CliRunner

from studies.readers import accounts
from studies.readers.annotation import next_annotation, submit_annotation
from studies.readers.design import study_design
from studies.readers.progress import list_studies
from studies.store.db import get_store
from workbench.cli import app

runner = CliRunner()
STUDY = "Expert round"


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _annotated_study(home: Path) -> None:
    """Two annotators correct every case; ann1 gives a BBPS of 7 on their first case."""
    store = get_store()
    world = build_world(store, home / "bench", n_cases=4)
    for name in ("ann0", "ann1", "senior"):
        accounts.create_account(store, name, "rater", "rater-password-1")
    created = _run(
        "studies",
        "create",
        "--name",
        STUDY,
        "--benchmark",
        world.benchmark,
        "--system",
        world.systems[0],
        "--kind",
        "annotation",
        "--flag-policy",
        "exclude",
        "--rater",
        "ann0",
        "--rater",
        "ann1",
    )
    assert "Created draft study" in created
    design = study_design(store, STUDY)
    assert (design.kind, design.annotation_source, design.flag_policy) == (
        "annotation",
        "corrected",
        "exclude",
    )
    assert "Started: 4 cases, 4 items, 8 assignments" in _run("studies", "start", "--study", STUDY)
    study_id = _study_id()
    for name in ("ann0", "ann1"):
        annotator = accounts.get_account(store, name)
        changed = False
        while (task := next_annotation(store, annotator.id, study_id)) is not None:
            findings = dict(task.draft_findings)
            if name == "ann1" and not changed:
                findings["bbps_total"], changed = 7, True
            report = task.draft_report.replace("Bowel", f"Checked by {name}. Bowel")
            submit_annotation(store, annotator.id, task.token, f"{task.token}:1", report, findings)


def _study_id() -> int:
    return next(s.id for s in list_studies(get_store()) if s.name == STUDY)


def _adjudicate() -> None:
    store = get_store()
    senior = accounts.get_account(store, "senior")
    study_id = _study_id()
    while (task := next_annotation(store, senior.id, study_id)) is not None:
        report, findings = task.candidates[0]
        submit_annotation(store, senior.id, task.token, f"{task.token}:s", report, findings)


def test_an_annotation_study_from_the_command_line(tmp_home: Path) -> None:
    _annotated_study(tmp_home)
    agreement = json.loads(_run("studies", "agreement", "--study", STUDY, "--format", "json"))
    bbps = next(f for f in agreement["fields"] if f["field"] == "bbps_total")
    assert (bbps["n"], bbps["agreement"]) == (4, 0.75)
    assert "not a medical device" in agreement["footer"]
    text = _run("studies", "agreement", "--study", STUDY)
    assert "bbps_total" in text and "Gwet AC1" in text
    assert "--format" in _run("studies", "agreement", "--study", STUDY, "--format", "xml", code=2)

    listed = _run("studies", "references", "--study", STUDY)
    assert listed.count("\tagreed\t") == 3 and listed.count("\tdisagreement\t") == 1
    assert "1 added" in _run("studies", "adjudicate", "--study", STUDY, "--adjudicator", "senior")
    _adjudicate()
    assert "\tadjudicated\t" in _run("studies", "references", "--study", STUDY)
    written = _run("studies", "references", "--study", STUDY, "--to", "expert-refs/test")
    assert "Wrote 4 expert references to expert-refs/test" in written
    assert "expert-refs" in _run("benchmarks", "list")

    table = _run("extract", "--validate", STUDY)
    assert "no_polyps" in table and "Wilson 95%" in table and "not a medical device" in table
    as_csv = _run("extract", "--validate", STUDY, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    by_field = {r["field"]: r for r in rows}
    assert by_field["no_polyps"]["n"] == "4" and "cp_low" in rows[0]
    assert "SYNTHETIC" in rows[0]["footer"]
    report = json.loads(_run("extract", "--validate", STUDY, "--format", "json"))
    assert report["n_references"] == 4 and len(report["fields"]) == len(rows)
    assert "--format" in _run("extract", "--validate", STUDY, "--format", "xml", code=2)
    assert "no study" in _run("extract", "--validate", "Nope", code=2)

    out = tmp_home / "annotations.csv"
    assert "Wrote 9 annotations" in _run("studies", "export", "--study", STUDY, "--out", str(out))
    exported = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["source"] for r in exported} == {"corrected", "adjudicated"}
    assert "disagreements sent to adjudication" in exported[0]["study_amendments"]


def test_on_policy_pairs_train_in_trl(tmp_home: Path, tiny_model_dir: Path) -> None:
    _annotated_study(tmp_home)
    out = tmp_home / "on-policy"
    printed = _run(
        "prefs", "export", "--study", STUDY, "--out", str(out), "--validation-fraction", "0"
    )
    assert "wrote" in printed and "SYNTHETIC" in printed
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 8  # each annotator's correction of each case
    assert {r["provenance"]["source"] for r in rows} == {"correction"}
    assert {r["provenance"]["detail"]["annotator"] for r in rows} == {"ann0", "ann1"}
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["synthetic"] is True and manifest["study"] == STUDY

    losses = export_trains(tiny_model_dir, out, tmp_home / "dpo")
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_studies_adjudicate_queues_a_comparison_study_too(tmp_home: Path) -> None:
    from studies.readers.design import StudyDesign, create_study
    from studies.readers.enrolment import enrol_rater
    from studies.readers.lifecycle import start_study
    from studies.readers.rating import next_assignment, submit_judgment

    store = get_store()
    world = build_world(store, tmp_home / "bench", n_cases=3, systems=("sys-a", "sys-b"))
    raters = [accounts.create_account(store, f"r{i}", "rater", "rater-password-1") for i in (0, 1)]
    accounts.create_account(store, "senior", "rater", "rater-password-1")
    study_id = create_study(
        store, StudyDesign(name="Pairs", benchmark=world.benchmark, systems=world.systems)
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    likert = {side: {"accuracy": 3, "completeness": 3, "safety": 3} for side in ("left", "right")}
    for rater, choice in zip(raters, ("tie", "both_bad"), strict=True):
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            submit_judgment(store, rater.id, task.token, f"{task.token}:k", choice, likert, "why")
    queued = _run("studies", "adjudicate", "--study", "Pairs", "--adjudicator", "senior")
    assert "3 added" in queued
    refused = _run("studies", "adjudicate", "--study", "Pairs", "--adjudicator", "r0", code=1)
    assert "not on its panel" in refused
