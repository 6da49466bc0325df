"""study_judgments reads a study's current judgments from the store (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from studies.reader_stats.data import (
    JudgmentsError,
    load_judgments_file,
)
from studies.reader_stats.simulation import simulate_judgments
from studies.readers.form import criteria_keys, default_form
from studies.readers.judgments import study_judgments, study_names
from studies.store.db import Store
from studies.store.schema import (
    Account,
    Assignment,
    Benchmark,
    Case,
    Generation,
    Judgment,
    Study,
    StudyItem,
    System,
)

CRITERIA_KEYS = criteria_keys(default_form())


def insert_study(
    store: Store, judgments: pd.DataFrame, name: str = "study-1", *, synthetic: bool = True
) -> dict[int, int]:
    """Write `judgments` as a study with rows inserted directly; returns frame row -> judgment id.

    Every other judgment's item is stored in reverse system order, so the reading must map
    the stored a/b back to system names correctly.
    """
    ids: dict[int, int] = {}
    with store.session() as session:
        benchmark = Benchmark(
            name=f"bench-{name}",
            loader="synthetic-colon",
            root="/tmp",
            task="report",
            synthetic=synthetic,
        )
        session.add(benchmark)
        session.flush()
        systems = {}
        for system in sorted(set(judgments["system_a"]) | set(judgments["system_b"])):
            row = System(name=system, kind="template", fingerprint=uuid.uuid4().hex)
            session.add(row)
            systems[system] = row
        cases = {}
        for case in sorted(judgments["case"].unique()):
            row = Case(
                benchmark_id=benchmark.id,
                case_key=case,
                split="test",
                modality="image",
                content_hash="0",
            )
            session.add(row)
            cases[case] = row
        raters = {}
        for rater in sorted(judgments["rater"].unique()):
            raters[rater] = Account(username=rater, role="rater")
            session.add(raters[rater])
        study = Study(name=name, status="active", config={})
        session.add(study)
        session.flush()
        generations: dict[tuple[str, str], Generation] = {}
        items: dict[tuple, StudyItem] = {}
        for index, row in enumerate(judgments.itertuples(index=False)):
            for system, length in ((row.system_a, row.len_a), (row.system_b, row.len_b)):
                if (system, row.case) not in generations:
                    generation = Generation(
                        system_fingerprint=systems[system].fingerprint,
                        system_id=systems[system].id,
                        case_id=cases[row.case].id,
                        prompt_hash="p",
                        text=" ".join(["word"] * int(length)),
                    )
                    session.add(generation)
                    generations[(system, row.case)] = generation
            session.flush()
            reverse = index % 2 == 1
            first, second = (
                (row.system_b, row.system_a) if reverse else (row.system_a, row.system_b)
            )
            key = (row.item, row.case, first, second)
            if key not in items:
                flip = {"a": "b", "b": "a"}
                gold = row.gold_answer if isinstance(row.gold_answer, str) else None
                items[key] = StudyItem(
                    study_id=study.id,
                    case_id=cases[row.case].id,
                    system_a_id=systems[first].id,
                    system_b_id=systems[second].id,
                    generation_a_id=generations[(first, row.case)].id,
                    generation_b_id=generations[(second, row.case)].id,
                    kind="gold" if row.is_gold else "regular",
                    gold_answer=flip.get(gold, gold) if reverse else gold,
                )
                session.add(items[key])
                session.flush()
            swap = {"a": "b", "b": "a"} if reverse else {}
            assignment = Assignment(
                token=uuid.uuid4().hex,
                study_id=study.id,
                rater_id=raters[row.rater].id,
                item_id=items[key].id,
                order_index=index,
                a_on_left=swap.get(row.left, row.left) == "a",
                is_duplicate=bool(row.is_duplicate),
            )
            session.add(assignment)
            session.flush()
            likert = {
                side: {
                    c: int(getattr(row, f"likert_{src}_{c}"))
                    for c in CRITERIA_KEYS
                    if pd.notna(getattr(row, f"likert_{src}_{c}"))
                }
                for side, src in (("a", "b" if reverse else "a"), ("b", "a" if reverse else "b"))
            }
            judgment = Judgment(
                assignment_id=assignment.id,
                rater_id=raters[row.rater].id,
                submission_key=uuid.uuid4().hex,
                preference_shown="left",
                winner=swap.get(row.winner, row.winner),
                likert=likert,
                time_on_task_s=float(row.time_on_task_s),
            )
            session.add(judgment)
            session.flush()
            ids[index] = judgment.id
    return ids


KEY = ["rater", "case", "system_a", "system_b", "is_duplicate", "is_gold"]
COMPARED = [
    "winner",
    "left",
    "gold_answer",
    "len_a",
    "len_b",
    "time_on_task_s",
    *[f"likert_{s}_{c}" for c in CRITERIA_KEYS for s in ("a", "b")],
]


def test_study_judgments_round_trip_and_supersede(store: Store) -> None:
    frame = simulate_judgments(
        {"base": 0.0, "lora": 0.6, "template": -0.4},
        n_cases=4,
        raters=3,
        raters_per_item=2,
        tie_nu=0.5,
        gold_per_rater=1,
        duplicates_per_rater=1,
        seed=5,
    )
    ids = insert_study(store, frame, "reader-study")
    # A correction of the first judgment: a new row supersedes it, the old one stays.
    with store.session() as session:
        old = session.get(Judgment, ids[0])
        new_winner = "b" if old.winner != "b" else "a"
        session.add(
            Judgment(
                assignment_id=old.assignment_id,
                rater_id=old.rater_id,
                submission_key="correction",
                preference_shown="right",
                winner=new_winner,
                likert=old.likert,
                time_on_task_s=3.0,
                supersedes_id=old.id,
            )
        )
    read = study_judgments(store, "reader-study")
    assert len(read) == len(frame)
    assert read.attrs["synthetic"] is True
    assert study_names(store) == ["reader-study"]
    assert ids[0] not in set(read["judgment_id"])
    expected = frame.copy()
    # The correction as the reader sees it in canonical orientation (row 0 is stored as is).
    expected.loc[0, "winner"] = new_winner
    expected.loc[0, "time_on_task_s"] = 3.0
    left = expected.sort_values(KEY + ["item"]).reset_index(drop=True)
    right = read.sort_values(KEY + ["item"]).reset_index(drop=True)
    # Gold and duplicate items get their database id as item; compare them by position.
    for column in COMPARED:
        pd.testing.assert_series_equal(
            left[column].astype(object).where(left[column].notna(), None),
            right[column].astype(object).where(right[column].notna(), None),
            check_names=False,
        )
    assert (read["system_a"] < read["system_b"]).all()
    assert read["is_gold"].sum() == 3 and read["is_duplicate"].sum() == 3


def test_study_judgments_names_unknown_and_empty_studies(store: Store) -> None:
    with pytest.raises(JudgmentsError, match="no study named 'nope'"):
        study_judgments(store, "nope")
    with store.session() as session:
        session.add(Study(name="empty", config={}))
    with pytest.raises(JudgmentsError, match="has no judgments yet"):
        study_judgments(store, "empty")
    with pytest.raises(JudgmentsError, match=r"studies: empty"):
        study_judgments(store, "nope")


def test_cli_study_writes_every_table_and_plot(tmp_home, tmp_path) -> None:  # noqa: ANN001
    import json

    from typer.testing import CliRunner

    from studies.store.db import get_store
    from workbench.cli import app

    frame = simulate_judgments(
        {"base": 0.0, "lora": 0.7}, n_cases=10, raters=3, raters_per_item=2, seed=9
    )
    insert_study(get_store(), frame, "cli-study")
    out = tmp_path / "tables"
    result = CliRunner().invoke(
        app,
        [
            "stats",
            "study",
            "--study",
            "cli-study",
            "--format",
            "latex",
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--seed",
            "4",
            "--comparator",
            "base",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "paper.tex").read_text().count(r"\toprule") == 1
    assert (out / "all_tables.tex").exists() and (out / "paper.csv").exists()
    assert (out / "bt_estimates.png").exists() and (out / "win_matrix.pdf").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["source"] == "study cli-study"
    assert manifest["provenance"]["synthetic"] is True
    printed = CliRunner().invoke(
        app, ["stats", "study", "-s", "cli-study", "-f", "json", "-b", "20"]
    )
    assert printed.exit_code == 0, printed.output
    document = json.loads(printed.stdout)
    assert [s["system"] for s in document["systems"]] == ["lora", "base"]
    assert "likert_means" in document["tables"]
    missing = CliRunner().invoke(app, ["stats", "study", "-s", "nope"])
    assert missing.exit_code == 2 and "no study named 'nope'" in missing.output


def test_judgments_collected_by_the_rating_side_read_back_and_export(
    store: Store, tmp_path
) -> None:  # noqa: ANN001
    """Raters judge through studies.readers.rating; the statistics see every judgment in system
    terms, the correction replaces the original, and the exported JSONL loads
    to the same answers."""
    from support.reader_world import build_world

    from studies.readers import accounts
    from studies.readers.design import StudyDesign, create_study
    from studies.readers.enrolment import enrol_rater
    from studies.readers.lifecycle import start_study
    from studies.readers.rating import (
        correct_judgment,
        export_judgments,
        next_assignment,
        submit_judgment,
    )

    good = {"accuracy": 5, "completeness": 4, "safety": 5}
    poor = {"accuracy": 2, "completeness": 2, "safety": 3}
    world = build_world(store, tmp_path / "bench", n_cases=4, systems=("sys-alpha", "sys-beta"))
    raters = [accounts.create_account(store, f"rater{i}", "rater", "rater-pass-1") for i in (1, 2)]
    study_id = create_study(
        store,
        StudyDesign(
            name="Loop", benchmark=world.benchmark, systems=world.systems, overlap=2, seed=3
        ),
    )
    for rater in raters:
        enrol_rater(store, study_id, rater.username)
    start_study(store, study_id)
    first_token = None
    for rater in raters:
        while (task := next_assignment(store, rater.id, study_id)) is not None:
            left_better = len(task.left_text) >= len(task.right_text)
            shown = "left" if left_better else "right"
            likert = {"left": good, "right": poor} if left_better else {"left": poor, "right": good}
            submit_judgment(store, rater.id, task.token, f"{task.token}-1", shown, likert, "", 12.0)
            first_token = first_token or (rater.id, task.token, left_better)
    # The first rater corrects their first answer to the other report.
    rater_id, token, left_better = first_token
    flipped = "right" if left_better else "left"
    correct_judgment(store, rater_id, token, f"{token}-2", flipped, {"left": good, "right": good})
    frame = study_judgments(store, "Loop")
    with store.session() as session:
        n_assignments = session.query(Assignment).filter(Assignment.study_id == study_id).count()
    assert len(frame) == n_assignments >= 8 and frame.attrs["synthetic"] is True
    assert (frame["len_a"] != frame["len_b"]).all()
    longer_won = ((frame["winner"] == "a") & (frame["len_a"] > frame["len_b"])) | (
        (frame["winner"] == "b") & (frame["len_b"] > frame["len_a"])
    )
    # Every judgment picks the longer report except the corrected one.
    assert int(longer_won.sum()) == n_assignments - 1
    winner_safety = frame["likert_a_safety"].where(frame["winner"] == "a", frame["likert_b_safety"])
    assert int((winner_safety == 5).sum()) == n_assignments
    path = tmp_path / "export.jsonl"
    path.write_text(export_judgments(store, study_id, "jsonl"))
    exported = load_judgments_file(path)
    # The export holds the superseded judgment too; loading keeps only current answers.
    assert len(exported) == n_assignments
    merged = frame.merge(exported, on="judgment_id", suffixes=("", "_file"))
    assert len(merged) == n_assignments
    for column in ("rater", "case", "system_a", "system_b", "is_gold", "is_duplicate"):
        assert (merged[column] == merged[f"{column}_file"]).all(), column
    assert (merged["winner"] == merged["winner_file"]).all()
    assert (merged["left"] == merged["left_file"]).all()
