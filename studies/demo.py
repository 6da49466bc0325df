"""Seed the demo: the synthetic benchmark, demo systems and their runs, a demo study."""

from __future__ import annotations

from collections.abc import Callable

from studies.benchmarks.importer import import_benchmark
from studies.db import Store
from studies.settings import Settings

DEMO_BENCHMARK = "synthetic-colon"


def seed_demo(store: Store, settings: Settings, echo: Callable[[str], None] = print) -> list[str]:
    """Bring the demo data up to date (idempotent); return the log-in lines to print."""
    root = settings.data_dir / "benchmarks" / DEMO_BENCHMARK
    root.mkdir(parents=True, exist_ok=True)
    echo(f"Synthetic benchmark {DEMO_BENCHMARK!r} in {root} (SYNTHETIC data, not patients)")
    report = import_benchmark(store, DEMO_BENCHMARK, root)
    echo(report.summary())
    return []
