"""The judgments contract: loading .csv/.jsonl files, clear errors, canonical orientation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studies.reader_stats.data import (
    JudgmentsError,
    criteria_of,
    load_judgments_file,
    prepare_judgments,
)
from studies.reader_stats.simulation import simulate_judgments


def test_csv_and_jsonl_load_to_the_same_frame(tmp_path: Path) -> None:
    frame = simulate_judgments({"x": 0.4, "y": 0.0}, n_cases=6, gold_per_rater=1, seed=2)
    csv = tmp_path / "judgments.csv"
    frame.to_csv(csv, index=False)
    jsonl = tmp_path / "judgments.jsonl"
    with jsonl.open("w") as handle:
        for record in frame.to_dict(orient="records"):
            clean = {
                k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in record.items()
                if k != "submitted_at"
            }
            handle.write(json.dumps(clean) + "\n\n")
    from_csv = load_judgments_file(csv)
    from_jsonl = load_judgments_file(jsonl)
    columns = [
        "rater",
        "case",
        "system_a",
        "system_b",
        "winner",
        "left",
        "is_gold",
        "gold_answer",
        "likert_a_safety",
        "time_on_task_s",
        "item",
    ]
    for loaded in (from_csv, from_jsonl):
        pd.testing.assert_frame_equal(
            loaded[columns].astype(object).where(loaded[columns].notna(), None),
            frame[columns].astype(object).where(frame[columns].notna(), None),
            check_dtype=False,
        )
        assert loaded.attrs["synthetic"] is False
    # A 'synthetic' column marks the whole file as synthetic.
    frame.assign(synthetic=True).to_csv(csv, index=False)
    assert load_judgments_file(csv).attrs["synthetic"] is True


def test_only_the_five_required_columns_are_needed(tmp_path: Path) -> None:
    path = tmp_path / "minimal.csv"
    path.write_text("rater,case,system_a,system_b,winner\nr1,c1,m2,m1,A\nr1,c2,m1,m2,Both bad\n")
    frame = load_judgments_file(path)
    # Written m2 vs m1 with A winning: stored as m1 vs m2 with b winning.
    assert frame[["system_a", "system_b", "winner"]].values.tolist() == [
        ["m1", "m2", "b"],
        ["m1", "m2", "both_bad"],
    ]
    assert frame["item"].tolist() == ["c1|m1|m2", "c2|m1|m2"]
    # Criteria are discovered from the columns: a file without Likert columns has none.
    assert not frame["is_gold"].any() and criteria_of(frame) == []


def test_orientation_swaps_every_side_specific_column() -> None:
    frame = pd.DataFrame(
        [
            {
                "rater": "r",
                "case": "c",
                "system_a": "zeta",
                "system_b": "alpha",
                "winner": "a",
                "left": "a",
                "likert_a_accuracy": 5,
                "likert_b_accuracy": 2,
                "len_a": 100,
                "len_b": 10,
                "is_gold": "yes",
                "gold_answer": "a",
            },
        ]
    )
    row = prepare_judgments(frame).iloc[0]
    assert (row["system_a"], row["system_b"], row["winner"], row["left"]) == (
        "alpha",
        "zeta",
        "b",
        "b",
    )
    assert (row["likert_a_accuracy"], row["likert_b_accuracy"]) == (2, 5)
    assert (row["len_a"], row["len_b"]) == (10, 100)
    assert row["is_gold"] and row["gold_answer"] == "b"


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("rater,case,system_a,outcome\nr,c,x,a\n")
    with pytest.raises(JudgmentsError, match=r"missing columns 'system_b', 'winner'"):
        load_judgments_file(path)


def test_bad_values_name_rows_and_columns_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "rater,case,system_a,system_b,winner,left,likert_a_safety,time_on_task_s,is_gold\n"
        "r1,c1,x,y,a,a,5,10,no\n"
        "r1,c2,x,y,left,a,3,10,no\n"
        "r1,c3,x,x,a,middle,7,-4,perhaps\n"
        ",c4,x,y,b,b,2.5,abc,yes\n"
    )
    with pytest.raises(JudgmentsError) as error:
        load_judgments_file(path)
    message = str(error.value)
    assert "bad.csv: column 'winner' in row 2 has 'left'" in message
    assert "system_a equals system_b in row 3" in message
    assert "column 'left' in row 3" in message
    assert "column 'likert_a_safety' in rows 3, 4: expected a whole number 1-5" in message
    assert "column 'time_on_task_s' in rows 3, 4" in message
    assert "column 'is_gold' row 3: expected true or false" in message
    assert "column 'rater' is empty in row 4" in message


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(JudgmentsError, match="no such file"):
        load_judgments_file(tmp_path / "missing.csv")
    other = tmp_path / "judgments.xlsx"
    other.write_text("x")
    with pytest.raises(JudgmentsError, match="expected a .csv or .jsonl file"):
        load_judgments_file(other)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"rater": "r"}\n{not json\n')
    with pytest.raises(JudgmentsError, match="line 2 is not JSON"):
        load_judgments_file(broken)
    empty = tmp_path / "empty.csv"
    empty.write_text("rater,case,system_a,system_b,winner\n")
    with pytest.raises(JudgmentsError, match="no judgments"):
        load_judgments_file(empty)


def test_simulated_judgments_are_labelled_and_reproducible() -> None:
    first = simulate_judgments({"x": 0.0, "y": 1.0}, n_cases=5, seed=3)
    again = simulate_judgments({"x": 0.0, "y": 1.0}, n_cases=5, seed=3)
    assert first.attrs["synthetic"] is True
    pd.testing.assert_frame_equal(first, again)


def test_left_may_name_a_system_and_superseded_rows_are_dropped() -> None:
    frame = pd.DataFrame(
        {
            "rater": ["r", "r", "r"],
            "case": ["c1", "c2", "c2"],
            "system_a": ["x", "y", "y"],
            "system_b": ["y", "x", "x"],
            "winner": ["a", "a", "b"],
            "left": ["y", "y", "x"],
            "superseded": [False, True, False],
            "item_kind": ["regular", "gold", "gold"],
        }
    )
    prepared = prepare_judgments(frame)
    assert prepared["left"].tolist() == ["b", "a"]
    assert prepared["winner"].tolist() == ["a", "a"]
    assert prepared["is_gold"].tolist() == [False, True]
    with pytest.raises(JudgmentsError, match="column 'left' in row 1: expected a, b or the name"):
        prepare_judgments(frame.assign(left=["z", "x", "x"]))
