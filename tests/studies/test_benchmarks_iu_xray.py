"""The iu-xray loader (R2Gen annotation.json layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmark_layouts import (
    benchmark_row,
    cases_of,
    corrupt,
    iu_xray_annotation,
    write_iu_xray,
    write_png,
)

from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark
from studies.benchmarks.iu_xray import LOADER


def test_import_two_view_cases(store, tmp_path: Path):
    root = write_iu_xray(tmp_path / "iu_xray")
    report = import_benchmark(store, "iu-xray", root)
    assert (report.added, report.skipped) == (4, [])
    cases = cases_of(store, "iu-xray")
    case = cases["CXR2384_IM-0942"]
    assert case.split == "train"
    assert [m["path"] for m in case.media] == [
        "images/CXR2384_IM-0942/0.png",
        "images/CXR2384_IM-0942/1.png",
    ]
    assert case.references == ["The heart size and pulmonary vascularity appear normal."]
    assert {c.split for c in cases.values()} == {"train", "val", "test"}
    bench = benchmark_row(store, "iu-xray")
    assert bench is not None and bench.task == "cxr-report"
    again = import_benchmark(store, "iu-xray", root)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)


def test_a_changed_view_updates_exactly_that_case(sqlite_store, tmp_path: Path):
    root = write_iu_xray(tmp_path / "iu_xray")
    import_benchmark(sqlite_store, "iu-xray", root)
    before = cases_of(sqlite_store, "iu-xray")
    write_png(root / "images" / "CXR3_IM-1384" / "1.png", seed=1234)
    report = import_benchmark(sqlite_store, "iu-xray", root)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 3)
    after = cases_of(sqlite_store, "iu-xray")
    assert [k for k in after if after[k].content_hash != before[k].content_hash] == ["CXR3_IM-1384"]


def test_bad_entries_are_named_and_skip_bad_imports_the_rest(store, tmp_path: Path):
    root = write_iu_xray(tmp_path / "iu_xray")
    corrupt(root / "images" / "CXR2926_IM-1328" / "0.png")
    annotation = iu_xray_annotation()
    annotation["train"].append(dict(annotation["test"][0], split="train"))  # duplicate id
    annotation["train"].append(
        {"id": "CXR9", "report": "x", "image_path": ["../../secret.png"], "split": "train"}
    )
    annotation["train"].append({"id": "CXR10", "report": "x", "image_path": ["CXR10/0.png"]})
    annotation["train"].append({"id": "CXR11", "image_path": ["CXR11/0.png"]})
    annotation["holdout"] = [annotation["val"][0]]
    (root / "annotation.json").write_text(json.dumps(annotation))
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(store, "iu-xray", root)
    message = str(caught.value)
    assert "annotation.json [train], row 2: unreadable image '0.png'" in message
    assert "annotation.json [train], row 3: duplicate id 'CXR3_IM-1384'" not in message
    assert "annotation.json [test], row 1: duplicate id 'CXR3_IM-1384'" in message
    assert "annotation.json [train], row 4:" in message and "escapes the dataset root" in message
    assert "annotation.json [train], row 5: missing file 'images/CXR10/0.png'" in message
    assert "annotation.json [train], row 6: missing required field 'report'" in message
    assert "annotation.json: unknown split 'holdout'" in message
    assert benchmark_row(store, "iu-xray") is None

    report = import_benchmark(store, "iu-xray", root, skip_bad=True)
    assert set(cases_of(store, "iu-xray")) == {
        "CXR2384_IM-0942",
        "CXR3_IM-1384",
        "CXR1000_IM-0003",
    }
    assert report.added == 3 and len(report.skipped) == 6


def test_not_utf8_and_not_json_and_wrong_shape(tmp_path: Path):
    root = write_iu_xray(tmp_path / "iu_xray")
    path = root / "annotation.json"
    path.write_bytes(
        '{"train": [{"id": "a", "report": "Cor normal, \u00e9panchement absent"'.encode("cp1252")
    )
    (problem,) = LOADER.load(root, {}).problems
    assert str(problem).startswith(
        "annotation.json: the file is not UTF-8 text (byte 0xe9 on line 1)"
    )
    path.write_text('{"train": [', encoding="utf-8")
    (problem,) = LOADER.load(root, {}).problems
    assert "annotation.json, row 1: invalid JSON" in str(problem)
    path.write_text("[]", encoding="utf-8")
    (problem,) = LOADER.load(root, {}).problems
    assert "expected an object" in str(problem)
    path.unlink()
    (problem,) = LOADER.load(root, {}).problems
    assert str(problem) == "annotation.json: file not found"
