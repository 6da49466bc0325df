"""The whole loop on the CPU with the tiny Qwen3-VL, through the public functions and the CLI.

synthetic-colon -> two systems run -> a blinded study judged by simulated raters ->
reader statistics and a LaTeX table -> harvested preference pairs (`medvision prefs export`)
-> DPO for a few steps (`medvision train dpo`) -> the new adapter registered and run -> it
appears on the leaderboard and can enter the next study.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from model.spec import SystemSpec
from studies.benchmarks.importer import import_benchmark
from studies.leaderboard.build import LeaderboardConfig, build_leaderboard
from studies.reader_stats.analysis import AnalysisSettings, analyze_study
from studies.reader_stats.tables import paper_table, render_latex
from studies.readers import accounts
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.judgments import study_judgments
from studies.readers.lifecycle import start_study
from studies.readers.rating import next_assignment, submit_judgment
from studies.store.db import get_store
from studies.store.schema import Assignment, Case, Generation, StudyItem, System
from studies.systems.registry import get_system, register_system
from studies.systems.runs import run_system
from studies.systems.training_jobs import list_training_jobs
from workbench.cli import app

BENCHMARK = "synthetic-colon"
STRONG, WEAK = "template-baseline", "tiny-lora"
LIKERT_GOOD = {"accuracy": 4, "completeness": 4, "safety": 5}
LIKERT_POOR = {"accuracy": 1, "completeness": 2, "safety": 2}


def _simulated_rater(store, rater_id: int, study_id: int, rng: random.Random) -> int:
    """Judge every assignment: the stronger system wins 85% of the time, else a tie or loss.

    The rater sees only left/right; the simulation looks the systems up to know which side
    holds the stronger one (a stand-in for a clinician's judgment).
    """
    with store.session() as session:
        names = dict(session.execute(select(System.id, System.name)).all())
    n = 0
    while (task := next_assignment(store, rater_id, study_id)) is not None:
        with store.session() as session:
            assignment = session.scalar(select(Assignment).where(Assignment.token == task.token))
            item = session.get(StudyItem, assignment.item_id)
            left = names[item.system_a_id] if assignment.a_on_left else names[item.system_b_id]
        draw = rng.random()
        strong_side = "left" if left == STRONG else "right"
        weak_side = "right" if strong_side == "left" else "left"
        if draw < 0.85:
            shown, winner_side = strong_side, strong_side
        elif draw < 0.93:
            shown, winner_side = "tie", None
        else:
            shown, winner_side = weak_side, weak_side
        if winner_side is None:
            likert = {"left": LIKERT_POOR, "right": LIKERT_POOR}
        else:
            loser_side = "right" if winner_side == "left" else "left"
            likert = {winner_side: LIKERT_GOOD, loser_side: LIKERT_POOR}
        submit_judgment(
            store, rater_id, task.token, f"sim-{task.token}", shown, likert, "", 20.0 + n
        )
        n += 1
    return n


def test_closed_loop(tmp_home: Path, tiny_model_dir: Path, tiny_adapter_dir: Path) -> None:
    store = get_store()
    runner = CliRunner()

    # 1. A synthetic benchmark and two systems run over its test split.
    import_benchmark(
        store,
        BENCHMARK,
        tmp_home / "data" / "benchmarks" / BENCHMARK,
        options={"n_images": 40, "n_videos": 0, "seed": 5},
    )
    tiny = {"model": str(tiny_model_dir), "max_new_tokens": 16, "batch_size": 8}
    register_system(store, WEAK, SystemSpec(kind="vlm", adapter=str(tiny_adapter_dir), **tiny))
    register_system(store, STRONG, SystemSpec(kind="template"))
    for name in (WEAK, STRONG):
        assert run_system(store, BENCHMARK, name, split="test").status == "done"
    with store.session() as session:
        n_test = len(session.scalars(select(Case.id).where(Case.split == "test")).all())
    assert n_test >= 5

    # 2. A blinded study judged by three simulated raters.
    raters = [
        accounts.create_account(store, f"sim{i}", "rater", "sim-rater-pass-1") for i in range(3)
    ]
    study_id = create_study(
        store,
        StudyDesign(
            name="Loop round 1",
            benchmark=BENCHMARK,
            systems=[WEAK, STRONG],
            overlap=2,
            seed=3,
            duplicate_fraction=0.0,
        ),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    rng = random.Random(11)
    n_judgments = sum(_simulated_rater(store, r.id, study_id, rng) for r in raters)
    assert n_judgments == 2 * n_test

    # 3. Reader statistics and a LaTeX significance table.
    judgments = study_judgments(store, "Loop round 1")
    analysis = analyze_study(judgments, AnalysisSettings(n_resamples=50, seed=0))
    latex = render_latex(paper_table(analysis), analysis.provenance)
    assert "\\toprule" in latex and "\\bottomrule" in latex
    plain = latex.replace("\\_", "_")
    assert STRONG in plain and WEAK in plain
    assert "synthetic" in plain.lower()

    # 4. Preference pairs through the CLI.
    prefs = tmp_home / "prefs"
    result = runner.invoke(
        app,
        [
            "prefs",
            "export",
            "--study",
            "Loop round 1",
            "--out",
            str(prefs),
            "--validation-fraction",
            "0.2",
            "--seed",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((prefs / "export.json").read_text())
    counts = manifest["counts"]
    assert counts["train"] >= 2 and counts["validation"] >= 1
    assert manifest["synthetic"] is True
    rows = [json.loads(line) for line in (prefs / "train.jsonl").read_text().splitlines()]
    chosen_systems = [r["provenance"]["chosen_system"] for r in rows]
    assert chosen_systems.count(STRONG) > chosen_systems.count(WEAK)
    train_cases = {r["provenance"]["case_key"] for r in rows}
    val_cases = {
        json.loads(line)["provenance"]["case_key"]
        for line in (prefs / "validation.jsonl").read_text().splitlines()
    }
    assert not train_cases & val_cases

    # 5. DPO for a few steps through the CLI; the adapter becomes a system.
    result = runner.invoke(
        app,
        [
            "train",
            "dpo",
            "--prefs",
            str(prefs),
            "--model",
            str(tiny_model_dir),
            "--out",
            str(tmp_home / "adapters" / "loop-dpo"),
            "--system-name",
            "tiny-dpo-r1",
            "--like",
            WEAK,
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--lr",
            "1e-3",
            "--rank",
            "4",
            "--alpha",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    (job,) = list_training_jobs(store)
    assert job.status == "done" and len(job.losses) == 3
    assert job.result["eval_metrics"]  # the validation split was evaluated
    card = json.loads((tmp_home / "adapters" / "loop-dpo" / "training_card.json").read_text())
    assert card["data"]["synthetic"] is True and card["base_model"] == str(tiny_model_dir.resolve())
    new = get_system(store, "tiny-dpo-r1")
    assert new.kind == "vlm" and new.spec.max_new_tokens == 16
    assert new.spec.adapter == str((tmp_home / "adapters" / "loop-dpo").resolve())

    # 6. The new system runs on the benchmark ...
    assert run_system(store, BENCHMARK, "tiny-dpo-r1", split="test").status == "done"
    with store.session() as session:
        texts = session.scalars(select(Generation.text).where(Generation.system_id == new.id)).all()
    assert len(texts) == n_test

    # 7. ... appears on the leaderboard next to the others ...
    board = build_leaderboard(
        store,
        LeaderboardConfig(
            benchmark=BENCHMARK,
            baseline=STRONG,
            metrics=("bleu", "rouge_l", "clinical"),
            n_resamples=50,
            n_permutations=50,
        ),
    )
    assert {"tiny-dpo-r1", WEAK, STRONG} <= set(board.systems)
    assert any(row.system == "tiny-dpo-r1" and row.diff is not None for row in board.rows)

    # 8. ... and can enter the next study.
    next_id = create_study(
        store,
        StudyDesign(
            name="Loop round 2",
            benchmark=BENCHMARK,
            systems=["tiny-dpo-r1", STRONG],
            overlap=1,
            seed=4,
            duplicate_fraction=0.0,
        ),
    )
    enrol_rater(store, next_id, raters[0].username)
    assert start_study(store, next_id) is not None
