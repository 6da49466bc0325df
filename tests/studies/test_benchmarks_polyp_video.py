"""The polyp-video loader: manifest clips, SUN-SEG frame folders, REAL-colon."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_layouts import (
    REAL_COLON_LESIONS,
    SUN_CASE_INFO,
    benchmark_row,
    cases_of,
    corrupt,
    write_png,
    write_real_colon,
    write_sun_seg,
    write_table,
    write_video_manifest,
)

from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark
from studies.benchmarks.polyp_video import LOADER


def _lesion_tuples(case) -> list[tuple]:
    return [
        (x["size_mm"], x["location"], x["paris"], x["histology"]) for x in case.findings["lesions"]
    ]


def test_manifest_clips_and_frame_folders(store, tmp_path: Path):
    root = write_video_manifest(tmp_path / "clips")
    report = import_benchmark(store, "polyp-video", root, options={"lesions": "lesions.csv"})
    assert (report.added, report.skipped) == (2, [])
    cases = cases_of(store, "polyp-video")
    a, b = cases["clip-a"], cases["clip-b"]
    assert (a.modality, a.media[0]["kind"], a.split) == ("video", "video", "train")
    assert a.references == ["An 8 mm sessile polyp in the sigmoid colon."]
    assert _lesion_tuples(a) == [(8, "sigmoid", "0-Is", "tubular_adenoma")]
    assert (b.modality, b.media[0]["kind"], b.split) == ("frames", "frames", "test")
    assert _lesion_tuples(b) == [(12, "cecum", "0-IIa", None), (3, "rectum", "0-Is", None)]
    assert b.findings["polyp_count"] == 2
    # No free-text report: the reference is a summary of the findings, and says so.
    assert b.meta["reference"] == "findings"
    assert b.references == [
        "2 polyps. 12 mm Paris 0-IIa polyp in the cecum. 3 mm Paris 0-Is polyp in the rectum."
    ]
    bench = benchmark_row(store, "polyp-video")
    assert bench is not None and bench.task == "video-report"
    again = import_benchmark(store, "polyp-video", root, options={"lesions": "lesions.csv"})
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)


def test_sun_seg_layout_with_case_information(store, tmp_path: Path):
    root = write_sun_seg(tmp_path / "SUN-SEG")
    report = import_benchmark(store, "polyp-video", root, name="sun-seg")
    assert (report.added, report.skipped) == (4, [])
    cases = cases_of(store, "sun-seg")
    assert {key: case.split for key, case in cases.items()} == {
        "case1_1": "train",
        "case1_2": "train",
        "case2_1": "test",
        "case3_1": "test",
    }
    # Both clips of lesion case1 carry its findings.
    assert _lesion_tuples(cases["case1_1"]) == [(6, "sigmoid", "0-Is", "adenoma")]
    assert cases["case1_2"].findings == cases["case1_1"].findings
    lesion = cases["case3_1"].findings["lesions"][0]
    assert (lesion["paris"], lesion["lst"], lesion["histology"]) == (
        "0-IIa",
        "LST-NG",
        "sessile_serrated_lesion",
    )
    assert lesion["size_class"] == "large"
    assert cases["case2_1"].meta == {
        "layout": "sun-seg",
        "subset": "TestEasyDataset/Seen",
        "reference": "findings",
    }
    assert cases["case1_1"].media[0]["path"] == "TrainDataset/Frame/case1_1"
    again = import_benchmark(store, "polyp-video", root, name="sun-seg")
    assert (again.added, again.updated) == (0, 0)


def test_a_changed_frame_updates_exactly_that_clip(sqlite_store, tmp_path: Path):
    root = write_sun_seg(tmp_path / "SUN-SEG")
    import_benchmark(sqlite_store, "polyp-video", root)
    before = cases_of(sqlite_store, "polyp-video")
    write_png(root / "TrainDataset" / "Frame" / "case1_2" / "frame_0001.jpg", seed=500)
    report = import_benchmark(sqlite_store, "polyp-video", root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 3)
    after = cases_of(sqlite_store, "polyp-video")
    assert [k for k in after if after[k].content_hash != before[k].content_hash] == ["case1_2"]


def test_real_colon_layout(store, tmp_path: Path):
    root = write_real_colon(tmp_path / "real-colon")
    report = import_benchmark(store, "polyp-video", root, name="real-colon")
    assert (report.added, report.skipped) == (3, [])
    cases = cases_of(store, "real-colon")
    assert _lesion_tuples(cases["001-001"]) == [
        (4, "rectum", None, "hyperplastic"),
        (12, "transverse", None, "adenoma"),
    ]
    assert _lesion_tuples(cases["001-002"]) == [(7, "cecum", None, "sessile_serrated_lesion")]
    assert cases["001-002"].modality == "video"
    normal = cases["001-003"]
    assert normal.findings["no_polyps"] is True and normal.findings["polyp_count"] == 0
    assert normal.references == ["No polyps."]
    assert {case.split for case in cases.values()} == {"test"}
    again = import_benchmark(store, "polyp-video", root, name="real-colon")
    assert (again.added, again.updated) == (0, 0)


def test_real_colon_split_comes_from_the_option(tmp_path: Path):
    root = write_real_colon(tmp_path / "real-colon")
    result = LOADER.load(root, {"split": "validation"})
    assert {record.split for record in result.records} == {"val"}
    (problem,) = LOADER.load(root, {"split": "holdout"}).problems
    assert "unknown split option 'holdout'" in str(problem)


def test_bad_clips_and_rows_are_named(store, tmp_path: Path):
    root = write_video_manifest(tmp_path / "clips")
    corrupt(root / "clips" / "a.mp4")
    (root / "clips" / "empty").mkdir()
    rows = [
        {"case_id": "clip-a", "video": "clips/a.mp4", "split": "train", "report": "x"},
        {"case_id": "clip-b", "video": "clips/b", "split": "test"},
        {"case_id": "clip-c", "video": "clips/missing.mp4", "split": "test", "report": "x"},
        {"case_id": "clip-d", "video": "../../x.mp4", "split": "test", "report": "x"},
        {"case_id": "clip-e", "video": "clips/b", "split": "later", "report": "x"},
        {"case_id": "clip-b", "video": "clips/b", "split": "test", "report": "again"},
        {"case_id": "clip-f", "video": "clips/empty", "split": "test", "report": "x"},
    ]
    write_table(root / "manifest.csv", rows)
    write_table(
        root / "lesions.csv",
        [
            {"case_id": "clip-b", "size_mm": "12", "location": "cecum", "paris": "IIa"},
            {"case_id": "clip-b", "size_mm": "3", "location": "duodenum", "paris": "Is"},
        ],
    )
    options = {"lesions": "lesions.csv"}
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "polyp-video", root, options=options)
    message = str(caught.value)
    assert "manifest.csv, row 2: corrupt or unreadable video 'a.mp4'" in message
    assert "lesions.csv, row 3: location: unknown location 'duodenum'" in message
    assert "manifest.csv, row 3: its lesions in lesions.csv have problems" in message
    assert "manifest.csv, row 4: missing file 'clips/missing.mp4'" in message
    assert "manifest.csv, row 5:" in message and "escapes the dataset root" in message
    assert "manifest.csv, row 6: unknown split 'later'" in message
    assert "manifest.csv, row 8: frame folder 'empty' holds no images" in message
    assert benchmark_row(store, "polyp-video") is None

    write_table(root / "lesions.csv", [{"case_id": "clip-b", "size_mm": "12"}])
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "polyp-video", root, options=options)
    assert "manifest.csv, row 7: duplicate case_id 'clip-b' (first seen in row 3)" in str(
        caught.value
    )
    report = import_benchmark(store, "polyp-video", root, options=options, skip_bad=True)
    assert set(cases_of(store, "polyp-video")) == {"clip-b"}
    assert report.added == 1 and len(report.skipped) == 6


def test_real_colon_bad_lesion_rows_and_missing_videos(sqlite_store, tmp_path: Path):
    root = write_real_colon(tmp_path / "real-colon")
    rows = [dict(row) for row in REAL_COLON_LESIONS]
    rows[2]["size [mm]"] = "big"
    rows.append({**rows[0], "unique_video_name": "004-015", "unique_object_id": "004-015_1"})
    write_table(root / "lesion_info.csv", rows)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-video", root)
    message = str(caught.value)
    assert "lesion_info.csv, row 4: size_mm: size 'big' is not a number of mm" in message
    assert "lesion_info.csv, row 5: missing video '004-015'" in message
    report = import_benchmark(sqlite_store, "polyp-video", root, skip_bad=True)
    assert set(cases_of(sqlite_store, "polyp-video")) == {"001-001", "001-003"}
    assert len(report.skipped) == 2


def test_sun_seg_bad_case_information(sqlite_store, tmp_path: Path):
    root = write_sun_seg(tmp_path / "SUN-SEG")
    (root / "case_info.csv").write_bytes(
        "case,location\ncase1,C\u00f4lon sigmo\u00efde\n".encode("latin-1")
    )
    with pytest.raises(BenchmarkImportError, match="case_info.csv: the file is not UTF-8 text"):
        import_benchmark(sqlite_store, "polyp-video", root)
    write_table(root / "case_info.csv", [{"case": "case1", "comment": "no lesion columns"}])
    with pytest.raises(BenchmarkImportError, match="case_info.csv: missing required column"):
        import_benchmark(sqlite_store, "polyp-video", root)
    info = [dict(row) for row in SUN_CASE_INFO]
    info[1]["shape"] = "Iz"
    write_table(root / "case_info.csv", info)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-video", root)
    assert "case_info.csv, row 3: paris: unknown Paris class 'Iz'" in str(caught.value)
    assert "TestEasyDataset/Seen/Frame/case2_1: its lesions in case_info.csv have problems" in str(
        caught.value
    )


def test_missing_columns_and_empty_folder(sqlite_store, tmp_path: Path):
    root = write_video_manifest(tmp_path / "clips")
    write_table(root / "manifest.csv", [{"case_id": "clip-a", "split": "train"}])
    with pytest.raises(BenchmarkImportError, match="manifest.csv: missing required column 'video'"):
        import_benchmark(sqlite_store, "polyp-video", root)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchmarkImportError, match="no manifest.csv"):
        import_benchmark(sqlite_store, "polyp-video", empty)


def test_findings_json_column_is_accepted(tmp_path: Path):
    root = write_video_manifest(tmp_path / "clips")
    findings = {
        "no_polyps": False,
        "polyp_count": 1,
        "lesions": [{"size_mm": 5, "location": "rectum", "paris": "0-Is", "histology": "HP"}],
        "bbps_total": 8,
        "resection": ["cold_snare"],
        "surveillance_years": 10,
    }
    write_table(
        root / "manifest.jsonl",
        [{"case_id": "j", "video": "clips/a.mp4", "split": "val", "findings": findings}],
    )
    (root / "manifest.csv").unlink()
    result = LOADER.load(root, {})
    assert result.problems == []
    (record,) = result.records
    assert record.findings["lesions"][0]["histology"] == "hyperplastic"
    assert record.findings["lesions"][0]["size_class"] == "diminutive"
    assert record.findings["bbps_total"] == 8
    assert json.dumps(record.findings)  # JSON-storable
