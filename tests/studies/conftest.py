"""Fixtures: small datasets in each public layout, written by the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from benchmark_layouts import SMALL_SYNTHETIC

from studies.demo.synthetic import generate_synthetic_colon


@pytest.fixture(scope="session")
def synthetic_colon_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic-colon dataset, generated once per test session (do not modify)."""
    root = tmp_path_factory.mktemp("synthetic-colon")
    generate_synthetic_colon(root, **SMALL_SYNTHETIC)
    return root


@pytest.fixture
def synthetic_colon_root(synthetic_colon_source: Path, tmp_path: Path) -> Path:
    """A private copy of the small synthetic dataset, free to change."""
    target = tmp_path / "synthetic-colon"
    shutil.copytree(synthetic_colon_source, target)
    return target
