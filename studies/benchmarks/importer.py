"""Import a dataset into the store, idempotently: unchanged cases are left alone, changed
media or texts (detected by sha256) update their case, and a dataset with problems imports
nothing unless skip_bad is set."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from studies.benchmarks.base import BenchmarkImportError, CaseRecord, RowProblem
from studies.benchmarks.registry import get_loader
from studies.store.db import Store
from studies.store.media import resolve_media, sha256_file, sha256_folder, sha256_text
from studies.store.schema import Benchmark, Case, utcnow


@dataclass
class ImportReport:
    benchmark: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # Cases in the store that the dataset no longer lists; kept, since runs and studies
    # may refer to them.
    stale: int = 0
    skipped: list[RowProblem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated)

    def summary(self) -> str:
        text = (
            f"{self.benchmark}: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        if self.stale:
            text += f", {self.stale} no longer in the dataset (kept)"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text


def _media_entries(
    root: Path, record: CaseRecord, hashes: dict[str, tuple[str, bool]] | None = None
) -> list[dict[str, str]]:
    # `hashes` caches (sha256, is folder) by path within one import: VQA sets ask many
    # questions about one image.
    hashes = {} if hashes is None else hashes
    entries = []
    for relative in record.media:
        if relative not in hashes:
            path = resolve_media(root, relative)
            is_dir = path.is_dir()
            hashes[relative] = (sha256_folder(path) if is_dir else sha256_file(path), is_dir)
        digest, is_dir = hashes[relative]
        if is_dir:
            kind = "frames"
        else:
            kind = "video" if record.modality == "video" else "image"
        entries.append({"path": relative, "sha256": digest, "kind": kind})
    return entries


def _content_hash(record: CaseRecord, media: list[dict[str, str]]) -> str:
    payload = {
        "split": record.split,
        "modality": record.modality,
        "media": media,
        "references": record.references,
        "question": record.question,
        "findings": record.findings,
        "meta": record.meta,
    }
    return sha256_text(json.dumps(payload, sort_keys=True, default=str))


def import_benchmark(
    store: Store,
    loader_name: str,
    root: Path | str,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    options: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Load `root` with the named loader and bring the store's benchmark up to date.

    Raises BenchmarkImportError (and writes nothing) when the dataset has problems and
    skip_bad is False.
    """
    loader = get_loader(loader_name)
    root_path = Path(root).expanduser().resolve()
    if not root_path.exists() and getattr(loader, "creates_root", False):
        # A generating loader (synthetic-colon) fills a new, empty folder.
        root_path.mkdir(parents=True)
    if not root_path.is_dir():
        raise BenchmarkImportError(
            [RowProblem(str(root_path), None, "dataset folder does not exist")]
        )
    options = dict(options or {})
    result = loader.load(root_path, options)
    if result.problems and not skip_bad:
        raise BenchmarkImportError(
            result.problems, hint="Fix these rows, or pass --skip-bad to import the rest."
        )
    benchmark_name = name or loader.name
    report = ImportReport(benchmark=benchmark_name, skipped=list(result.problems))

    hashed: list[tuple[CaseRecord, list[dict[str, str]], str]] = []
    total = len(result.records)
    hashes: dict[str, tuple[str, bool]] = {}
    for index, record in enumerate(result.records, start=1):
        media = _media_entries(root_path, record, hashes)
        hashed.append((record, media, _content_hash(record, media)))
        if progress:
            progress(index, total)

    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == benchmark_name))
        if benchmark is None:
            benchmark = Benchmark(
                name=benchmark_name,
                loader=loader.name,
                root=str(root_path),
                task=loader.task,
                synthetic=loader.synthetic,
                description=loader.description,
                options=options,
            )
            session.add(benchmark)
            session.flush()
        elif benchmark.loader != loader.name:
            raise BenchmarkImportError(
                [
                    RowProblem(
                        str(root_path),
                        None,
                        f"benchmark {benchmark_name!r} was imported with loader "
                        f"{benchmark.loader!r}, not {loader.name!r}; choose another --name",
                    )
                ]
            )
        else:
            if benchmark.root != str(root_path) or benchmark.options != options:
                benchmark.root = str(root_path)
                benchmark.options = options
                benchmark.updated_at = utcnow()

        existing = {
            case.case_key: case
            for case in session.scalars(select(Case).where(Case.benchmark_id == benchmark.id))
        }
        seen: set[str] = set()
        for record, media, content_hash in hashed:
            seen.add(record.case_key)
            case = existing.get(record.case_key)
            if case is not None and case.content_hash == content_hash:
                report.unchanged += 1
                continue
            if case is None:
                case = Case(benchmark_id=benchmark.id, case_key=record.case_key)
                session.add(case)
                report.added += 1
            else:
                report.updated += 1
            case.split = record.split
            case.modality = record.modality
            case.media = media
            case.references = list(record.references)
            case.question = record.question
            case.findings = record.findings
            case.meta = dict(record.meta)
            case.content_hash = content_hash
        report.stale = len(set(existing) - seen)
        if report.changed:
            benchmark.updated_at = utcnow()
    return report
