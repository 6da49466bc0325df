"""The demo systems: the tiny model built once, five systems registered and run."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from studies.benchmarks.importer import import_benchmark
from studies.demo.seed import demo_model_folders, seed_demo_systems
from studies.store.db import get_store
from studies.store.schema import Case
from studies.store.settings import get_settings
from studies.systems.registry import list_systems
from studies.systems.runs import case_outputs, generation_count, list_runs


def test_seed_demo_systems_builds_once_registers_and_runs(tmp_home: Path) -> None:
    settings = get_settings()
    store = get_store(settings.url)
    root = settings.data_dir / "benchmarks" / "synthetic-colon"
    import_benchmark(store, "synthetic-colon", root, options={"n_images": 10, "n_videos": 2})
    lines: list[str] = []
    seed_demo_systems(store, settings, lines.append)
    model_dir, adapter_dir = demo_model_folders(settings)
    assert model_dir.is_relative_to(settings.data_dir / "models")
    assert (model_dir / "config.json").is_file() and (adapter_dir / "adapter_config.json").is_file()
    names = [s.name for s in list_systems(store)]
    assert names == sorted(
        [
            "tiny-qwen3-vl-lora",
            "tiny-qwen3-vl-base",
            "retrieval-baseline",
            "template-baseline",
            "reference",
        ]
    )
    runs = list_runs(store)
    assert len(runs) == 5 and all(r.status == "done" and r.n_done == r.n_cases for r in runs)
    n_cases = runs[0].n_cases
    assert generation_count(store) == 5 * n_cases

    # The adapter on and off write different reports on at least one case.
    with store.session() as session:
        case_ids = session.scalars(select(Case.id).where(Case.split == "test")).all()
    differs = False
    for case_id in case_ids:
        texts = {o.system: o.text for o in case_outputs(store, case_id)}
        differs |= texts["tiny-qwen3-vl-lora"] != texts["tiny-qwen3-vl-base"]
    assert differs

    stamp = (model_dir / "config.json").stat().st_mtime_ns
    again: list[str] = []
    seed_demo_systems(store, settings, again.append)
    assert (model_dir / "config.json").stat().st_mtime_ns == stamp
    assert not any("Building" in line for line in again)
    assert sum("0 generated" in line for line in again) == 5
    assert generation_count(store) == 5 * n_cases
