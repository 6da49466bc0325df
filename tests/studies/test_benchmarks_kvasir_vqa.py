"""The kvasir-vqa-x1 loader: the Hugging Face parquet, its CSV export and the README's JSONL
export, each written as published (layouts_kvasir_endorg.py cites the sources)."""

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
from layouts_kvasir_endorg import (
    KVASIR_SPLITS,
    KVASIR_TEST,
    KVASIR_TRAIN,
    write_kvasir_csv,
    write_kvasir_hf,
    write_kvasir_jsonl,
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
    row = KVASIR_ROWS["train"][1]
    by_question = {case.question: key for key, case in cases.items()}
    assert set(by_question) == {r["question"] for rows in KVASIR_ROWS.values() for r in rows}
    assert all(key.startswith(cases[key].meta["img_id"] + "#") for key in cases)
    second = cases[by_question[row["question"]]]
    assert second.question == row["question"]
    assert second.references == [row["answer"]]
    assert second.split == "train"
    assert second.media[0]["path"] == f"images/{FIRST_ID}.jpg"
    assert second.meta["complexity"] == 2
    assert second.meta["question_class"] == ["polyp_size", "polyp_location"]
    assert second.meta["original"] == row["original"]
    assert cases[by_question[KVASIR_ROWS["test"][0]["question"]]].split == "test"
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
    assert [after[k].meta["img_id"] for k in changed] == ["clb0lbwzqdnxg086u9s3g8jwk"]


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


# --- the published forms ------------------------------------------------------------

ALL_ROWS = [(split, row) for split, rows in KVASIR_SPLITS.items() for row in rows]


def _by_question(result) -> dict[tuple[str, str], object]:
    return {(record.split, record.question): record for record in result.records}


def test_the_hugging_face_parquet_imports_with_classes_and_complexity(store, tmp_path: Path):
    root = write_kvasir_hf(tmp_path / "Kvasir-VQA-x1")
    report = import_benchmark(store, "kvasir-vqa-x1", root)
    assert (report.added, report.skipped) == (len(ALL_ROWS), [])
    cases = {(c.split, c.question): c for c in cases_of(store, "kvasir-vqa-x1").values()}
    assert set(cases) == {(split, row["question"]) for split, row in ALL_ROWS}
    for split, row in ALL_ROWS:
        case = cases[(split, row["question"])]
        assert case.references == [row["answer"]]
        assert case.media[0]["path"] == f"images/{row['img_id']}.jpg"
        assert case.meta == {
            "img_id": row["img_id"],
            "complexity": row["complexity"],
            "question_class": row["question_class"],
            "original": row["original"],
        }


def test_the_csv_export_gives_the_same_cases_as_the_parquet(tmp_path: Path):
    """Fails on ebb17df: `df.to_csv` files were not read at all."""
    parquet = LOADER.load(write_kvasir_hf(tmp_path / "hf"), {})
    root = write_kvasir_csv(tmp_path / "csv")
    header = (root / "data" / "train.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith(",")  # pandas' unnamed index column, as df.to_csv writes it
    result = LOADER.load(root, {})
    assert result.problems == []
    assert [
        (r.case_key, r.split, r.question, r.references, r.media, r.meta) for r in result.records
    ] == [(r.case_key, r.split, r.question, r.references, r.media, r.meta) for r in parquet.records]
    assert {type(r.meta["complexity"]) for r in result.records} == {int}


@pytest.mark.parametrize(
    "image_dir",
    [None, "Kvasir-VQA-x1/images", "/content/Kvasir-VQA-x1/images"],
    ids=["readme-absolute", "notebook-relative", "another-machine"],
)
def test_the_readme_jsonl_export_imports(store, tmp_path: Path, image_dir: str | None):
    """`Kvasir-VQA-x1-{split}.jsonl` with `messages` + `images`, as the dataset README writes
    it (fails on ebb17df: missing required column 'img_id'). The same questions get the same
    keys as from the parquet; the JSONL carries no complexity or question class."""
    keys = {
        (r.split, r.question): r.case_key
        for r in LOADER.load(write_kvasir_hf(tmp_path / "hf"), {}).records
    }
    root = write_kvasir_jsonl(tmp_path / "Kvasir-VQA-x1", image_dir=image_dir)
    report = import_benchmark(store, "kvasir-vqa-x1", root)
    assert (report.added, report.skipped) == (len(ALL_ROWS), [])
    cases = cases_of(store, "kvasir-vqa-x1")
    assert {(c.split, c.question): key for key, c in cases.items()} == keys
    for split, row in ALL_ROWS:
        case = cases[keys[(split, row["question"])]]
        assert case.references == [row["answer"]]
        assert case.media[0]["path"] == f"images/{row['img_id']}.jpg"
        assert case.meta == {"img_id": row["img_id"]}


def test_the_augmented_jsonl_is_the_transformed_track(tmp_path: Path):
    """The README's `-aug.jsonl` files point at weakly augmented images: the standard track
    leaves them out (they repeat every question), `track=transformed` reads only them."""
    root = write_kvasir_jsonl(tmp_path / "Kvasir-VQA-x1", augmented=True)
    standard = LOADER.load(root, {})
    assert standard.problems == []
    assert {r.media[0].split("/")[0] for r in standard.records} == {"images"}
    transformed = LOADER.load(root, {"track": "transformed"})
    assert transformed.problems == []
    assert {r.media[0].split("/")[0] for r in transformed.records} == {"image_weak_augmented"}
    assert {r.meta["track"] for r in transformed.records} == {"transformed"}
    assert len(transformed.records) == len(standard.records)
    (bad,) = LOADER.load(root, {"track": "weak"}).problems
    assert "unknown track 'weak'; use standard or transformed" in str(bad)


def test_reordered_rows_keep_their_keys(store, tmp_path: Path):
    """Defect: keys were row positions (`{img_id}#q{n}`), so two rows of one image swapped
    gave each key the other question (ebb17df: 2 updated, `#q0` now the other question).
    Keys are derived from the image and the question: the same keys map to the same
    questions, and a re-import changes nothing."""
    root = write_kvasir_hf(tmp_path / "Kvasir-VQA-x1")
    import_benchmark(store, "kvasir-vqa-x1", root)
    before = {key: case.question for key, case in cases_of(store, "kvasir-vqa-x1").items()}
    swapped = list(KVASIR_TRAIN)
    swapped[2], swapped[3] = swapped[3], swapped[2]  # the two questions on one image
    assert swapped[2]["img_id"] == swapped[3]["img_id"]
    write_kvasir_hf(root, {"train": swapped, "test": KVASIR_TEST})
    report = import_benchmark(store, "kvasir-vqa-x1", root)
    assert (report.added, report.updated, report.unchanged) == (0, 0, len(ALL_ROWS))
    after = {key: case.question for key, case in cases_of(store, "kvasir-vqa-x1").items()}
    assert after == before


def test_a_test_only_download_keeps_the_test_keys(tmp_path: Path):
    """ebb17df numbered questions across splits: the test question on a train image was
    `#q1` in the full download and `#q0` in a test-only one."""
    full = LOADER.load(write_kvasir_hf(tmp_path / "full"), {})
    test_only = LOADER.load(write_kvasir_hf(tmp_path / "test", {"test": KVASIR_TEST}), {})
    assert test_only.problems == []
    assert [r.case_key for r in test_only.records] == [
        r.case_key for r in full.records if r.split == "test"
    ]


def test_a_question_in_two_splits_is_named(tmp_path: Path):
    root = write_kvasir_hf(
        tmp_path / "Kvasir-VQA-x1", {"train": KVASIR_TRAIN, "test": [KVASIR_TRAIN[0]]}
    )
    result = LOADER.load(root, {})
    (problem,) = result.problems
    assert str(problem).startswith("data/test-00000-of-00001.parquet, row 1: question ")
    assert "is in train too (data/train-00000-of-00001.parquet, row 1)" in str(problem)
    assert len(result.records) == len(KVASIR_TRAIN)


def test_a_bad_jsonl_line_is_named(sqlite_store, tmp_path: Path):
    root = write_kvasir_jsonl(tmp_path / "Kvasir-VQA-x1")
    lines = (root / "Kvasir-VQA-x1-train.jsonl").read_text(encoding="utf-8").splitlines()
    no_answer = json.loads(lines[1])
    no_answer["messages"] = no_answer["messages"][:1]
    two_images = json.loads(lines[2])
    two_images["images"] = two_images["images"] * 2
    missing = json.loads(lines[3])
    missing["images"] = ["/elsewhere/images/not-downloaded.jpg"]
    lines[1:4] = [json.dumps(no_answer), json.dumps(two_images), json.dumps(missing)]
    (root / "Kvasir-VQA-x1-train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "kvasir-vqa-x1", root)
    message = str(caught.value)
    assert "Kvasir-VQA-x1-train.jsonl, row 2: messages hold no assistant message" in message
    assert "Kvasir-VQA-x1-train.jsonl, row 3: images must list exactly one image path" in message
    assert (
        "Kvasir-VQA-x1-train.jsonl, row 4: image for img_id 'not-downloaded': "
        "missing file 'images/not-downloaded.jpg'"
    ) in message
    assert benchmark_row(sqlite_store, "kvasir-vqa-x1") is None
