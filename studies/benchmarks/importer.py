"""Import a dataset into the store, idempotently: unchanged cases are left alone, changed
media or texts (detected by sha256) update their case, and a dataset with problems imports
nothing unless skip_bad is set (and never an empty benchmark).

At scale the hashing dominates, so a medium whose size and modification time match what the
last import of the same root recorded keeps its recorded sha256 without being read
(`rehash=True` reads everything again)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from studies.benchmarks.base import (
    BenchmarkImportError,
    CaseRecord,
    RowProblem,
    decoded_before,
)
from studies.benchmarks.registry import get_loader
from studies.store.db import Store
from studies.store.media import (
    MediaPathError,
    resolve_media,
    sha256_file,
    sha256_folder,
    sha256_text,
    stat_signature,
)
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
    # Media files or frame folders read and hashed, and those recognised as unchanged by
    # size and modification time (not read).
    media_hashed: int = 0
    media_recognised: int = 0

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

    def media_summary(self) -> str:
        return (
            f"media: {self.media_hashed} hashed, {self.media_recognised} unchanged by size "
            "and modification time"
        )


# path -> (stat signature, sha256, is folder), as the last import recorded or this one found.
Known = dict[str, tuple[str | None, str, bool]]


def _media_entries(
    root: Path,
    record: CaseRecord,
    hashes: dict[str, tuple[str | None, str, bool]],
    known: Known,
    report: ImportReport,
    now_ns: int,
) -> list[dict[str, str]]:
    # `hashes` holds what this import found, by path: VQA sets ask many questions about one
    # image. `known` is what the last import recorded.
    entries = []
    for relative in record.media:
        if relative not in hashes:
            path = resolve_media(root, relative)
            is_dir = path.is_dir()
            signature = stat_signature(path, now_ns)
            recorded = known.get(relative)
            if signature is not None and recorded is not None and recorded[0] == signature:
                hashes[relative] = (signature, recorded[1], is_dir)
                report.media_recognised += 1
            else:
                digest = sha256_folder(path) if is_dir else sha256_file(path)
                hashes[relative] = (signature, digest, is_dir)
                report.media_hashed += 1
        signature, digest, is_dir = hashes[relative]
        if is_dir:
            kind = "frames"
        else:
            kind = "video" if record.modality == "video" else "image"
        entry = {"path": relative, "sha256": digest, "kind": kind}
        if signature is not None:
            entry["stat"] = signature
        entries.append(entry)
    return entries


def _content_hash(record: CaseRecord, media: list[dict[str, str]]) -> str:
    # The size-and-time signature is bookkeeping, not content.
    payload = {
        "split": record.split,
        "modality": record.modality,
        "media": [{k: v for k, v in entry.items() if k != "stat"} for entry in media],
        "references": record.references,
        "question": record.question,
        "findings": record.findings,
        "meta": record.meta,
    }
    return sha256_text(json.dumps(payload, sort_keys=True, default=str))


def _refusal_hint(problems: list[RowProblem], n_records: int) -> str:
    """What to do about `problems`: rows can be skipped; a whole file cannot."""
    rows = any(problem.row is not None for problem in problems)
    what = "these rows" if rows else "these files"
    if n_records:
        return f"Fix {what}, or pass --skip-bad to import the rest."
    return f"Fix {what}; nothing else in the dataset can be imported."


def _decoded_media(store: Store, name: str, root: Path) -> dict[str, str]:
    """Absolute path -> signature of the media the last import of `root` under `name`
    recorded: they passed the loader's full decode then (see `decoded_before`)."""
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if benchmark is None or benchmark.root != str(root):
            return {}
        known = _recorded_media(session, benchmark)
    decoded = {}
    for relative, (signature, _digest, _is_dir) in known.items():
        try:
            decoded[str(resolve_media(root, relative))] = signature
        except MediaPathError:
            continue  # a recorded path that now leaves the root is checked again in full
    return decoded


def _recorded_media(session: Any, benchmark: Benchmark) -> Known:
    """The signatures and hashes the benchmark's cases recorded, by media path."""
    known: Known = {}
    for media in session.scalars(select(Case.media).where(Case.benchmark_id == benchmark.id)):
        for entry in media or []:
            if entry.get("stat"):
                known[entry["path"]] = (entry["stat"], entry["sha256"], entry["kind"] == "frames")
    return known


def _check_same_loader(benchmark: Benchmark, loader_name: str, root: Path) -> None:
    if benchmark.loader != loader_name:
        raise BenchmarkImportError(
            [
                RowProblem(
                    str(root),
                    None,
                    f"benchmark {benchmark.name!r} was imported with loader "
                    f"{benchmark.loader!r}, not {loader_name!r}; choose another --name",
                )
            ]
        )


def import_benchmark(
    store: Store,
    loader_name: str,
    root: Path | str,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    rehash: bool = False,
    options: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Load `root` with the named loader and bring the store's benchmark up to date.

    Raises BenchmarkImportError (and writes nothing) when the dataset has problems and
    skip_bad is False, when nothing is left to import, or when the name belongs to a
    benchmark of another loader. Media unchanged in size and modification time since the
    last import of the same root are not read again unless `rehash`. progress(done, total)
    is called after each case's media.
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
    with decoded_before({} if rehash else _decoded_media(store, name or loader.name, root_path)):
        result = loader.load(root_path, options)
    if result.problems and not skip_bad:
        raise BenchmarkImportError(
            result.problems, hint=_refusal_hint(result.problems, len(result.records))
        )
    if not result.records:
        # Never an empty benchmark: a dataset whose every file failed holds nothing to import.
        problems = result.problems or [
            RowProblem(str(root_path), None, "the dataset holds no cases")
        ]
        raise BenchmarkImportError(problems, hint=_refusal_hint(problems, 0))
    benchmark_name = name or loader.name
    report = ImportReport(benchmark=benchmark_name, skipped=list(result.problems))

    known: Known = {}
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == benchmark_name))
        if benchmark is not None:
            _check_same_loader(benchmark, loader.name, root_path)
        if benchmark is not None and benchmark.root == str(root_path) and not rehash:
            known = _recorded_media(session, benchmark)

    hashed: list[tuple[CaseRecord, list[dict[str, str]], str]] = []
    total = len(result.records)
    hashes: dict[str, tuple[str | None, str, bool]] = {}
    now_ns = time.time_ns()
    for index, record in enumerate(result.records, start=1):
        try:
            media = _media_entries(root_path, record, hashes, known, report, now_ns)
        except MediaPathError as exc:
            # A symlink put into a media folder after the loader checked it: nothing written.
            problem = RowProblem(str(root_path), None, f"case {record.case_key!r}: {exc}")
            raise BenchmarkImportError([problem], hint=_refusal_hint([problem], 0)) from None
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
        else:
            _check_same_loader(benchmark, loader.name, root_path)  # another import meanwhile
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
                if case.media != media:
                    case.media = media  # new size-and-time signatures only
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
