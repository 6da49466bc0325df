"""Read-only views of the store that the app and the CLI show: benchmarks, cases, systems."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from studies.store.db import Store
from studies.store.media import resolve_media
from studies.store.schema import Benchmark, Case, Generation, Run, System


@dataclass
class BenchmarkSummary:
    name: str
    loader: str
    task: str
    synthetic: bool
    root: str
    description: str
    splits: dict[str, int]

    @property
    def n_cases(self) -> int:
        return sum(self.splits.values())


@dataclass
class CaseView:
    id: int
    case_key: str
    split: str
    modality: str
    media: list[Path]
    references: list[str]
    question: str | None
    findings: dict[str, Any] | None
    meta: dict[str, Any]


def benchmark_summaries(store: Store) -> list[BenchmarkSummary]:
    with store.session() as session:
        counts: dict[int, dict[str, int]] = {}
        rows = session.execute(
            select(Case.benchmark_id, Case.split, func.count()).group_by(
                Case.benchmark_id, Case.split
            )
        )
        for benchmark_id, split, count in rows:
            counts.setdefault(benchmark_id, {})[split] = count
        return [
            BenchmarkSummary(
                name=b.name,
                loader=b.loader,
                task=b.task,
                synthetic=b.synthetic,
                root=b.root,
                description=b.description,
                splits=dict(sorted(counts.get(b.id, {}).items())),
            )
            for b in session.scalars(select(Benchmark).order_by(Benchmark.name))
        ]


def get_benchmark(store: Store, name: str) -> Benchmark:
    """The benchmark called `name`; KeyError with the known names when there is none."""
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if benchmark is None:
            known = ", ".join(session.scalars(select(Benchmark.name))) or "none imported yet"
            raise KeyError(f"no benchmark called {name!r} (known: {known})")
        return benchmark


def _lesion_words(findings: dict[str, Any] | None) -> set[str]:
    if not findings:
        return set()
    words: set[str] = set()
    if findings.get("no_polyps"):
        words.add("no polyps")
    for lesion in findings.get("lesions") or []:
        for key in ("location", "paris", "histology", "size_class"):
            if lesion.get(key):
                words.add(str(lesion[key]))
    return words


def finding_options(store: Store, benchmark_name: str) -> list[str]:
    """Every finding value (location, Paris class, histology, size class) in a benchmark."""
    benchmark = get_benchmark(store, benchmark_name)
    with store.session() as session:
        values: set[str] = set()
        for findings in session.scalars(
            select(Case.findings).where(Case.benchmark_id == benchmark.id)
        ):
            values |= _lesion_words(findings)
        return sorted(values)


def list_cases(
    store: Store,
    benchmark_name: str,
    *,
    split: str | None = None,
    finding: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[CaseView]:
    """Cases of a benchmark, optionally of one split and with one finding value."""
    benchmark = get_benchmark(store, benchmark_name)
    with store.session() as session:
        query = select(Case).where(Case.benchmark_id == benchmark.id).order_by(Case.case_key)
        if split:
            query = query.where(Case.split == split)
        cases = list(session.scalars(query))
    if finding:
        cases = [case for case in cases if finding in _lesion_words(case.findings)]
    cases = cases[offset : None if limit is None else offset + limit]
    return [_view(benchmark.root, case) for case in cases]


def _view(root: str, case: Case) -> CaseView:
    return CaseView(
        id=case.id,
        case_key=case.case_key,
        split=case.split,
        modality=case.modality,
        media=[resolve_media(root, entry["path"]) for entry in case.media],
        references=list(case.references),
        question=case.question,
        findings=case.findings,
        meta=dict(case.meta or {}),
    )


def store_counts(store: Store) -> dict[str, int]:
    """Row counts for the Home page."""
    with store.session() as session:
        return {
            "benchmarks": session.scalar(select(func.count()).select_from(Benchmark)) or 0,
            "cases": session.scalar(select(func.count()).select_from(Case)) or 0,
            "systems": session.scalar(select(func.count()).select_from(System)) or 0,
            "runs": session.scalar(select(func.count()).select_from(Run)) or 0,
            "generations": session.scalar(select(func.count()).select_from(Generation)) or 0,
        }


def system_names(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(System.name).order_by(System.name)))
