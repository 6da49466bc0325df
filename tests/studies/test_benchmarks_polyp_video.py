"""The polyp-video loader: manifest clips, and SUN-SEG and REAL-colon as published
(tests/studies/layouts_video.py builds them from the public releases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_layouts import (
    benchmark_row,
    cases_of,
    corrupt,
    write_table,
    write_video_manifest,
)
from layouts_video import (
    REAL_FRAMES,
    SUN_INFO_ROWS,
    frame_value,
    read_frame_value,
    sun_info_markdown,
    write_frame,
    write_real_colon,
    write_sun_info_csv,
    write_sun_seg,
)

from metrics.clinical.surveillance import surveillance_interval
from model.video import frame_files, sample_frame_folder
from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.findings import findings_summary, make_findings, make_lesion
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


# --- SUN-SEG as published --------------------------------------------------------------


@pytest.mark.parametrize("case_table", ["markdown", "csv"])
def test_sun_seg_published_case_table_imports(store, tmp_path: Path, case_table: str):
    """Defect 4: ids `1_1` (folders `case1_1`), location letters, `15mm-`, `Invasive cancer
    (T1b)`: the published table (or a cell-for-cell CSV of it) imports every row."""
    root = write_sun_seg(tmp_path / "SUN-SEG", case_table=case_table)
    report = import_benchmark(store, "polyp-video", root, name="sun-seg")
    assert report.skipped == []
    cases = cases_of(store, "sun-seg")
    assert _lesion_tuples(cases["case1_1"]) == [(6, "cecum", "0-Is", "adenoma")]
    assert _lesion_tuples(cases["case4"]) == [(4, "sigmoid", "0-Is", "adenoma")]
    assert _lesion_tuples(cases["case24_1"]) == [(15, "sigmoid", "0-Ip", "adenoma")]
    assert cases["case24_1"].findings["lesions"][0]["size_class"] == "large"
    assert _lesion_tuples(cases["case63_1"]) == [(7, "rectum", "0-Is", "carcinoma")]
    assert _lesion_tuples(cases["case18_1"]) == [(2, "sigmoid", "0-Is", "hyperplastic")]
    lesion = cases["case51_1"].findings["lesions"][0]
    assert (lesion["paris"], lesion["lst"], lesion["location"]) == ("0-IIa", "LST-NG", "cecum")
    assert cases["case1_1"].references == [
        "1 polyp. 6 mm Paris 0-Is polyp in the cecum, adenoma with low-grade dysplasia."
    ]
    assert cases["case1_1"].media[0]["path"] == "TrainDataset/Frame/case1_1"
    again = import_benchmark(store, "polyp-video", root, name="sun-seg")
    assert (again.added, again.updated) == (0, 0)


def test_sun_seg_high_grade_adenoma_keeps_its_grade(tmp_path: Path):
    """Defect 8: `High-grade adenoma` keeps high-grade dysplasia, which shortens the
    surveillance interval to 3 years."""
    root = write_sun_seg(tmp_path / "SUN-SEG")
    records = {r.case_key: r for r in LOADER.load(root, {"track": "seen"}).records}
    (lesion,) = records["case2_3"].findings["lesions"]
    assert (lesion["histology"], lesion["dysplasia"], lesion["size_mm"]) == (
        "adenoma",
        "high_grade",
        18,
    )
    assert "high-grade dysplasia" in records["case2_3"].references[0]
    small_high_grade = {**lesion, "size_mm": 4, "size_class": "diminutive"}
    low_grade = {**small_high_grade, "dysplasia": "low_grade"}
    assert surveillance_interval(make_findings([small_high_grade])).years == 3
    assert surveillance_interval(make_findings([low_grade])).years != 3


def test_sun_seg_as_downloaded_is_refused_unless_unlabelled(store, tmp_path: Path):
    """Defect 5: the release has no case table; importing it must not give cases with no
    reference and no findings unless asked for."""
    root = write_sun_seg(tmp_path / "SUN-SEG", case_table=None)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "polyp-video", root)
    message = str(caught.value)
    assert "SUN-SEG as released has no case table" in message
    assert "INFO_POSITIVE_CASES.md" in message and "-o unlabelled=true" in message
    assert benchmark_row(store, "polyp-video") is None
    report = import_benchmark(store, "polyp-video", root, options={"unlabelled": True})
    assert report.added == 9  # 7 train clips and the 2 unseen test clips
    cases = cases_of(store, "polyp-video")
    assert all(c.references == [] and c.findings is None for c in cases.values())
    assert {c.meta["labels"] for c in cases.values()} == {"none"}


def test_sun_seg_clip_missing_from_the_table_or_a_broken_table_imports_nothing(
    sqlite_store, tmp_path: Path
):
    """Defect 5, the --skip-bad half: a clip without a row, or a table that fails as a
    whole, is not imported without its labels."""
    root = write_sun_seg(tmp_path / "SUN-SEG", case_table=None)
    rows = [row for row in SUN_INFO_ROWS if row[0] != "10_1"]
    (root / "INFO_POSITIVE_CASES.md").write_text(sun_info_markdown(rows), encoding="utf-8")
    result = LOADER.load(root, {})
    assert "case10_1" not in {r.case_key for r in result.records}
    (problem,) = result.problems
    assert str(problem).startswith(
        "TestHardDataset/Unseen/Frame/case10_1: no row for case10_1 in INFO_POSITIVE_CASES.md"
    )
    report = import_benchmark(sqlite_store, "polyp-video", root, skip_bad=True)
    assert report.added == 8 and len(report.skipped) == 1
    assert all(c.references for c in cases_of(sqlite_store, "polyp-video").values())

    (root / "INFO_POSITIVE_CASES.md").write_text("# no table here\n", encoding="utf-8")
    result = LOADER.load(root, {})
    assert result.records == []
    assert "INFO_POSITIVE_CASES.md: no Markdown table" in str(result.problems[0])
    (root / "INFO_POSITIVE_CASES.md").write_text(sun_info_markdown([]), encoding="utf-8")
    (problem,) = LOADER.load(root, {}).problems
    assert str(problem) == "INFO_POSITIVE_CASES.md: the case table has no rows"


def test_sun_seg_seen_and_unseen_test_tracks_are_kept_apart(tmp_path: Path):
    """Defect 7: Seen test clips share lesions (and references) with training clips; the
    test split holds one track, unseen by default, and every test clip names its track."""
    root = write_sun_seg(tmp_path / "SUN-SEG")

    def test_clips(options: dict) -> dict[str, dict]:
        records = LOADER.load(root, options).records
        return {r.case_key: r.meta for r in records if r.split == "test"}

    unseen = test_clips({})
    assert set(unseen) == {"case3_1", "case10_1"}
    assert unseen["case3_1"]["track"] == "unseen"
    assert unseen["case3_1"]["subset"] == "TestEasyDataset/Unseen"
    seen = test_clips({"track": "seen"})
    assert set(seen) == {"case2_3", "case1_2"}
    assert "also has training clips" in seen["case1_2"]["track_note"]
    both = test_clips({"track": "all"})
    assert {key: meta["track"] for key, meta in both.items()} == {
        "case2_3": "seen",
        "case3_1": "unseen",
        "case1_2": "seen",
        "case10_1": "unseen",
    }
    (problem,) = LOADER.load(root, {"track": "both"}).problems
    assert "unknown track option 'both'; use unseen, seen, all" in str(problem)


def test_sun_seg_bad_case_table_rows_are_named(sqlite_store, tmp_path: Path):
    root = write_sun_seg(tmp_path / "SUN-SEG", case_table=None)
    rows = [list(row) for row in SUN_INFO_ROWS]
    rows[2][5] = "X"  # 1_3: no location letter of the legend
    rows[4][3] = "Iz"  # 3_1
    write_sun_info_csv(root / "case_info.csv", rows)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-video", root)
    message = str(caught.value)
    assert "case_info.csv, row 4: location: unknown location 'X'" in message
    assert "case_info.csv, row 6: paris: unknown Paris class 'Iz'" in message
    assert "TestEasyDataset/Unseen/Frame/case3_1: its lesions in case_info.csv have problems" in (
        message
    )
    (root / "case_info.csv").write_bytes("ID,Location\n1_1,C\u00f4lon\n".encode("latin-1"))
    with pytest.raises(BenchmarkImportError, match="case_info.csv: the file is not UTF-8 text"):
        import_benchmark(sqlite_store, "polyp-video", root)


def test_sun_seg_frames_in_segment_and_image_order(tmp_path: Path):
    """SUN-SEG frame names order by `_aN` then `imageNNNN` (as VPS's loader does): `_a10`
    comes after `_a9`, which text order gets wrong."""
    root = write_sun_seg(tmp_path / "SUN-SEG")
    folder = root / "TrainDataset" / "Frame" / "case1_1"
    names = [p.name.split("-1_")[-1] for p in frame_files(folder)]
    assert names == ["a9_ayy_image0001.jpg", "a9_ayy_image0002.jpg", "a10_ayy_image0001.jpg"]


def test_a_changed_frame_updates_exactly_that_clip(sqlite_store, tmp_path: Path):
    root = write_sun_seg(tmp_path / "SUN-SEG")
    import_benchmark(sqlite_store, "polyp-video", root)
    before = cases_of(sqlite_store, "polyp-video")
    frame = next((root / "TrainDataset" / "Frame" / "case1_3").iterdir())
    write_frame(frame, 40)
    report = import_benchmark(sqlite_store, "polyp-video", root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 8)
    after = cases_of(sqlite_store, "polyp-video")
    assert [k for k in after if after[k].content_hash != before[k].content_hash] == ["case1_3"]


# --- REAL-colon as published -----------------------------------------------------------


def test_real_colon_frames_reach_the_model_in_frame_order(tmp_path: Path):
    """Defect 2: unpadded frame names (`001-001_10.jpg`) are ordered by number, so the
    sampled clip is frames 0..11 in order, as its timestamps say."""
    root = write_real_colon(tmp_path / "real-colon")
    sampled = sample_frame_folder(root / "001-001_frames", fps=30, max_frames=REAL_FRAMES)
    assert sampled.frame_indices == list(range(REAL_FRAMES))
    assert [read_frame_value(frame) for frame in sampled.frames] == [
        frame_value(t) for t in range(REAL_FRAMES)
    ]
    names = [p.name for p in frame_files(root / "001-001_frames")]
    assert names[:3] == ["001-001_0.jpg", "001-001_1.jpg", "001-001_2.jpg"]
    assert names[-2:] == ["001-001_10.jpg", "001-001_11.jpg"]


def test_real_colon_as_published(store, tmp_path: Path):
    """Defects 6 and 9: NO POLYP / OTHER lesions are no polyps; the split is the dataset's
    (videos 1-10 train, 11-12 val, 13-15 test); bbps and fps come from video_info.csv."""
    root = write_real_colon(tmp_path / "real-colon")
    report = import_benchmark(store, "polyp-video", root, name="real-colon")
    assert (report.added, report.skipped) == (4, [])
    cases = cases_of(store, "real-colon")
    assert {key: case.split for key, case in cases.items()} == {
        "001-001": "train",
        "001-011": "val",
        "001-013": "test",
        "002-001": "train",
    }
    assert _lesion_tuples(cases["001-001"]) == [
        (4, "sigmoid", None, "adenoma"),
        (3, "rectum", None, "hyperplastic"),
    ]
    only_not_polyps = cases["001-013"]
    assert only_not_polyps.findings["lesions"] == []
    assert only_not_polyps.findings["polyp_count"] == 0
    assert only_not_polyps.meta["not_polyps"] == ["001-013_1", "001-013_2"]
    assert {key: case.findings["bbps_total"] for key, case in cases.items()} == {
        "001-001": 7,
        "001-011": 8,
        "001-013": 6,
        "002-001": 9,
    }
    assert cases["001-001"].meta == {
        "layout": "real-colon",
        "split_from": "dataset",
        "fps": 29.97,
        "reference": "findings",
    }
    assert cases["001-001"].modality == "frames"
    assert cases["001-001"].media[0]["path"] == "001-001_frames"
    # The option still names one split for every video.
    records = LOADER.load(root, {"split": "validation"}).records
    assert {r.split for r in records} == {"val"}
    assert {r.meta["split_from"] for r in records} == {"option"}
    (problem,) = LOADER.load(root, {"split": "holdout"}).problems
    assert "unknown split option 'holdout'" in str(problem)


def test_real_colon_sigma_is_the_sigmoid(tmp_path: Path):
    """Defect 11 (the site word is unconfirmed in the real CSV): `sigma` is accepted."""
    root = write_real_colon(tmp_path / "real-colon")
    write_real_colon(root, [["001-001_1", "001-001", "4", "sigma", "adenoma", "AD"]])
    result = LOADER.load(root, {})
    assert result.problems == []
    records = {r.case_key: r for r in result.records}
    assert _lesion_tuples(records["001-001"]) == [(4, "sigmoid", None, "adenoma")]


def test_high_grade_adenoma_keeps_its_dysplasia_grade():
    """Defect 8, in the findings normalisation every loader uses."""
    high = make_lesion(histology="High-grade adenoma", size_mm="18mm", location="rectum")
    assert (high["histology"], high["dysplasia"]) == ("adenoma", "high_grade")
    assert make_lesion(histology="Low-grade adenoma")["dysplasia"] == "low_grade"
    assert make_lesion(histology="adenoma", dysplasia="HGD")["dysplasia"] == "high_grade"
    assert "dysplasia" not in make_lesion(histology="Hyperplastic polyp")
    with pytest.raises(ValueError, match="dysplasia: unknown dysplasia grade 'severe'"):
        make_lesion(histology="adenoma", dysplasia="severe")
    assert findings_summary(make_findings([high])) == (
        "1 polyp. 18 mm polyp in the rectum, adenoma with high-grade dysplasia."
    )


def test_real_colon_one_no_polyp_lesion_is_not_counted(tmp_path: Path):
    """Defect 6 as the review saw it: a video with two polyps and a NO POLYP lesion says
    "2 polyps."."""
    root = write_real_colon(tmp_path / "real-colon")
    rows = [
        ["001-001_1", "001-001", "4", "sigmoid", "adenoma", "AD"],
        ["001-001_2", "001-001", "3", "rectum", "hyperplastic", "HP"],
        ["001-001_3", "001-001", "5", "transverse", "normal mucosa", "NO POLYP"],
    ]
    write_real_colon(root, rows)
    records = {r.case_key: r for r in LOADER.load(root, {}).records}
    findings = records["001-001"].findings
    assert findings["polyp_count"] == 2 and len(findings["lesions"]) == 2
    assert records["001-001"].references[0].startswith("2 polyps.")


def test_real_colon_lesion_clips(store, tmp_path: Path):
    """Defect 12: one case per lesion, frames around the frames where it is boxed, in frame
    order; NO POLYP / OTHER lesions give no clip."""
    root = write_real_colon(tmp_path / "real-colon")
    options = {"clips": "lesion", "margin_s": 0.04, "clip_frames": 4}  # 1 frame at 25-30 fps
    report = import_benchmark(store, "polyp-video", root, name="lesions", options=options)
    assert report.skipped == []
    cases = cases_of(store, "lesions")
    assert set(cases) == {"001-001_1", "001-001_2", "001-011_1"}
    first = cases["001-001_1"]
    # Boxed in frames 3-5, one frame of margin: 2..6, four of them evenly, in order.
    assert first.meta["boxed_frames"] == [3, 5]
    assert first.meta["frame_numbers"] == [2, 3, 5, 6]
    assert [m["path"] for m in first.media] == [
        "001-001_frames/001-001_2.jpg",
        "001-001_frames/001-001_3.jpg",
        "001-001_frames/001-001_5.jpg",
        "001-001_frames/001-001_6.jpg",
    ]
    assert [read_frame_value(root / m["path"]) for m in first.media] == [
        frame_value(t) for t in (2, 3, 5, 6)
    ]
    assert _lesion_tuples(first) == [(4, "sigmoid", None, "adenoma")]
    assert first.references == ["1 polyp. 4 mm polyp in the sigmoid colon, adenoma."]
    assert (first.split, first.findings["bbps_total"]) == ("train", 7)
    assert cases["001-011_1"].meta["frame_numbers"] == [0, 1, 2]  # clipped at frame 0
    assert cases["001-011_1"].split == "val"
    (problem,) = LOADER.load(root, {"clips": "lesions"}).problems
    assert "unknown clips option 'lesions'; use procedure, lesion" in str(problem)


def test_real_colon_lesion_without_a_box_is_named(tmp_path: Path):
    root = write_real_colon(tmp_path / "real-colon")
    for xml in (root / "001-011_annotations").iterdir():
        xml.write_text(xml.read_text().replace("001-011_1", "001-011_9"))
    result = LOADER.load(root, {"clips": "lesion"})
    assert "001-011_1" not in {r.case_key for r in result.records}
    assert [str(p) for p in result.problems] == [
        "lesion_info.csv, row 4: lesion '001-011_1' has no box in 001-011_annotations/"
    ]


def test_real_colon_bad_rows_and_missing_videos(sqlite_store, tmp_path: Path):
    root = write_real_colon(tmp_path / "real-colon")
    rows = [
        ["001-001_1", "001-001", "big", "sigmoid", "adenoma", "AD"],
        ["004-015_1", "004-015", "4", "rectum", "adenoma", "AD"],
    ]
    write_real_colon(root, rows)
    info = (root / "video_info.csv").read_text().replace(",7\n", ",eleven\n", 1)
    (root / "video_info.csv").write_text(info)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-video", root)
    message = str(caught.value)
    assert "lesion_info.csv, row 2: size_mm: size 'big' is not a number of mm" in message
    assert "lesion_info.csv, row 3: missing video '004-015'" in message
    assert "video_info.csv, row 2: bbps 'eleven' is not a Boston score 0-9" in message


def test_real_colon_frame_rate_reaches_the_sampler(store, tmp_path: Path):
    """Defect 9, the second half: video 001-011 is 25 fps in video_info.csv. The run's
    request carries that rate, so a clip sampled at 25 fps takes every frame, with the
    timestamps of 25 fps (the sampler's 30 fps default takes other frames and times),
    and the rate is part of what the generation cache keys on."""
    from model.video import sample_video
    from studies.store.schema import Benchmark
    from studies.systems.runs import _case_request, case_input_hash

    root = write_real_colon(tmp_path / "real-colon")
    import_benchmark(store, "polyp-video", root, name="real-colon")
    case = cases_of(store, "real-colon")["001-011"]
    with store.session() as session:
        benchmark_root = session.query(Benchmark.root).filter_by(name="real-colon").scalar()
    request = _case_request(benchmark_root, case)
    assert request.video_fps == 25.0
    # sampled at 25 fps: every one of the 12 frames at 25 fps; at the 30 fps default, 10
    clip = sample_video(request.video, fps=25, max_frames=REAL_FRAMES, folder_fps=request.video_fps)
    assert (clip.fps, clip.frame_indices) == (25.0, list(range(REAL_FRAMES)))
    default = sample_video(request.video, fps=25, max_frames=REAL_FRAMES)
    assert (default.fps, len(default.frame_indices)) == (30.0, 10)
    # the stated rate is in the case's input hash; a case without one hashes as before
    stated = case_input_hash(case)
    case.meta = {k: v for k, v in case.meta.items() if k != "fps"}
    assert case_input_hash(case) != stated
