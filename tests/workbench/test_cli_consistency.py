"""One command-line grammar: `--study NAME` everywhere, flags shown as flags, errors that name
the flag to use, file names a shell can take, and a study's export re-analysed with its
SYNTHETIC label.

At ebb17df `studies export` took the study as a positional argument while `stats study` and
`prefs export` took `--study`, `--overwrite` was listed as `--overwrite <bool>`, a taken
output folder said "choose another folder or overwrite", `stats study` could not read a
file, and `stats pairwise --input` on a study's own export printed no SYNTHETIC line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.rated_study import rated_study
from typer.testing import CliRunner

from studies.exports.names import file_slug
from studies.exports.synthetic import CASES, synthetic_line
from studies.store.db import get_store
from workbench.cli import COMMANDS, app

runner = CliRunner()
STUDY = "Round (A) 1"


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def study_home(tmp_home: Path) -> Path:
    rated_study(get_store(), tmp_home / "data" / "reader", synthetic_cases=True, name=STUDY)
    return tmp_home


def test_a_study_export_reanalysed_on_the_command_line_keeps_synthetic_cases(
    study_home: Path,
) -> None:
    exported = study_home / "judgments.csv"
    assert "Wrote" in _run("studies", "export", "--study", STUDY, "--out", str(exported))
    line = synthetic_line(CASES)
    pairwise = _run("stats", "pairwise", "--input", str(exported), "-b", "20", "-f", "markdown")
    assert line in pairwise and "simulated judgments" not in pairwise
    # stats study on the file (its --study reading of the store: test_synthetic_labels).
    assert line in _run("stats", "study", "--input", str(exported), "-b", "20")
    both = _run("stats", "study", "--study", STUDY, "--input", str(exported), code=2)
    assert "--study" in both and "--input" in both


def test_every_study_command_takes_study_and_the_old_spelling_still_works(
    study_home: Path,
) -> None:
    assert "rater reader1" in _run("studies", "progress", "--study", STUDY)
    old = _run("studies", "progress", STUDY)
    assert "rater reader1" in old and "--study" in old
    assert "paused" in _run("studies", "pause", "--study", STUDY)
    assert "active" in _run("studies", "resume", STUDY)
    two = _run("studies", "progress", "--study", STUDY, "Other", code=2)
    assert "two study names" in two and "--study" in two
    assert "--study NAME" in _run("studies", "progress", code=2)
    assert "--study NAME" in _run("studies", "enrol", "reader1", code=2)
    out = study_home / "judgments.txt"
    bad = _run("studies", "export", "--study", STUDY, "--out", str(out), code=1)
    assert "--format" in bad and ".csv" in bad and not out.exists()


def test_a_taken_output_folder_names_the_flags_and_changes_nothing(study_home: Path) -> None:
    out = study_home / "prefs"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    refused = _run("prefs", "export", "--study", STUDY, "--out", str(out), code=2)
    assert "--out" in refused and "--overwrite" in refused
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    again = _run("prefs", "export", "--study", STUDY, "--out", str(out), "--no-overwrite", code=2)
    assert "--overwrite" in again


def test_flags_are_shown_as_flags_in_every_help(tmp_home: Path) -> None:
    from workbench.cli import load_command

    assert "<bool>" not in _run("--help")
    pages = 0
    for name in COMMANDS:
        command = load_command(name)
        subs = getattr(command, "commands", None) or {"": command}
        for sub_name in subs:
            args = [name, sub_name] if sub_name else [name]
            text = _run(*args, "--help")
            pages += 1
            assert "<bool>" not in text, f"medvision {' '.join(args)} --help shows <bool>"
    assert pages > len(COMMANDS)
    assert "--overwrite" in _run("prefs", "export", "--help")


def test_file_names_have_no_shell_special_characters() -> None:
    assert file_slug("Demo reader study (synthetic)") == "demo-reader-study-synthetic"
    assert file_slug("it's a 'study'; rm -rf /") == "it-s-a-study-rm-rf"
    assert file_slug("()") == "export" and file_slug("", default="analysis") == "analysis"
    assert file_slug("round_2.v1") == "round_2.v1"
