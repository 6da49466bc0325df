"""`medvision benchmarks`: every imported benchmark is listed, whole-file problems create
nothing (with or without --skip-bad) and are not called rows, and --rehash reads every file."""

from __future__ import annotations

import csv
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app

runner = CliRunner()


def _dataset(root: Path, n: int = 2) -> Path:
    """A polyp-reports manifest folder with n image cases."""
    root.mkdir(parents=True)
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_id", "images", "report", "split"])
        for index in range(n):
            Image.new("RGB", (16, 16), (40 * index, 90, 200)).save(root / f"c{index}.png")
            writer.writerow([f"c{index}", f"c{index}.png", f"report {index}", "test"])
    return root


def test_list_shows_every_benchmark_of_one_loader(tmp_home: Path, tmp_path: Path) -> None:
    """Fails on ebb17df, which showed one benchmark per loader."""
    for name, n in (("colon-a", 2), ("colon-b", 3)):
        result = runner.invoke(
            app,
            [
                "benchmarks",
                "import",
                "polyp-reports",
                str(_dataset(tmp_path / name, n)),
                "--name",
                name,
            ],
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["benchmarks", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "polyp-reports\treport\timported as colon-a, colon-b\t" in result.output
    assert "colon-a\tpolyp-reports\treport\ttest 2" in lines
    assert "colon-b\tpolyp-reports\treport\ttest 3" in lines


def test_skip_bad_with_a_whole_file_problem_creates_nothing(tmp_home: Path, tmp_path: Path):
    """Fails on ebb17df: exit 0 and an empty benchmark."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(
        app, ["benchmarks", "import", "polyp-reports", str(empty), "--skip-bad", "--name", "e"]
    )
    assert result.exit_code == 1, result.output
    assert "Nothing was imported." in result.output
    assert "Fix these rows" not in result.output and "Fix these files" in result.output
    listed = runner.invoke(app, ["benchmarks", "list"])
    assert "\ne\t" not in listed.output and "imported benchmarks" not in listed.output


def test_rehash_reads_every_file_again(tmp_home: Path, tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds")
    first = runner.invoke(app, ["benchmarks", "import", "polyp-reports", str(root)])
    assert "media: 2 hashed" in first.output, first.output
    again = runner.invoke(app, ["benchmarks", "import", "polyp-reports", str(root), "--rehash"])
    assert again.exit_code == 0, again.output
    assert "0 added, 0 updated, 2 unchanged" in again.output
    assert "media: 2 hashed, 0 unchanged by size and modification time" in again.output
