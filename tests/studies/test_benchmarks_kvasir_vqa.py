"""The kvasir-vqa-x1 loader (parquet and JSONL, as the public release ships them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_layouts import (
    KVASIR_ROWS,
    benchmark_row,
    cases_of,
    corrupt,
    write_kvasir_vqa,
    write_png,
)

from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark
from studies.benchmarks.kvasir_vqa import LOADER

FIRST_ID = "cl8k2u1pr1dzn0832dry8fwxi"


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_import_questions_with_their_images(store, tmp_path: Path, fmt: str):
    root = write_kvasir_vqa(tmp_path / "kvasir", fmt)
    report = import_benchmark(store, "kvasir-vqa-x1", root)
    assert (report.added, report.skipped) == (4, [])
    cases = cases_of(store, "kvasir-vqa-x1")
    assert set(cases) == {
        f"{FIRST_ID}#q0",
        f"{FIRST_ID}#q1",
        "cl8k2u1q21e2z0832bxxa3t1d#q0",
        "clb0lbwzqdnxg086u9s3g8jwk#q0",
    }
    second = cases[f"{FIRST_ID}#q1"]
    row = KVASIR_ROWS["train"][1]
    assert second.question == row["question"]
    assert second.references == [row["answer"]]
    assert second.split == "train"
    assert second.media[0]["path"] == f"images/{FIRST_ID}.jpg"
    assert second.meta["complexity"] == 2
    assert second.meta["question_class"] == ["polyp_size", "polyp_location"]
    assert second.meta["original"] == row["original"]
    assert cases["clb0lbwzqdnxg086u9s3g8jwk#q0"].split == "test"
    bench = benchmark_row(store, "kvasir-vqa-x1")
    assert bench is not None and bench.task == "vqa"

    again = import_benchmark(store, "kvasir-vqa-x1", root)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)


def test_a_changed_image_updates_every_question_on_it(sqlite_store, tmp_path: Path):
    root = write_kvasir_vqa(tmp_path / "kvasir")
    import_benchmark(sqlite_store, "kvasir-vqa-x1", root)
    before = cases_of(sqlite_store, "kvasir-vqa-x1")
    write_png(root / "images" / "clb0lbwzqdnxg086u9s3g8jwk.jpg", seed=77)
    report = import_benchmark(sqlite_store, "kvasir-vqa-x1", root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 3)
    after = cases_of(sqlite_store, "kvasir-vqa-x1")
    changed = [k for k in after if after[k].content_hash != before[k].content_hash]
    assert changed == ["clb0lbwzqdnxg086u9s3g8jwk#q0"]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def test_bad_rows_are_named_and_skip_bad_imports_the_rest(store, tmp_path: Path):
    root = write_kvasir_vqa(tmp_path / "kvasir", "jsonl")
    corrupt(root / "images" / "cl8k2u1q21e2z0832bxxa3t1d.jpg")
    rows = [dict(row) for row in KVASIR_ROWS["train"]]
    rows.append(dict(rows[0]))  # the same question on the same image again
    rows.append({**rows[0], "img_id": "missing-image", "question": "Any polyp?"})
    rows.append({**rows[0], "img_id": "../../etc/passwd", "question": "Escape?"})
    rows.append({**rows[0], "split": "holdout", "question": "Which split?"})
    _write_jsonl(root / "train.jsonl", rows)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "kvasir-vqa-x1", root)
    message = str(caught.value)
    assert "train.jsonl, row 3: image for img_id 'cl8k2u1q21e2z0832bxxa3t1d': unreadable" in message
    assert "train.jsonl, row 4: duplicate question" in message and "row 1)" in message
    assert "train.jsonl, row 5: image for img_id 'missing-image': missing file" in message
    assert "train.jsonl, row 6:" in message and "escapes the dataset root" in message
    assert "train.jsonl, row 7: unknown split 'holdout'" in message
    assert benchmark_row(store, "kvasir-vqa-x1") is None

    report = import_benchmark(store, "kvasir-vqa-x1", root, skip_bad=True)
    assert report.added == 3 and len(report.skipped) == 5


def test_missing_column_and_non_utf8_and_unknown_split_file(sqlite_store, tmp_path: Path):
    root = write_kvasir_vqa(tmp_path / "kvasir", "jsonl")
    _write_jsonl(root / "test.jsonl", [{"img_id": FIRST_ID, "question": "Polyp?"}])
    with pytest.raises(BenchmarkImportError, match="test.jsonl: missing required column 'answer'"):
        import_benchmark(sqlite_store, "kvasir-vqa-x1", root)

    (root / "test.jsonl").write_bytes(
        b'{"img_id": "x", "question": "Gr\xf6\xdfe?", "answer": "5 mm"}\n'
    )
    with pytest.raises(BenchmarkImportError, match="test.jsonl: the file is not UTF-8 text"):
        import_benchmark(sqlite_store, "kvasir-vqa-x1", root)

    (root / "test.jsonl").unlink()
    _write_jsonl(root / "extra.jsonl", KVASIR_ROWS["test"])
    result = LOADER.load(root, {})
    assert [str(p) for p in result.problems] == [
        "extra.jsonl: cannot tell the split: name the file train*/test* or add a split column"
    ]


def test_a_split_column_wins_over_the_file_name(tmp_path: Path):
    root = write_kvasir_vqa(tmp_path / "kvasir", "jsonl")
    rows = [{**row, "split": "test"} for row in KVASIR_ROWS["train"]]
    _write_jsonl(root / "train.jsonl", rows)
    result = LOADER.load(root, {})
    assert result.problems == []
    assert {record.split for record in result.records} == {"test"}
