"""Every registered loader can be imported and describes itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.benchmarks import get_loader, loader_names
from studies.benchmarks.base import BenchmarkImportError
from studies.benchmarks.importer import import_benchmark


def test_every_loader_is_registered_under_its_own_name():
    names = loader_names()
    assert names == ["polyp-reports", "kvasir-vqa-x1", "iu-xray", "polyp-video", "synthetic-colon"]
    for name in names:
        loader = get_loader(name)
        assert loader.name == name
        assert loader.task in {"report", "vqa", "cxr-report", "video-report"}
        assert loader.description
        assert loader.synthetic is (name == "synthetic-colon")


@pytest.mark.parametrize("name", ["polyp-reports", "kvasir-vqa-x1", "iu-xray", "polyp-video"])
def test_an_empty_folder_is_a_clear_error_for_every_real_layout(
    sqlite_store, tmp_path: Path, name: str
):
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, name, tmp_path / "missing")
    assert "dataset folder does not exist" in str(caught.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchmarkImportError) as caught:
        import_benchmark(sqlite_store, name, empty)
    assert str(empty) in str(caught.value) or "annotation.json" in str(caught.value)
