"""Seed the demo: the synthetic benchmark, demo systems and their runs, a demo study that
compares the VLM with the baselines (each pair has the model)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from model.kinds import kind_of
from model.spec import SpecError, SystemSpec
from model.tiny import build_tiny_lora_adapter, build_tiny_qwen3_vl
from studies.benchmarks.importer import import_benchmark
from studies.readers import accounts
from studies.readers.accounts import ensure_admin
from studies.readers.design import StudyDesign, create_study
from studies.readers.enrolment import enrol_rater
from studies.readers.lifecycle import start_study
from studies.readers.progress import list_studies
from studies.store.db import Store
from studies.store.schema import Benchmark, Case, Generation, System
from studies.store.settings import Settings
from studies.systems.registry import register_system
from studies.systems.runs import run_system

DEMO_BENCHMARK = "synthetic-colon"


def seed_demo(store: Store, settings: Settings, echo: Callable[[str], None] = print) -> list[str]:
    """Bring the demo data up to date (idempotent); return the log-in lines to print.

    Steps: import the synthetic benchmark, build the tiny offline Qwen3-VL and register and
    run the demo systems (cached: a second call generates nothing), then the demo accounts
    and the demo reader study.
    """
    root = settings.data_dir / "benchmarks" / DEMO_BENCHMARK
    root.mkdir(parents=True, exist_ok=True)
    echo(f"Synthetic benchmark {DEMO_BENCHMARK!r} in {root} (SYNTHETIC data, not patients)")
    report = import_benchmark(store, DEMO_BENCHMARK, root)
    echo(report.summary())
    seed_demo_systems(store, settings, echo)
    ensure_admin(store, settings, echo)
    return seed_demo_study(store, settings)


# --- the demo systems ---------------------------------------------------------------

DEMO_MAX_NEW_TOKENS = 48


def demo_model_folders(settings: Settings) -> tuple[Path, Path]:
    """Where the demo's tiny Qwen3-VL and its tiny LoRA adapter live."""
    models = settings.data_dir / "models"
    return models / "tiny-qwen3-vl", models / "tiny-qwen3-vl-lora"


def demo_specs(model_dir: Path, adapter_dir: Path) -> dict[str, SystemSpec]:
    """The five demo systems: the tiny model with and without its adapter, three baselines."""
    tiny = {"model": str(model_dir), "max_new_tokens": DEMO_MAX_NEW_TOKENS, "batch_size": 8}
    return {
        "tiny-qwen3-vl-lora": SystemSpec(kind="vlm", adapter=str(adapter_dir), **tiny),
        "tiny-qwen3-vl-base": SystemSpec(kind="vlm-base", adapter=str(adapter_dir), **tiny),
        "retrieval-baseline": SystemSpec(kind="retrieval"),
        "template-baseline": SystemSpec(kind="template"),
        "reference": SystemSpec(kind="reference"),
    }


DEMO_DESCRIPTIONS = {
    "tiny-qwen3-vl-lora": "Tiny random-weight Qwen3-VL with a tiny LoRA adapter (demo only; "
    "its text is not meaningful).",
    "tiny-qwen3-vl-base": "The same tiny Qwen3-VL with the adapter disabled (demo only).",
    "retrieval-baseline": "Report of the nearest training image.",
    "template-baseline": "Most frequent training report (per class where labels exist).",
    "reference": "The human (here: synthetic) reference report.",
}


def seed_demo_systems(store: Store, settings: Settings, echo: Callable[[str], None]) -> None:
    """Build the tiny model once, register the demo systems and run them on synthetic-colon.

    Expects the synthetic-colon benchmark to be imported already (seed_demo does that).
    """
    model_dir, adapter_dir = demo_model_folders(settings)
    if not (model_dir / "config.json").is_file():
        echo(f"Building the tiny Qwen3-VL in {model_dir} ...")
        build_tiny_qwen3_vl(model_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        echo(f"Building the tiny LoRA adapter in {adapter_dir} ...")
        build_tiny_lora_adapter(model_dir, adapter_dir)
    for name, spec in demo_specs(model_dir, adapter_dir).items():
        info, created = register_system(
            store, name, spec, description=DEMO_DESCRIPTIONS[name], replace=True
        )
        echo(f"System {info.name}: {'added' if created else 'up to date'} ({info.summary()})")
    for name in demo_specs(model_dir, adapter_dir):
        report = run_system(store, DEMO_BENCHMARK, name, split="test")
        echo(report.summary())


# --- demo ---------------------------------------------------------------------------

DEMO_STUDY = "Demo reader study (synthetic)"
DEMO_RATERS = ("demo-rater1", "demo-rater2")
DEMO_ADMIN = "demo-admin"


def _demo_systems(
    session: Session, counts: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], str | None]:
    """(n cases, system id) of the demo study's systems and the comparator's name: a model
    (the adapter one first) against up to two baselines when the split has both; else the
    three systems with the most reports (no comparator)."""
    kinds = {
        system_id: session.get(System, system_id)
        for _n, system_id in counts
        if session.get(System, system_id) is not None
    }

    def flags(system_id: int):  # noqa: ANN202
        try:
            return kind_of(kinds[system_id].kind)
        except SpecError:
            return None

    models = [(n, i) for n, i in counts if (k := flags(i)) is not None and k.generates_text]
    baselines = [
        (n, i)
        for n, i in counts
        if (k := flags(i)) is not None and not k.generates_text and not k.copies_reference
    ]
    if models and baselines:
        # The adapter model first: that is the system the workbench is about.
        model = max(models, key=lambda x: (kinds[x[1]].kind == "vlm", x[0], -x[1]))
        chosen = [model, *sorted(baselines, reverse=True)[:2]]
        return chosen, kinds[model[1]].name
    return sorted(counts, reverse=True)[:3], None


def seed_demo_study(store: Store, settings: Settings) -> list[str]:
    """A demo admin, two demo raters and a started demo study on the synthetic benchmark.

    Needs a synthetic benchmark with at least two systems that have reports for the same
    cases; returns the log-in lines to print. Passwords are made (and printed) once, when
    an account is created; a second call keeps every password and session.
    """
    with store.session() as session:
        benchmark = session.scalar(
            select(Benchmark)
            .where(Benchmark.synthetic.is_(True))
            .order_by((Benchmark.name == "synthetic-colon").desc(), Benchmark.id)
        )
        if benchmark is None:
            return []
        counts = session.execute(
            select(Case.split, Generation.system_id, func.count(func.distinct(Case.id)))
            .join(Generation, Generation.case_id == Case.id)
            .where(Case.benchmark_id == benchmark.id, Generation.system_id.is_not(None))
            .group_by(Case.split, Generation.system_id)
        ).all()
        by_split: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for split, system_id, n in counts:
            by_split[split].append((n, system_id))
        if not by_split:
            return []
        split = max(by_split, key=lambda s: (len(by_split[s]), s == "test"))
        ranked, comparator = _demo_systems(session, by_split[split])
        if len(ranked) < 2:
            return []
        system_names = [
            session.get(System, system_id).name
            for _n, system_id in sorted(ranked, key=lambda x: x[1])
        ]
        n_cases = min(n for n, _ in ranked)
        benchmark_name = benchmark.name

    lines: list[str] = []
    for username, role in ((DEMO_ADMIN, "admin"), *((r, "rater") for r in DEMO_RATERS)):
        if accounts.get_account(store, username) is not None:
            # Seeding again changes no password and ends no session: raters stay logged in.
            lines.append(
                f"  {role:5s}  {username} / (unchanged; new one: medvision accounts password "
                f"{username})"
            )
            continue
        password = accounts.generate_password()
        accounts.create_account(
            store, username, role, password, display_name=f"Demo {role} (synthetic)"
        )
        lines.append(f"  {role:5s}  {username} / {password}")

    if not any(s.name == DEMO_STUDY for s in list_studies(store)):
        design = StudyDesign(
            name=DEMO_STUDY,
            benchmark=benchmark_name,
            systems=system_names,
            split=split,
            # The intended loop: the model against the baselines, each pair with the model.
            comparisons="comparator" if comparator else "all_pairs",
            comparator=comparator,
            overlap=2,
            seed=7,
            sample_size=min(12, n_cases),
            duplicate_fraction=0.1,
        )
        study_id = create_study(store, design)
        for username in DEMO_RATERS:
            enrol_rater(store, study_id, username)
        start_study(store, study_id)
    return [f"Demo reader study {DEMO_STUDY!r} (SYNTHETIC data). Log in with:", *lines]
