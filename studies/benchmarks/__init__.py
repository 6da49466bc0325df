"""Benchmark loaders (a registry keyed by name) and the idempotent importer."""

from studies.benchmarks.base import (
    BenchmarkImportError,
    BenchmarkLoader,
    CaseRecord,
    LoadResult,
    RowProblem,
)
from studies.benchmarks.registry import get_loader, loader_names, loaders

__all__ = [
    "BenchmarkImportError",
    "BenchmarkLoader",
    "CaseRecord",
    "LoadResult",
    "RowProblem",
    "get_loader",
    "loader_names",
    "loaders",
]
