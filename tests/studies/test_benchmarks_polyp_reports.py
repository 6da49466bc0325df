"""The polyp-reports loader: manifests (CSV, JSONL, XLSX) and the EndoRG layout as published
(layouts_kvasir_endorg.py cites the release)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from benchmark_layouts import (
    POLYP_ROWS,
    benchmark_row,
    cases_of,
    corrupt,
    write_endorg,
    write_png,
    write_polyp_reports,
    write_table,
)
from layouts_kvasir_endorg import (
    ENDORG_REGIONS,
    ENDORG_REPORTS,
    ENDORG_TEST_REGIONS,
    ENDORG_UPPER_GI,
    endorg_image,
    write_endorg_published,
)

from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark
from studies.benchmarks.polyp_reports import LOADER


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "xlsx"])
def test_manifest_imports_with_structured_findings(store, tmp_path: Path, fmt: str):
    root = write_polyp_reports(tmp_path / "ds", fmt)
    report = import_benchmark(store, "polyp-reports", root)
    assert (report.added, report.updated, report.skipped) == (3, 0, [])
    cases = cases_of(store, "polyp-reports")
    assert set(cases) == {"c1", "c2", "c3"}
    c1, c2, c3 = cases["c1"], cases["c2"], cases["c3"]
    assert [m["path"] for m in c1.media] == ["images/c1_a.png", "images/c1_b.png"]
    assert all(len(m["sha256"]) == 64 for m in c1.media)
    assert c1.references == [POLYP_ROWS[0]["report"]]
    lesion = c1.findings["lesions"][0]
    assert (lesion["size_mm"], lesion["size_class"], lesion["location"]) == (6, "small", "sigmoid")
    assert (lesion["paris"], lesion["histology"]) == ("0-Is", "tubular_adenoma")
    assert c1.findings["polyp_count"] == 1 and c1.findings["no_polyps"] is False
    assert c2.split == "val"
    assert [(x["size_mm"], x["location"], x["paris"]) for x in c2.findings["lesions"]] == [
        (12, "rectum", "0-Ip"),
        (4, "cecum", "0-IIb"),
    ]
    assert c3.findings == {
        "no_polyps": True,
        "polyp_count": 0,
        "lesions": [],
        "bbps_total": None,
        "resection": [],
        "surveillance_years": None,
    }
    bench = benchmark_row(store, "polyp-reports")
    assert bench is not None and bench.synthetic is False

    again = import_benchmark(store, "polyp-reports", root)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)


def test_a_changed_image_or_report_updates_exactly_that_case(sqlite_store, tmp_path: Path):
    root = write_polyp_reports(tmp_path / "ds")
    import_benchmark(sqlite_store, "polyp-reports", root)
    before = cases_of(sqlite_store, "polyp-reports")
    write_png(root / "images" / "c2.png", seed=42)
    report = import_benchmark(sqlite_store, "polyp-reports", root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    after = cases_of(sqlite_store, "polyp-reports")
    assert [k for k in after if after[k].content_hash != before[k].content_hash] == ["c2"]
    assert after["c2"].media[0]["sha256"] != before["c2"].media[0]["sha256"]

    rows = [dict(row) for row in POLYP_ROWS]
    rows[2]["report"] = "Normal colonoscopy to the caecum."
    write_table(root / "manifest.csv", rows)
    report = import_benchmark(sqlite_store, "polyp-reports", root)
    assert (report.added, report.updated) == (0, 1)
    assert cases_of(sqlite_store, "polyp-reports")["c3"].references == [rows[2]["report"]]


def test_case_id_defaults_to_the_image_path(tmp_path: Path):
    root = tmp_path / "ds"
    write_png(root / "img" / "a.png")
    write_table(
        root / "manifest.csv",
        [{"image": "img/a.png", "report": "No polyps.", "split": "test", "scope": "CF-HQ190"}],
    )
    result = LOADER.load(root, {})
    assert result.problems == []
    (record,) = result.records
    assert record.case_key == "img/a"
    assert record.findings is None
    assert record.meta == {"scope": "CF-HQ190"}


def test_bad_rows_are_named_and_nothing_is_imported(store, tmp_path: Path):
    root = write_polyp_reports(tmp_path / "ds")
    corrupt(root / "images" / "c2.png")
    write_png(tmp_path / "outside.png")
    rows = [dict(row) for row in POLYP_ROWS]
    rows += [
        {"case_id": "c4", "images": "images/nope.png", "report": "x", "split": "train"},
        {"case_id": "c5", "images": "../outside.png", "report": "x", "split": "train"},
        {"case_id": "c6", "images": "images/c3.png", "report": "x", "split": "holdout"},
        {"case_id": "c1", "images": "images/c3.png", "report": "again", "split": "train"},
        {
            "case_id": "c7",
            "images": "images/c3.png",
            "report": "x",
            "split": "train",
            "paris": "Iz",
        },
    ]
    write_table(root / "manifest.csv", rows)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "polyp-reports", root)
    message = str(caught.value)
    assert "manifest.csv, row 3: unreadable image 'c2.png'" in message
    assert "manifest.csv, row 5: missing file 'images/nope.png'" in message
    assert "manifest.csv, row 6:" in message and "escapes the dataset root" in message
    assert "manifest.csv, row 7: unknown split 'holdout'" in message
    assert "manifest.csv, row 8: duplicate case_id 'c1' (first seen in row 2)" in message
    assert "manifest.csv, row 9: paris: unknown Paris class 'Iz'" in message
    assert "--skip-bad" in message
    assert benchmark_row(store, "polyp-reports") is None

    report = import_benchmark(store, "polyp-reports", root, skip_bad=True)
    assert report.added == 2
    assert sorted(cases_of(store, "polyp-reports")) == ["c1", "c3"]
    assert sorted(p.row for p in report.skipped) == [3, 5, 6, 7, 8, 9]
    assert "6 skipped" in report.summary()


def test_a_manifest_that_is_not_utf8_is_refused(sqlite_store, tmp_path: Path):
    root = write_polyp_reports(tmp_path / "ds")
    with open(root / "manifest.csv", "w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "report", "split"])
        writer.writerow(["images/c3.png", "Polyp of 5 \u00b5m, caecum", "train"])
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-reports", root)
    assert "manifest.csv: the file is not UTF-8 text (byte 0xb5 on line 2)" in str(caught.value)
    assert benchmark_row(sqlite_store, "polyp-reports") is None


def test_a_missing_required_column_is_named(sqlite_store, tmp_path: Path):
    root = write_polyp_reports(tmp_path / "ds")
    write_table(root / "manifest.csv", [{"images": "images/c3.png", "report": "x"}])
    with pytest.raises(BenchmarkImportError, match="manifest.csv: missing required column 'split'"):
        import_benchmark(sqlite_store, "polyp-reports", root)


def test_only_the_first_twenty_problems_are_listed(sqlite_store, tmp_path: Path):
    root = tmp_path / "ds"
    rows = [{"image": f"images/{i}.png", "report": "x", "split": "train"} for i in range(25)]
    write_table(root / "manifest.csv", rows)
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-reports", root)
    message = str(caught.value)
    assert message.startswith("25 problem(s)")
    assert "row 21:" in message and "row 22:" not in message
    assert "... and 5 more" in message


def test_endorg_layout(store, tmp_path: Path):
    root = write_endorg(tmp_path / "endorg")
    report = import_benchmark(store, "polyp-reports", root, name="endorg")
    assert (report.added, report.skipped) == (3, [])
    cases = cases_of(store, "endorg")
    assert set(cases) == {"train/0001", "train/0002", "test/0100"}
    pair = cases["train/0002"]
    assert [m["path"] for m in pair.media] == ["Train/rectum/0002.jpg", "Train/rectum/0003.jpg"]
    assert pair.meta == {"layout": "endorg", "region": "rectum", "segment": "rectum"}
    assert pair.split == "train" and cases["test/0100"].split == "test"
    assert cases["test/0100"].references == ["Normal caecum, no polyps."]
    again = import_benchmark(store, "polyp-reports", root, name="endorg")
    assert (again.added, again.updated) == (0, 0)


def test_endorg_bad_rows(sqlite_store, tmp_path: Path):
    root = write_endorg(tmp_path / "endorg")
    write_png(root / "Train" / "sigmoid" / "0003.jpg", seed=9)  # now in two regions
    write_table(
        root / "train_reports.xlsx",
        [
            {"image_name": "0001.jpg", "report": "Sessile polyp of 5 mm."},
            {"image_name": "0404.jpg", "report": "Missing picture."},
            {"image_name": "0003.jpg", "report": "Ambiguous."},
            {"image_name": "0001.jpg", "report": "Repeated."},
        ],
    )
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-reports", root)
    message = str(caught.value)
    assert "train_reports.xlsx, row 3: missing image '0404.jpg' under Train/" in message
    assert "train_reports.xlsx, row 4: image name '0003.jpg' is ambiguous" in message
    assert "train_reports.xlsx, row 5: duplicate image name 'train/0001'" in message
    report = import_benchmark(sqlite_store, "polyp-reports", root, skip_bad=True)
    assert report.added == 2 and len(report.skipped) == 3


def test_an_empty_folder_says_what_is_expected(sqlite_store, tmp_path: Path):
    with pytest.raises(BenchmarkImportError, match="no manifest.csv/.jsonl/.xlsx and no EndoRG"):
        import_benchmark(sqlite_store, "polyp-reports", tmp_path)


def test_a_semicolon_separated_csv_with_quoted_image_lists(tmp_path: Path):
    root = write_polyp_reports(tmp_path / "ds")
    (root / "manifest.csv").write_text(
        "case_id;images;report;split\n"
        'c1;"images/c1_a.png;images/c1_b.png";"Polyp, 6 mm; sigmoid.";train\n',
        encoding="utf-8",
    )
    result = LOADER.load(root, {})
    assert result.problems == []
    (record,) = result.records
    assert record.media == ["images/c1_a.png", "images/c1_b.png"]
    assert record.references == ["Polyp, 6 mm; sigmoid."]


# --- EndoRG as published --------------------------------------------------------------

COLON_REGIONS = [region for region in ENDORG_REGIONS if region not in ENDORG_UPPER_GI]


def _endorg_cases(regions: list[str], test_regions: list[str]) -> set[str]:
    return {f"train/{endorg_image('train', r)[:-4]}" for r in regions} | {
        f"test/{endorg_image('test', r)[:-4]}" for r in test_regions
    }


def test_endorg_as_published_imports_its_colon_regions(store, tmp_path: Path):
    """EndoRGData/Train/train_reports.xlsx and Test/test_reports.xlsx, as the release's
    README shows them (fails on ebb17df: no EndoRG train_reports.xlsx in this folder). The
    upper-GI regions stay out of the colonoscopy task by default."""
    root = write_endorg_published(tmp_path / "EndoRGData")
    report = import_benchmark(store, "polyp-reports", root, name="endorg")
    assert report.skipped == []
    cases = cases_of(store, "endorg")
    colon_test = [r for r in ENDORG_TEST_REGIONS if r not in ENDORG_UPPER_GI]
    assert set(cases) == _endorg_cases(COLON_REGIONS, colon_test)
    sigmoid = cases[f"train/{endorg_image('train', 'sigmoid')[:-4]}"]
    assert [m["path"] for m in sigmoid.media] == [
        f"Train/sigmoid/{endorg_image('train', 'sigmoid')}"
    ]
    assert sigmoid.references == [ENDORG_REPORTS["sigmoid"]]
    assert sigmoid.meta == {"layout": "endorg", "region": "sigmoid", "segment": "sigmoid"}
    assert cases[f"test/{endorg_image('test', 'rectum')[:-4]}"].split == "test"
    again = import_benchmark(store, "polyp-reports", root, name="endorg")
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(cases))


def test_endorg_colon_region_is_the_case_segment_and_no_findings_are_invented(tmp_path: Path):
    """The image folder names the colon segment (rectum, transverse colon): the case keeps it
    as its segment. EndoRG publishes no structured findings, so none are stored: the report's
    extracted findings would pass for ground truth."""
    root = write_endorg_published(tmp_path / "EndoRGData")
    records = {r.case_key: r for r in LOADER.load(root, {}).records}

    def record(region: str):
        return records[f"train/{endorg_image('train', region)[:-4]}"]

    assert record("rectum").meta["segment"] == "rectum"
    assert record("transverse_colon").meta["segment"] == "transverse"
    assert record("rectum").meta["region"] == "rectum"
    assert all(r.findings is None for r in records.values())


def test_endorg_sheets_in_the_root_still_import_the_same_cases(tmp_path: Path):
    published = LOADER.load(write_endorg_published(tmp_path / "published"), {})
    in_root = LOADER.load(write_endorg_published(tmp_path / "root", sheets_in_root=True), {})
    assert in_root.problems == published.problems == []
    assert [(r.case_key, r.media, r.references, r.findings) for r in in_root.records] == [
        (r.case_key, r.media, r.references, r.findings) for r in published.records
    ]


def test_endorg_upper_gi_regions_are_left_out_by_default(tmp_path: Path):
    """Defect: ebb17df imported EndoRG's esophagus, fundus_and_cardia, body, antrum and
    duodenum images into the colonoscopy report task (sheets in the root, which it read)."""
    root = write_endorg_published(tmp_path / "EndoRGData", sheets_in_root=True)
    result = LOADER.load(root, {})
    assert result.problems == []
    assert {r.meta["region"] for r in result.records} == set(COLON_REGIONS)


@pytest.mark.parametrize("regions", ["upper_gi", "all"])
def test_endorg_upper_gi_regions_on_request(tmp_path: Path, regions: str):
    """ebb17df imported the five upper-GI regions into the colonoscopy task, with no way to
    leave them out; now they come only when asked for, without colon findings."""
    root = write_endorg_published(tmp_path / "EndoRGData", sheets_in_root=True)
    result = LOADER.load(root, {"regions": regions})
    assert result.problems == []
    wanted = ENDORG_UPPER_GI if regions == "upper_gi" else ENDORG_REGIONS
    test_wanted = [r for r in ENDORG_TEST_REGIONS if r in wanted]
    assert {r.case_key for r in result.records} == _endorg_cases(list(wanted), test_wanted)
    upper = [r for r in result.records if r.meta["region"] in ENDORG_UPPER_GI]
    assert len(upper) == len(ENDORG_UPPER_GI) + 1 and all(r.findings is None for r in upper)


def test_endorg_layout_problems_are_named(sqlite_store, tmp_path: Path):
    root = write_endorg_published(tmp_path / "EndoRGData")
    (bad,) = LOADER.load(root, {"regions": "stomach"}).problems
    assert "unknown regions 'stomach'; use one of colon, upper_gi, all" in str(bad)

    write_png(root / "Train" / "ileum" / "img_0500.jpg")
    sheet = root / "Train" / "train_reports.xlsx"
    write_table(sheet, [{"image": "img_0500.jpg", "report": "Terminal ileum, normal."}])
    write_table(root / "test_reports.xlsx", [{"image": "img_0106.jpg", "report": "x"}])
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, "polyp-reports", root)
    message = str(caught.value)
    assert (
        "Train/train_reports.xlsx, row 2: image 'img_0500.jpg' is in 'ileum', not an EndoRG"
        in message
    )
    assert (
        "two test report sheets (Test/test_reports.xlsx and test_reports.xlsx); keep one" in message
    )
    assert benchmark_row(sqlite_store, "polyp-reports") is None
