"""Seed the demo: the synthetic benchmark, demo systems and their runs, a demo study."""

from __future__ import annotations

from collections.abc import Callable

from studies.benchmarks.importer import import_benchmark
from studies.db import Store
from studies.settings import Settings

DEMO_BENCHMARK = "synthetic-colon"


def seed_demo(store: Store, settings: Settings, echo: Callable[[str], None] = print) -> list[str]:
    """Bring the demo data up to date (idempotent); return the log-in lines to print.

    Steps: import the synthetic benchmark, build the tiny offline Qwen3-VL and register and
    run the demo systems (cached: a second call generates nothing), then the demo accounts
    and the demo reader study.
    """
    from studies.accounts import ensure_admin
    from studies.reader_study import seed_demo_study
    from studies.systems import seed_demo_systems

    root = settings.data_dir / "benchmarks" / DEMO_BENCHMARK
    root.mkdir(parents=True, exist_ok=True)
    echo(f"Synthetic benchmark {DEMO_BENCHMARK!r} in {root} (SYNTHETIC data, not patients)")
    report = import_benchmark(store, DEMO_BENCHMARK, root)
    echo(report.summary())
    seed_demo_systems(store, settings, echo)
    ensure_admin(store, settings, echo)
    return seed_demo_study(store, settings)
