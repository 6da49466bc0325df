"""Runs: one system over one benchmark split, through the generation cache.

A generation is keyed by (system fingerprint, case, prompt hash, input hash): the input hash
(`case_input_hash`) covers everything the generator is handed for the case, so a case whose
media, question or reference changed in place (a re-imported, reordered or edited dataset)
misses the cache and is generated again, while an unchanged one hits. A run looks up which of
its cases are cached, generates the rest in chunks of the system's batch size and commits
every chunk as soon as it is done, so an interruption (Ctrl-C, a crash, a killed process,
a cancel from the app) loses at most the chunk in flight, and the next run resumes where
this one stopped. Inserts ignore keys that already exist (another process may have run the
same system at the same time), so there are never duplicates.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from model.kinds import build_generator, fingerprint, kind_of
from model.prompts import PromptTemplate
from model.requests import ReportRequest, ReportResult, TrainExample
from model.spec import SystemSpec
from model.video import frame_files
from studies.benchmarks.base import SPLITS
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media, sha256_text
from studies.store.schema import Benchmark, Case, Generation, Run, System, utcnow
from studies.systems.jobs import close_abandoned, job_owner
from studies.systems.registry import SystemConfigError, prompt_for, validate_spec

RUN_STATUSES = ("pending", "running", "done", "failed", "cancelled")

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class RunError(ValueError):
    """A run that cannot start as asked; nothing was written."""


@dataclass
class RunReport:
    """What one run did."""

    run_id: int
    system: str
    benchmark: str
    split: str
    status: str
    n_cases: int
    n_cached: int  # already in the cache when the run started
    n_generated: int  # generated and stored by this run
    fingerprint: str
    prompt_hash: str
    seconds: float
    error: str | None = None

    @property
    def n_done(self) -> int:
        return self.n_cached + self.n_generated

    def summary(self) -> str:
        text = (
            f"{self.system} on {self.benchmark}/{self.split}: {self.status}, "
            f"{self.n_done}/{self.n_cases} cases ({self.n_cached} cached, "
            f"{self.n_generated} generated) in {self.seconds:.1f} s"
        )
        if self.status == "cancelled":
            text += "; run again to resume"
        if self.error:
            text += f"; error: {self.error}"
        return text


@dataclass
class _Plan:
    benchmark_id: int
    benchmark_root: str
    task: str
    system_id: int
    spec: SystemSpec
    prompt: PromptTemplate
    fingerprint: str
    cases: list[Case]
    input_hashes: dict[int, str]  # case id -> case_input_hash
    cached_ids: set[int]


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert generation rows, skipping keys already present; returns how many were new."""
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Generation)
        .values(rows)
        .on_conflict_do_nothing(
            index_elements=["system_fingerprint", "case_id", "prompt_hash", "input_hash"]
        )
        .returning(Generation.id)
    )
    return len(session.execute(statement).all())


def _folder_fps(case: Case) -> float | None:
    """The frame rate the dataset states for a case's frame folder (e.g. REAL-colon's)."""
    fps = (case.meta or {}).get("fps")
    return float(fps) if isinstance(fps, int | float) and fps > 0 else None


def case_input_hash(case: Case) -> str:
    """Hash of what a generator is handed for `case`: modality, each medium's content hash
    and kind (in order; not its path), the question and the reference (the reference baseline
    reads it), and a frame folder's stated frame rate. Migration 0002 holds a frozen copy of the
    rule as it was then (without the frame rate)."""
    payload = {
        "modality": case.modality,
        "media": [
            {"sha256": entry.get("sha256"), "kind": entry.get("kind")} for entry in case.media or []
        ],
        "question": case.question,
        "reference": case.references[0] if case.references else None,
    }
    # A stated frame rate changes the sampled frames and their timestamps. Only present when
    # stated, so the hash of every other case stays what migration 0002 computed; a case
    # whose rate was ignored before (REAL-colon) is regenerated once, as it should be.
    if case.modality in ("video", "frames") and _folder_fps(case) is not None:
        payload["video_fps"] = _folder_fps(case)
    return sha256_text(json.dumps(payload, sort_keys=True, separators=(",", ":")))


def for_current_content(
    generations: Iterable[Generation], cases: Iterable[Case]
) -> list[Generation]:
    """The generations made for what their case holds now (same `case_input_hash`), in order.

    A report of a case that changed since (other media, another question, another reference)
    answers something else: the leaderboard, a study's items and automatic preference pairs
    leave it out, as the generation cache does, until a run regenerates the case. A row with
    no input hash (written by hand, outside a run) cannot be checked and is kept.
    """
    current = {case.id: case_input_hash(case) for case in cases}
    return [g for g in generations if g.input_hash in (None, current.get(g.case_id))]


def _case_request(root: str, case: Case) -> ReportRequest:
    """The model request of a case; RunError naming the case when its media is unusable."""
    paths: list[Path] = []
    for entry in case.media:
        try:
            path = resolve_media(root, entry["path"])
        except MediaPathError as exc:
            raise RunError(f"case {case.case_key!r}: {exc}") from None
        if not path.exists():
            raise RunError(
                f"case {case.case_key!r}: media file {entry['path']!r} is missing under {root}; "
                "re-import the benchmark or restore the file"
            )
        paths.append(path)
    if not paths:
        raise RunError(f"case {case.case_key!r} has no media")
    reference = case.references[0] if case.references else None
    if case.modality in ("video", "frames"):
        return ReportRequest(
            key=case.case_key,
            video=paths[0],
            video_fps=_folder_fps(case),
            question=case.question,
            reference=reference,
        )
    return ReportRequest(
        key=case.case_key, images=paths, question=case.question, reference=reference
    )


def _case_label(case: Case) -> str | None:
    """A class label for the per-class template baseline, where the dataset has one."""
    meta = case.meta or {}
    for key in ("label", "class", "category"):
        if meta.get(key):
            return str(meta[key])
    findings = case.findings or {}
    if findings.get("no_polyps"):
        return "no polyps"
    lesions = findings.get("lesions") or []
    if lesions and lesions[0].get("histology"):
        return str(lesions[0]["histology"])
    return None


def _frame_images(video: Path | None, most: int = 4) -> list[Path]:
    """A few evenly spaced frames of a frame folder; a video file gives none (the
    baselines embed images, and a clip's own report is still used by the template)."""
    if video is None or not video.is_dir():
        return []
    frames = frame_files(video)
    step = max(1, len(frames) // most)
    return frames[::step][:most]


def train_examples(store: Store, benchmark_name: str) -> list[TrainExample]:
    """The benchmark's train split as the retrieval and template baselines need it."""
    with store.session() as session:
        benchmark = _benchmark(session, benchmark_name)
        cases = session.scalars(
            select(Case)
            .where(Case.benchmark_id == benchmark.id, Case.split == "train")
            .order_by(Case.id)
        ).all()
        examples = []
        for case in cases:
            if not case.references:
                continue
            request = _case_request(benchmark.root, case)
            images = request.images or _frame_images(request.video)
            examples.append(
                TrainExample(
                    images=images,
                    report=case.references[0],
                    label=_case_label(case),
                    key=case.case_key,
                )
            )
        return examples


def _benchmark(session: Session, name: str) -> Benchmark:
    benchmark = session.scalar(select(Benchmark).where(Benchmark.name == name))
    if benchmark is None:
        known = sorted(session.scalars(select(Benchmark.name)).all())
        hint = ", ".join(known) if known else "none imported yet"
        raise RunError(f"unknown benchmark {name!r}; imported benchmarks: {hint}")
    return benchmark


def _system(session: Session, name: str) -> System:
    system = session.scalar(select(System).where(System.name == name))
    if system is None:
        known = sorted(session.scalars(select(System.name)).all())
        hint = ", ".join(known) if known else "none yet; add one with `medvision systems add`"
        raise RunError(f"unknown system {name!r}; registered systems: {hint}")
    return system


def _plan(
    store: Store, benchmark_name: str, system_name: str, split: str, limit: int | None
) -> _Plan:
    if split not in SPLITS:
        raise RunError(f"unknown split {split!r}; expected one of: {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise RunError("--limit must be at least 1")
    with store.session() as session:
        benchmark = _benchmark(session, benchmark_name)
        system = _system(session, system_name)
        try:
            spec = SystemSpec.from_dict(dict(system.config))
            validate_spec(spec)
            prompt = prompt_for(spec, benchmark.task)
        except (SystemConfigError, ValueError) as exc:
            raise RunError(f"system {system_name!r} cannot run: {exc}") from None
        query = (
            select(Case)
            .where(Case.benchmark_id == benchmark.id, Case.split == split)
            .order_by(Case.id)
        )
        if limit is not None:
            query = query.limit(limit)
        cases = list(session.scalars(query))
        if not cases:
            raise RunError(f"benchmark {benchmark_name!r} has no {split} cases")
        print_ = fingerprint(spec, prompt)
        input_hashes = {case.id: case_input_hash(case) for case in cases}
        cached_ids = {
            case_id
            for case_id, input_hash in session.execute(
                select(Generation.case_id, Generation.input_hash).where(
                    Generation.system_fingerprint == print_,
                    Generation.prompt_hash == prompt.hash,
                    Generation.case_id.in_(list(input_hashes)),
                )
            )
            # A report made for what the case held before an edit is not this case's report.
            if input_hash is not None and input_hash == input_hashes[case_id]
        }
        return _Plan(
            benchmark_id=benchmark.id,
            benchmark_root=benchmark.root,
            task=benchmark.task,
            system_id=system.id,
            spec=spec,
            prompt=prompt,
            fingerprint=print_,
            cases=cases,
            input_hashes=input_hashes,
            cached_ids=cached_ids,
        )


def close_abandoned_runs(store: Store) -> int:
    """Mark runs whose process on this host is gone (killed, crashed) as failed.

    Their finished chunks stay cached; the next run resumes from them. Returns the count.
    """
    with store.session() as session:
        return close_abandoned(
            session.scalars(select(Run).where(Run.status == "running")),
            # rows written before the owner moved under "process" kept host and pid on top
            lambda run: (run.settings or {}).get("process") or run.settings,
            lambda pid: (
                f"the process (pid {pid}) stopped (killed or crashed) before the run finished"
            ),
        )


def _finish(store: Store, run_id: int, status: str, n_done: int, error: str | None) -> None:
    with store.session() as session:
        run = session.get(Run, run_id)
        if run is not None:
            run.status = status
            run.n_done = n_done
            run.error = error
            run.finished_at = utcnow()


def run_system(
    store: Store,
    benchmark_name: str,
    system_name: str,
    split: str = "test",
    limit: int | None = None,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
) -> RunReport:
    """Run one system over one benchmark split, generating only what the cache lacks.

    progress(n_done, n_cases) is called once at the start (cached cases count as done) and
    after every committed chunk; cancel() is checked before every chunk. Raises RunError
    (writing nothing) when the run cannot start. An exception during generation, from the
    progress callback, or a KeyboardInterrupt marks the run failed or cancelled, keeps the
    committed chunks, and is raised again.
    """
    started = time.perf_counter()
    plan = _plan(store, benchmark_name, system_name, split, limit)
    missing = [case for case in plan.cases if case.id not in plan.cached_ids]
    # Media problems surface before anything is written.
    requests = [_case_request(plan.benchmark_root, case) for case in missing]
    train = None
    if missing and kind_of(plan.spec.kind).learns_from_train:
        train = train_examples(store, benchmark_name)
        if not train:
            raise RunError(
                f"the {plan.spec.kind} baseline needs the train split of {benchmark_name!r}, "
                "which has no cases with a reference report"
            )

    n_cases = len(plan.cases)
    n_cached = n_cases - len(missing)
    close_abandoned_runs(store)
    with store.session() as session:
        run = Run(
            system_id=plan.system_id,
            benchmark_id=plan.benchmark_id,
            split=split,
            status="running",
            n_cases=n_cases,
            n_done=n_cached,
            settings={
                "fingerprint": plan.fingerprint,
                "prompt": plan.prompt.name,
                "prompt_version": plan.prompt.version,
                "prompt_hash": plan.prompt.hash,
                "limit": limit,
                "spec": plan.spec.to_dict(),
                "n_cached_at_start": n_cached,
                # Who runs it, so a later run can tell a killed run from a live one.
                "process": job_owner(),
            },
            started_at=utcnow(),
        )
        session.add(run)
        session.flush()
        run_id = run.id

    def report(status: str, generated: int, error: str | None = None) -> RunReport:
        return RunReport(
            run_id=run_id,
            system=system_name,
            benchmark=benchmark_name,
            split=split,
            status=status,
            n_cases=n_cases,
            n_cached=n_cached,
            n_generated=generated,
            fingerprint=plan.fingerprint,
            prompt_hash=plan.prompt.hash,
            seconds=time.perf_counter() - started,
            error=error,
        )

    generated = 0
    done = n_cached
    try:
        if progress:
            progress(done, n_cases)
        if missing:
            generator = build_generator(plan.spec, train)
        chunk_size = plan.spec.batch_size
        for start in range(0, len(missing), chunk_size):
            if cancel is not None and cancel():
                _finish(store, run_id, "cancelled", done, None)
                return report("cancelled", generated)
            chunk = missing[start : start + chunk_size]
            results = generator.generate(requests[start : start + chunk_size], plan.prompt)
            if len(results) != len(chunk):
                raise RuntimeError(
                    f"the generator returned {len(results)} reports for {len(chunk)} requests"
                )
            rows = [
                _generation_row(plan, run_id, case, result)
                for case, result in zip(chunk, results, strict=True)
            ]
            with store.session() as session:
                generated += _insert_ignoring_duplicates(session, rows)
                done += len(chunk)
                session.get(Run, run_id).n_done = done
            if progress:
                progress(done, n_cases)
    except KeyboardInterrupt:
        _finish(store, run_id, "cancelled", done, "interrupted")
        raise
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
        _finish(store, run_id, "failed", done, message + "\n" + traceback.format_exc(limit=5))
        raise
    _finish(store, run_id, "done", done, None)
    return report("done", generated)


def _generation_row(plan: _Plan, run_id: int, case: Case, result: ReportResult) -> dict[str, Any]:
    return {
        "system_fingerprint": plan.fingerprint,
        "system_id": plan.system_id,
        "case_id": case.id,
        "prompt_hash": plan.prompt.hash,
        "input_hash": plan.input_hashes[case.id],
        "run_id": run_id,
        "text": result.text,
        "latency_s": result.latency_s,
        "prompt_tokens": result.prompt_tokens,
        "output_tokens": result.output_tokens,
        "device": result.device,
        # Through JSON so numpy numbers or paths in a generator's meta cannot break the insert.
        "meta": json.loads(json.dumps(result.meta or {}, default=str)),
        "created_at": utcnow(),
    }


# --- reading runs and outputs ---------------------------------------------------------


@dataclass
class RunInfo:
    id: int
    system: str
    benchmark: str
    split: str
    status: str
    n_cases: int
    n_done: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


def list_runs(store: Store, limit: int = 50) -> list[RunInfo]:
    """The newest runs first."""
    with store.session() as session:
        rows = session.execute(
            select(Run, System.name, Benchmark.name)
            .join(System, Run.system_id == System.id)
            .join(Benchmark, Run.benchmark_id == Benchmark.id)
            .order_by(Run.id.desc())
            .limit(limit)
        ).all()
        return [
            RunInfo(
                id=run.id,
                system=system,
                benchmark=benchmark,
                split=run.split,
                status=run.status,
                n_cases=run.n_cases,
                n_done=run.n_done,
                error=run.error,
                started_at=run.started_at,
                finished_at=run.finished_at,
            )
            for run, system, benchmark in rows
        ]


@dataclass
class CaseOutput:
    """One system's report on one case."""

    system: str
    kind: str
    text: str
    current: bool  # made by the system's present definition (not an older fingerprint)
    latency_s: float | None
    output_tokens: int | None
    device: str | None
    created_at: datetime | None
    meta: dict[str, Any] = field(default_factory=dict)


def case_outputs(store: Store, case_id: int) -> list[CaseOutput]:
    """Every system's report on a case, one per system, by system name: the newest made for
    what the case holds now, else the newest (then not `current`)."""
    with store.session() as session:
        case = session.get(Case, case_id)
        if case is None:
            raise RunError(f"no case with id {case_id}")
        task = case.benchmark.task
        input_hash = case_input_hash(case)
        rows = session.execute(
            select(Generation, System)
            .join(System, Generation.system_id == System.id)
            .where(Generation.case_id == case_id)
            .order_by(System.name, Generation.id.desc())
        ).all()
        chosen: dict[str, tuple[Generation, System]] = {}
        for generation, system in rows:
            held = chosen.get(system.name)
            # A report of this content beats a newer one made before the case changed back.
            if held is None or (
                held[0].input_hash != input_hash and generation.input_hash == input_hash
            ):
                chosen[system.name] = (generation, system)
        outputs: list[CaseOutput] = []
        for generation, system in chosen.values():
            try:
                spec = SystemSpec.from_dict(dict(system.config))
                current_print = fingerprint(spec, prompt_for(spec, task))
            except (ValueError, OSError):
                current_print = ""
            outputs.append(
                CaseOutput(
                    system=system.name,
                    kind=system.kind,
                    text=generation.text,
                    current=generation.system_fingerprint == current_print
                    and generation.input_hash == input_hash,
                    latency_s=generation.latency_s,
                    output_tokens=generation.output_tokens,
                    device=generation.device,
                    created_at=generation.created_at,
                    meta=dict(generation.meta or {}),
                )
            )
        return outputs


def generation_count(store: Store, system_name: str | None = None) -> int:
    """How many generations the cache holds (of one system, when named)."""
    with store.session() as session:
        query = select(func.count()).select_from(Generation)
        if system_name is not None:
            query = query.join(System, Generation.system_id == System.id).where(
                System.name == system_name
            )
        return session.scalar(query) or 0


# --- runs in a background thread (the app) ---------------------------------------------


@dataclass
class RunJob:
    """Several systems run one after another in a thread; the app polls its state."""

    benchmark: str
    systems: list[str]
    split: str
    limit: int | None
    current: str | None = None
    done: int = 0
    total: int = 0
    reports: list[RunReport] = field(default_factory=list)
    error: str | None = None
    finished: bool = False
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def cancel(self) -> None:
        """Stop after the chunk in flight; what is done stays cached."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _work(self, store: Store) -> None:
        errors: list[str] = []
        try:
            for name in self.systems:
                if self._cancel.is_set():
                    break
                self.current, self.done, self.total = name, 0, 0
                try:
                    report = run_system(
                        store,
                        self.benchmark,
                        name,
                        split=self.split,
                        limit=self.limit,
                        progress=self._progress,
                        cancel=self._cancel.is_set,
                    )
                except Exception as exc:  # shown on the page; the run row holds the details
                    # One system failing does not stop the others.
                    errors.append(f"{name}: {exc}")
                else:
                    self.reports.append(report)
        finally:
            self.error = "; ".join(errors) or None
            self.finished = True


def start_run_job(
    store: Store,
    benchmark_name: str,
    system_names: Sequence[str],
    split: str = "test",
    limit: int | None = None,
) -> RunJob:
    """Start running `system_names` on a benchmark split in a background thread."""
    if not system_names:
        raise RunError("pick at least one system")
    job = RunJob(benchmark=benchmark_name, systems=list(system_names), split=split, limit=limit)
    job._thread = threading.Thread(target=job._work, args=(store,), daemon=True)
    job._thread.start()
    return job
