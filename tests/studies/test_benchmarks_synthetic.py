"""The synthetic colonoscopy generator and the synthetic-colon loader."""

from __future__ import annotations

import json
import re
from pathlib import Path

import av
import numpy as np
import pytest
from benchmark_layouts import (
    SMALL_SYNTHETIC,
    benchmark_row,
    cases_of,
    corrupt,
    write_png,
)
from PIL import Image

from metrics.clinical import extract_findings, surveillance_interval
from metrics.clinical.vocab import LESION_FIELDS, size_class
from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark
from studies.demo.synthetic import (
    Lesion,
    case_truth,
    draw_truth,
    generate_synthetic_colon,
    truth_findings,
    write_report,
)
from studies.store.media import sha256_file

FINDINGS_KEYS = {
    "no_polyps",
    "polyp_count",
    "lesions",
    "bbps_total",
    "resection",
    "surveillance_years",
}


def _rows(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in root.rglob("*") if p.is_file()}


def test_generation_is_deterministic_for_a_seed(synthetic_colon_source: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate_synthetic_colon(again, **SMALL_SYNTHETIC)
    assert _hashes(again) == _hashes(synthetic_colon_source)
    other = tmp_path / "other"
    generate_synthetic_colon(other, **{**SMALL_SYNTHETIC, "seed": 4})
    assert _hashes(other)["manifest.jsonl"] != _hashes(again)["manifest.jsonl"]
    assert (
        _hashes(other)["images/synth-img-0000.png"] != _hashes(again)["images/synth-img-0000.png"]
    )


def test_manifest_rows_are_synthetic_with_findings_that_match_the_report(
    synthetic_colon_source: Path,
):
    rows = _rows(synthetic_colon_source)
    assert len(rows) == SMALL_SYNTHETIC["n_images"] + SMALL_SYNTHETIC["n_videos"]
    assert {row["split"] for row in rows} == {"train", "val", "test"}
    for row in rows:
        assert row["synthetic"] is True
        assert row["seed"] == SMALL_SYNTHETIC["seed"]
        findings = row["findings"]
        assert set(findings) == FINDINGS_KEYS
        assert findings["polyp_count"] == len(findings["lesions"]) == len(row["truth"])
        assert findings["no_polyps"] == (not findings["lesions"])
        report = row["report"]
        if any(lesion["histology"] == "carcinoma" for lesion in row["truth"]):
            assert findings["surveillance_years"] is None and "Referral" in report
        else:
            assert f"{findings['surveillance_years']:g} year" in report or "6 months" in report
        assert row["surveillance_rule"] == surveillance_interval(findings).summary
        for lesion in findings["lesions"]:
            assert set(lesion) == set(LESION_FIELDS)
            assert lesion["size_class"] == size_class(lesion["size_mm"])
            mm, cm = lesion["size_mm"], lesion["size_mm"] / 10
            assert re.search(rf"\b({mm} ?mm|{cm:g} cm)\b", report), (mm, report)
            assert lesion["paris"].removeprefix("0-").split("+")[0] in report


def test_generated_media_decode(synthetic_colon_source: Path):
    rows = _rows(synthetic_colon_source)
    size = SMALL_SYNTHETIC["image_size"]
    for row in rows:
        if row["modality"] == "image":
            with Image.open(synthetic_colon_source / row["images"][0]) as image:
                assert image.size == (size, size)
                assert image.mode == "RGB"
        else:
            with av.open(str(synthetic_colon_source / row["video"])) as container:
                frames = list(container.decode(video=0))
            assert len(frames) == SMALL_SYNTHETIC["video_frames"]
            assert frames[0].width == size


def test_reports_vary_and_cover_the_vocabulary(tmp_path: Path):
    root = tmp_path / "big"
    generate_synthetic_colon(root, n_images=60, n_videos=0, seed=11, image_size=64)
    rows = _rows(root)
    reports = [row["report"] for row in rows]
    text = " ".join(reports)
    assert len(set(reports)) == len(reports)
    for word in ("cm", "mm", "Paris", "NICE", "No ", "colonoscopy in"):
        assert word in text, word
    counts = {row["findings"]["polyp_count"] for row in rows}
    assert counts == {0, 1, 2, 3}
    pedunculated = [lesion for row in rows for lesion in row["truth"] if lesion["paris"] == "0-Ip"]
    flat = [lesion for row in rows for lesion in row["truth"] if lesion["paris"] == "0-IIa"]
    assert pedunculated and flat


def _lesion(size: int, histology: str, piecemeal: bool = False) -> Lesion:
    resection = "emr" if piecemeal else "cold_snare"
    return Lesion(size, "sigmoid", "0-Is", histology, "2", "2A", "IIIL", None, resection, piecemeal)


def _truth(*lesions: Lesion, resection_mentioned: bool = True):
    mentioned = {"bbps": True, "nice": True, "jnet": False, "kudo": False}
    return case_truth(list(lesions), (2, 3, 3), {**mentioned, "resection": resection_mentioned})


def test_generated_intervals_are_the_clinical_table_for_the_ground_truth():
    rng = np.random.default_rng(2020)
    rows = {}
    for _ in range(1500):
        truth = draw_truth(rng)
        findings = truth_findings(truth)
        recommendation = surveillance_interval(findings)
        assert findings["surveillance_years"] == recommendation.years, truth
        rows[recommendation.row] = rows.get(recommendation.row, 0) + 1
    # The draw reaches the table's rows that 0-3 polyps can reach, carcinoma included.
    assert {"normal", "adenoma_1_2_small", "ssl_1_2_small", "adenoma_or_ssl_3_4_small"} <= set(rows)
    assert {"advanced_adenoma", "advanced_serrated", "piecemeal_ge20", "carcinoma"} <= set(rows)


def test_the_review_cases_get_the_guideline_interval_in_the_report():
    # 2 tubular adenomas 6 mm + 1 SSL 6 mm: "3-4 adenomas or SSLs < 10 mm", 3-5 years.
    tubular = _lesion(6, "tubular_adenoma")
    mixed = _truth(tubular, tubular, _lesion(6, "sessile_serrated_lesion"))
    assert mixed.surveillance_years == 3
    assert mixed.surveillance_rule.endswith(": 3-5 years")
    report = write_report(np.random.default_rng(1), mixed)
    assert extract_findings(report)["surveillance_years"] == 3

    # A 25 mm carcinoma: outside the table, a referral and no interval.
    cancer = _truth(_lesion(25, "carcinoma"))
    assert cancer.surveillance_years is None
    assert "outside the surveillance table" in cancer.surveillance_rule
    report = write_report(np.random.default_rng(1), cancer)
    assert "Referral" in report and extract_findings(report)["surveillance_years"] is None


def test_a_piecemeal_resection_is_stated_and_sets_six_months():
    truth = _truth(_lesion(25, "tubular_adenoma", piecemeal=True), resection_mentioned=False)
    assert truth.surveillance_years == 0.5
    assert truth_findings(truth)["resection"] == ["piecemeal", "emr"]
    report = write_report(np.random.default_rng(3), truth)
    assert "piecemeal" in report and "in 6 months" in report
    assert extract_findings(report)["resection"] == ["piecemeal", "emr"]
    for histology, years in [
        ("hyperplastic", 10),
        ("tubular_adenoma", 7),
        ("sessile_serrated_lesion", 5),
        ("traditional_serrated_adenoma", 3),
    ]:
        assert _truth(_lesion(4, histology)).surveillance_years == years, histology
    assert _truth().surveillance_years == 10


def test_import_marks_everything_synthetic_and_is_idempotent(store, synthetic_colon_root: Path):
    first = import_benchmark(store, "synthetic-colon", synthetic_colon_root)
    assert (first.added, first.updated) == (8, 0)
    bench = benchmark_row(store, "synthetic-colon")
    assert bench is not None and bench.synthetic is True and bench.task == "report"
    cases = cases_of(store, "synthetic-colon")
    assert all(case.meta["synthetic"] is True for case in cases.values())
    video = cases["synth-vid-000"]
    assert video.modality == "video" and video.media[0]["kind"] == "video"
    assert cases["synth-img-0000"].findings["lesions"] is not None
    second = import_benchmark(store, "synthetic-colon", synthetic_colon_root)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 8)


def test_a_changed_image_updates_exactly_that_case(sqlite_store, synthetic_colon_root: Path):
    import_benchmark(sqlite_store, "synthetic-colon", synthetic_colon_root)
    before = cases_of(sqlite_store, "synthetic-colon")
    write_png(synthetic_colon_root / "images/synth-img-0002.png", seed=99, size=96)
    report = import_benchmark(sqlite_store, "synthetic-colon", synthetic_colon_root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 7)
    after = cases_of(sqlite_store, "synthetic-colon")
    changed = [key for key in after if after[key].content_hash != before[key].content_hash]
    assert changed == ["synth-img-0002"]


def test_an_empty_folder_is_generated_into_with_options(sqlite_store, tmp_path: Path):
    root = tmp_path / "new-folder"
    options = {"n_images": 3, "n_videos": 1, "seed": 5, "image_size": 64, "video_frames": 3}
    report = import_benchmark(sqlite_store, "synthetic-colon", root, options=options)
    assert report.added == 4
    assert (root / "manifest.jsonl").exists() and (root / "README.txt").exists()
    again = import_benchmark(sqlite_store, "synthetic-colon", root, options=options)
    assert (again.added, again.updated) == (0, 0)
    with pytest.raises(BenchmarkImportError, match="seed=6"):
        import_benchmark(sqlite_store, "synthetic-colon", root, options={**options, "seed": 6})


def test_a_folder_with_other_files_is_not_overwritten(sqlite_store, tmp_path: Path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(BenchmarkImportError, match="no manifest.jsonl"):
        import_benchmark(sqlite_store, "synthetic-colon", folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_corrupt_video_and_bad_rows_import_nothing_unless_skip_bad(
    store, synthetic_colon_root: Path
):
    corrupt(synthetic_colon_root / "videos/synth-vid-001.mp4")
    manifest = synthetic_colon_root / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    row = json.loads(lines[0])
    row["split"] = "holdout"
    lines[0] = json.dumps(row)
    escaping = json.loads(lines[1])
    escaping["images"] = ["../outside.png"]
    lines[1] = json.dumps(escaping)
    lines.append(lines[2])  # a duplicate case id
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "synthetic-colon", synthetic_colon_root)
    message = str(caught.value)
    assert "manifest.jsonl, row 1: unknown split 'holdout'" in message
    assert "manifest.jsonl, row 2:" in message and "escapes the dataset root" in message
    assert "manifest.jsonl, row 8:" in message and "corrupt or unreadable video" in message
    assert "manifest.jsonl, row 9: duplicate case_id 'synth-img-0002'" in message
    assert cases_of(store, "synthetic-colon") == {}
    assert benchmark_row(store, "synthetic-colon") is None

    report = import_benchmark(store, "synthetic-colon", synthetic_colon_root, skip_bad=True)
    assert report.added == 5
    assert len(report.skipped) == 4
    assert set(cases_of(store, "synthetic-colon")) == {
        "synth-img-0002",
        "synth-img-0003",
        "synth-img-0004",
        "synth-img-0005",
        "synth-vid-000",
    }


def test_a_manifest_that_is_not_utf8_is_named(sqlite_store, synthetic_colon_root: Path):
    manifest = synthetic_colon_root / "manifest.jsonl"
    manifest.write_bytes(manifest.read_bytes().replace(b"mm", "\u00b5m".encode("latin-1"), 1))
    with pytest.raises(BenchmarkImportError, match=r"manifest.jsonl: the file is not UTF-8"):
        import_benchmark(sqlite_store, "synthetic-colon", synthetic_colon_root)


def test_an_interrupted_generation_is_redone(sqlite_store, tmp_path: Path):
    root = tmp_path / "half"
    options = {"n_images": 2, "n_videos": 0, "image_size": 64}
    generate_synthetic_colon(root, **options)
    (root / "manifest.jsonl").unlink()  # as if stopped before the manifest was written
    write_png(root / "images" / "synth-img-0000.png", seed=5, size=64)
    report = import_benchmark(sqlite_store, "synthetic-colon", root, options=options)
    assert report.added == 2
    fresh = tmp_path / "fresh"
    generate_synthetic_colon(fresh, **options)
    assert _hashes(root) == _hashes(fresh)


def test_bad_options_are_refused_before_anything_is_written(sqlite_store, tmp_path: Path):
    root = tmp_path / "new"
    with pytest.raises(BenchmarkImportError, match="unknown option"):
        import_benchmark(sqlite_store, "synthetic-colon", root, options={"n_cases": 3})
    with pytest.raises(BenchmarkImportError, match="whole numbers"):
        import_benchmark(sqlite_store, "synthetic-colon", root, options={"seed": "abc"})
    with pytest.raises(BenchmarkImportError, match="image_size must be an even number"):
        import_benchmark(sqlite_store, "synthetic-colon", root, options={"image_size": 63})
    assert list(root.iterdir()) == []
