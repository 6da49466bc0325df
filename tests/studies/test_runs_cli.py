"""`medvision systems add|list` and `medvision run` on synthetic-colon with the tiny model."""

from __future__ import annotations

import warnings
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from studies.store.db import get_store
from studies.store.schema import Case, Generation, Run
from workbench.cli import app

runner = CliRunner()


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_run_fills_the_store_and_a_rerun_generates_nothing(
    tmp_home: Path, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    root = tmp_home / "synthetic-colon"
    _invoke(
        "benchmarks", "import", "synthetic-colon", str(root), "-o", "n_images=12", "-o",
        "n_videos=2",
    )  # fmt: skip
    added = _invoke(
        "systems", "add", "tiny-lora", "--kind", "vlm", "--model", str(tiny_model_dir),
        "--adapter", str(tiny_adapter_dir), "--max-new-tokens", "12", "--batch-size", "2",
    )  # fmt: skip
    assert "Added: tiny-lora v1" in added
    _invoke("systems", "add", "retrieval-baseline", "--kind", "retrieval")
    _invoke("systems", "add", "template-baseline", "--kind", "template")
    listed = _invoke("systems", "list")
    assert [line.split("\t")[0] for line in listed.strip().splitlines()] == [
        "retrieval-baseline",
        "template-baseline",
        "tiny-lora",
    ]

    systems = ["--system", "tiny-lora", "--system", "retrieval-baseline"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        output = _invoke("run", "--benchmark", "synthetic-colon", *systems, "--system",
                         "template-baseline")  # fmt: skip
    # Only the workbench speaks: no library progress bars, no deprecation warnings
    # (ebb17df printed "Loading weights" bars and transformers' FutureWarning).
    assert "Loading weights" not in output and "it/s]" not in output
    assert not [w for w in caught if issubclass(w.category, FutureWarning | DeprecationWarning)]
    # Not a terminal: plain progress lines, case by case with the time left, then the end.
    assert "tiny-lora: 0/" in output and "loading the system" in output
    assert "per case, about" in output and " left" in output
    assert f"tiny-lora: {n_test_cases(tmp_home)}/" in output
    store = get_store()
    with store.session() as session:
        n_test = session.scalar(select(func.count()).select_from(Case).where(Case.split == "test"))
        texts = session.scalars(select(Generation.text)).all()
        statuses = session.scalars(select(Run.status)).all()
    assert n_test and len(texts) == 3 * n_test
    assert all(text.strip() for text in texts)
    assert statuses == ["done"] * 3
    assert output.count(f"{n_test}/{n_test} cases (0 cached, {n_test} generated)") == 3

    again = _invoke("run", "--benchmark", "synthetic-colon", *systems)
    assert again.count(f"({n_test} cached, 0 generated)") == 2
    limited = _invoke(
        "run", "--benchmark", "synthetic-colon", "--system", "tiny-lora", "--split", "train",
        "--limit", "2",
    )  # fmt: skip
    assert "2/2 cases (0 cached, 2 generated)" in limited
    assert "built from the train split" not in limited
    leaky = _invoke(
        "run", "--benchmark", "synthetic-colon", "--system", "retrieval-baseline", "--split",
        "train", "--limit", "2",
    )  # fmt: skip
    assert "Warning: retrieval-baseline: the retrieval baseline is built from the train" in leaky
    assert "score it on val or test" in leaky
    # Scored there, the leaderboard says so too.
    board = _invoke(
        "leaderboard", "--benchmark", "synthetic-colon", "--baseline", "tiny-lora", "--split",
        "train", "--metrics", "bleu", "--bootstrap", "20", "--permutations", "20",
    )  # fmt: skip
    assert "WARNING: retrieval-baseline: the retrieval baseline is built from the train" in board


def n_test_cases(home: Path) -> int:
    with get_store().session() as session:
        return session.scalar(select(func.count()).select_from(Case).where(Case.split == "test"))


def test_bad_systems_and_runs_say_what_to_fix(tmp_home: Path) -> None:
    result = runner.invoke(app, ["systems", "add", "r", "--kind", "remote"])
    assert result.exit_code == 1 and "--remote-url" in result.output
    result = runner.invoke(app, ["systems", "add", "x", "--kind", "bogus"])
    assert result.exit_code == 1 and "unknown system kind 'bogus'" in result.output
    missing = tmp_home / "no-adapter"
    result = runner.invoke(
        app, ["systems", "add", "m", "--kind", "vlm", "--model", "org/model", "--adapter",
              str(missing)],
    )  # fmt: skip
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "No systems yet" in _invoke("systems", "list")
    _invoke("systems", "add", "reference", "--kind", "reference")
    result = runner.invoke(app, ["run", "--benchmark", "nope", "--system", "reference"])
    assert result.exit_code == 1 and "unknown benchmark 'nope'" in result.output
