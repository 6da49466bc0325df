"""Training jobs: LoRA SFT / DPO runs recorded as TrainingJob rows, adapters registered as systems.

A job row holds the full configuration (model, data, settings), a loss log appended at every
logging step (so the app can draw the curve while it runs), the result (final losses, reward
accuracy, data hash) and the system the new adapter was registered as. That system (kind vlm,
same base model, the new adapter) can be run on benchmarks, ranked on the leaderboard and put
into the next reader study.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from model.kinds import kinds_where
from model.prompts import prompt_for_task
from model.spec import SystemSpec
from model.training import (
    DPOSettings,
    SFTExample,
    SFTSettings,
    TrainingDataError,
    TrainingResult,
    load_preference_dataset,
    train_dpo,
    train_sft,
)
from studies.store.db import Store
from studies.store.media import MediaPathError, resolve_media
from studies.store.schema import Benchmark, Case, System, TrainingJob, utcnow
from studies.systems.jobs import close_abandoned, job_owner
from studies.systems.registry import SystemConfigError, SystemInfo, get_system, register_system

Progress = Callable[[int, int, dict[str, Any]], None]
# Log keys worth keeping per step (TRL logs more; the rest stays in the trainer's own output).
LOG_KEYS = (
    "step",
    "epoch",
    "loss",
    "learning_rate",
    "grad_norm",
    "rewards/accuracies",
    "rewards/margins",
    "rewards/chosen",
    "rewards/rejected",
    "mean_token_accuracy",
    "eval_loss",
    "eval_rewards/accuracies",
    "eval_rewards/margins",
    "train_loss",
    "train_runtime",
)


class TrainingJobError(ValueError):
    """A training job that cannot start; the message names what to fix."""


@dataclass
class TrainingJobInfo:
    id: int
    kind: str
    status: str  # pending | running | done | failed
    config: dict[str, Any]
    output_dir: str
    log: list[dict[str, Any]]
    result: dict[str, Any]
    system_id: int | None
    system_name: str | None
    error: str | None
    created_at: datetime | None
    finished_at: datetime | None

    @property
    def losses(self) -> list[tuple[int, float]]:
        return [(e["step"], e["loss"]) for e in self.log if e.get("loss") is not None]


def _info(row: TrainingJob, system_name: str | None) -> TrainingJobInfo:
    return TrainingJobInfo(
        id=row.id,
        kind=row.kind,
        status=row.status,
        config=dict(row.config),
        output_dir=row.output_dir,
        log=list(row.log or []),
        result=dict(row.result or {}),
        system_id=row.system_id,
        system_name=system_name,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def close_abandoned_jobs(store: Store) -> int:
    """Mark running jobs whose process on this host is gone (killed, crashed) as failed."""
    with store.session() as session:
        return close_abandoned(
            session.scalars(select(TrainingJob).where(TrainingJob.status == "running")),
            lambda row: row.config.get("process"),
            lambda pid: f"the training process (pid {pid}) stopped before the job finished",
        )


def list_training_jobs(store: Store, limit: int = 50) -> list[TrainingJobInfo]:
    """Newest first; running jobs whose process is gone are closed as failed first."""
    close_abandoned_jobs(store)
    with store.session() as session:
        rows = session.execute(
            select(TrainingJob, System.name)
            .outerjoin(System, System.id == TrainingJob.system_id)
            .order_by(TrainingJob.id.desc())
            .limit(limit)
        ).all()
        return [_info(row, name) for row, name in rows]


def get_training_job(store: Store, job_id: int) -> TrainingJobInfo:
    with store.session() as session:
        row = session.get(TrainingJob, job_id)
        if row is None:
            raise TrainingJobError(f"no training job with id {job_id}")
        name = session.get(System, row.system_id).name if row.system_id else None
        return _info(row, name)


# --- data -----------------------------------------------------------------------------


def sft_examples(
    store: Store, benchmark_name: str, split: str = "train"
) -> tuple[list[SFTExample], dict[str, Any]]:
    """(examples, info) for SFT from a benchmark split: image cases with a reference text."""
    with store.session() as session:
        benchmark = session.scalar(select(Benchmark).where(Benchmark.name == benchmark_name))
        if benchmark is None:
            known = sorted(session.scalars(select(Benchmark.name)).all())
            raise TrainingJobError(
                f"unknown benchmark {benchmark_name!r}; imported: {', '.join(known) or 'none'}"
            )
        cases = session.scalars(
            select(Case)
            .where(Case.benchmark_id == benchmark.id, Case.split == split)
            .order_by(Case.id)
        ).all()
        examples: list[SFTExample] = []
        skipped = {"no_reference": 0, "not_an_image_case": 0}
        for case in cases:
            if not case.references:
                skipped["no_reference"] += 1
                continue
            if case.modality != "image":
                skipped["not_an_image_case"] += 1
                continue
            images = []
            for entry in case.media:
                try:
                    images.append(resolve_media(benchmark.root, entry["path"]))
                except MediaPathError as exc:
                    raise TrainingJobError(f"case {case.case_key!r}: {exc}") from None
            examples.append(
                SFTExample(
                    images=images,
                    response=case.references[0],
                    question=case.question,
                    key=case.case_key,
                )
            )
        info = {
            "benchmark": benchmark.name,
            "split": split,
            "task": benchmark.task,
            "synthetic": benchmark.synthetic,
            "n_cases": len(cases),
            "skipped": skipped,
        }
    return examples, info


def preference_exports(folder: str | Path) -> list[Path]:
    """Preference exports (folders with an export.json) directly under `folder`, newest first."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and (p / "export.json").is_file()]
    return sorted(found, key=lambda p: ((p / "export.json").stat().st_mtime, p.name), reverse=True)


def base_model_choices(store: Store, default: str) -> list[str]:
    """Base models to train from: those of registered model systems (newest first), then
    `default`; an adapter is trained on the model the evaluated systems already use."""
    with store.session() as session:
        rows = session.scalars(select(System).order_by(System.id.desc())).all()
        models = [
            str((row.config or {}).get("model") or "")
            for row in rows
            if row.kind in kinds_where(needs_model=True)
        ]
    ordered: list[str] = []
    for model in [*models, default]:
        if model and model not in ordered:
            ordered.append(model)
    return ordered


# --- jobs -----------------------------------------------------------------------------


def _check_model_dir(model_dir: str | Path) -> str:
    """A local model folder (made absolute) or a hub id such as Qwen/Qwen3-VL-8B-Instruct."""
    text = str(model_dir)
    folder = Path(text).expanduser()
    is_hub_id = (
        not folder.exists()
        and not text.startswith(("/", ".", "~"))
        and re.fullmatch(r"[\w.-]+/[\w.-]+", text) is not None
    )
    if is_hub_id:
        return text  # resolved by transformers (its cache, or the hub when online)
    if not (folder / "config.json").is_file():
        raise TrainingJobError(
            f"model folder {text!r} has no config.json; give a local Hugging Face model "
            "folder or a hub id"
        )
    return str(folder.resolve())


def _check_out_dir(out_dir: str | Path) -> str:
    folder = Path(out_dir).expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise TrainingJobError(f"output folder {folder} exists and is not empty; choose a new one")
    return str(folder)


def _check_system_name(store: Store, name: str) -> None:
    if not name.strip():
        raise TrainingJobError("the new system needs a non-empty name")
    with store.session() as session:
        if session.scalar(select(System.id).where(System.name == name)) is not None:
            raise TrainingJobError(
                f"a system named {name!r} already exists; choose another --system-name"
            )


def _like_spec(store: Store, like_system: str | None) -> SystemSpec | None:
    if like_system is None:
        return None
    try:
        spec = get_system(store, like_system).spec
    except SystemConfigError as exc:
        raise TrainingJobError(str(exc)) from None
    if spec.kind not in kinds_where(needs_model=True):
        raise TrainingJobError(f"--like {like_system!r} is a {spec.kind} system, not a vlm")
    return spec


def register_adapter_system(
    store: Store,
    name: str,
    model_dir: str | Path,
    adapter_dir: str | Path,
    like: SystemSpec | None = None,
    description: str = "",
) -> SystemInfo:
    """Register a trained adapter as a vlm system (decoding settings copied from `like`)."""
    data = like.to_dict() if like is not None else {}
    data.update({"kind": "vlm", "model": str(model_dir), "adapter": str(adapter_dir)})
    data["merge_adapter"] = False
    spec = SystemSpec.from_dict(data)
    try:
        info, _created = register_system(store, name, spec, description=description)
    except SystemConfigError as exc:
        raise TrainingJobError(str(exc)) from None
    return info


def _create_job(store: Store, kind: str, config: dict[str, Any], output_dir: str) -> int:
    config = config | {"process": job_owner()}
    with store.session() as session:
        row = TrainingJob(kind=kind, status="running", config=config, output_dir=output_dir, log=[])
        session.add(row)
        session.flush()
        return row.id


def _recorder(store: Store, job_id: int, progress: Progress | None) -> Progress:
    def record(step: int, total: int, logs: dict[str, Any]) -> None:
        entry = {k: logs[k] for k in LOG_KEYS if k in logs}
        entry["step"] = step
        entry["total_steps"] = total
        with store.session() as session:
            row = session.get(TrainingJob, job_id)
            # A new list: SQLAlchemy only notices a JSON column change on assignment.
            row.log = [*(row.log or []), entry]
        if progress is not None:
            progress(step, total, logs)

    return record


def _run(
    store: Store,
    job_id: int,
    train: Callable[[Progress], TrainingResult],
    system_name: str,
    model_dir: str,
    like: SystemSpec | None,
    progress: Progress | None,
) -> TrainingJobInfo:
    try:
        result = train(_recorder(store, job_id, progress))
        card = result.card
        description = (
            f"LoRA {result.kind.upper()} adapter trained by job {job_id} "
            f"(data sha256 {result.data_hash[:12]}, {result.n_train} examples, "
            f"{result.steps} steps)."
        )
        if card.get("data", {}).get("synthetic"):
            description += " Trained on synthetic data."
        system = register_adapter_system(
            store, system_name, model_dir, result.adapter_dir, like, description
        )
    except BaseException as exc:
        with store.session() as session:
            row = session.get(TrainingJob, job_id)
            row.status = "failed"
            row.error = f"{type(exc).__name__}: {exc}"
            row.finished_at = utcnow()
            row.result = {"traceback": traceback.format_exc(limit=8)}
        raise
    summary = {k: v for k, v in result.to_dict().items() if k not in ("log", "card")}
    with store.session() as session:
        row = session.get(TrainingJob, job_id)
        row.status = "done"
        row.result = json.loads(json.dumps(summary, default=str))
        row.system_id = system.id
        row.finished_at = utcnow()
    return get_training_job(store, job_id)


def _check_job_inputs(
    store: Store,
    settings: Any,
    model_dir: Path | str,
    out_dir: Path | str,
    system_name: str | None,
    like_system: str | None,
) -> tuple[Any, Any, str, Any]:
    """The checks every training job makes before its row is written (TrainingJobError)."""
    try:
        settings.validate()
    except ValueError as exc:
        raise TrainingJobError(str(exc)) from None
    model = _check_model_dir(model_dir)
    out = _check_out_dir(out_dir)
    name = system_name or Path(out).name
    _check_system_name(store, name)
    return model, out, name, _like_spec(store, like_system)


def run_sft_job(
    store: Store,
    benchmark: str,
    model_dir: str | Path,
    out_dir: str | Path,
    settings: SFTSettings | None = None,
    system_name: str | None = None,
    split: str = "train",
    validation_split: str | None = None,
    like_system: str | None = None,
    progress: Progress | None = None,
    background: bool = False,
) -> TrainingJobInfo:
    """LoRA SFT on a benchmark split, recorded as a job; the adapter becomes a new system.

    Everything a user can get wrong is checked before the job row is written
    (TrainingJobError). `like_system` copies decoding settings (max_new_tokens, prompt, ...)
    of an existing vlm system into the new one. With `background` the call returns at once
    with the running job; training goes on in a thread.
    """
    settings = settings or SFTSettings()
    model, out, name, like = _check_job_inputs(
        store, settings, model_dir, out_dir, system_name, like_system
    )
    examples, info = sft_examples(store, benchmark, split)
    if not examples:
        raise TrainingJobError(
            f"benchmark {benchmark!r} split {split!r} has no image cases with a reference "
            f"report to train on (skipped: {info['skipped']})"
        )
    validation = None
    if validation_split:
        validation, _ = sft_examples(store, benchmark, validation_split)
    template = prompt_for_task(info["task"])
    config = {
        "kind": "sft",
        "model": model,
        "data": info | {"validation_split": validation_split, "n_examples": len(examples)},
        "prompt": template.name,
        "settings": settings.to_dict(),
        "system_name": name,
        "like_system": like_system,
    }
    job_id = _create_job(store, "sft", config, out)
    return _launch(
        store,
        job_id,
        lambda record: train_sft(
            model,
            examples,
            settings,
            out,
            record,
            validation=validation,
            template=template,
            data_source=f"benchmark {benchmark} split {split}",
            synthetic=bool(info["synthetic"]),
        ),
        name,
        model,
        like,
        progress,
        background,
    )


def run_dpo_job(
    store: Store,
    prefs: str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    settings: DPOSettings | None = None,
    system_name: str | None = None,
    init_adapter: str | Path | None = None,
    like_system: str | None = None,
    progress: Progress | None = None,
    background: bool = False,
) -> TrainingJobInfo:
    """DPO on a preference export, recorded as a job; the adapter becomes a new system.

    Checks and `like_system` / `background` as in `run_sft_job`. With `init_adapter` (e.g. an
    SFT adapter) training continues from it and it is the frozen reference.
    """
    settings = settings or DPOSettings()
    model, out, name, like = _check_job_inputs(
        store, settings, model_dir, out_dir, system_name, like_system
    )
    prefs_path = Path(prefs).expanduser().resolve()
    try:
        train_rows = load_preference_dataset(prefs_path, "train")
    except TrainingDataError as exc:
        raise TrainingJobError(str(exc)) from None
    if train_rows is None or len(train_rows) == 0:
        raise TrainingJobError(f"{prefs_path}: the train split has no preference pairs")
    if init_adapter is not None and not (Path(init_adapter) / "adapter_config.json").is_file():
        raise TrainingJobError(f"--init-adapter {str(init_adapter)!r} is not a peft adapter folder")
    manifest_path = prefs_path / "export.json"
    manifest = (
        json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    )
    config = {
        "kind": "dpo",
        "model": model,
        "data": {
            "prefs": str(prefs_path),
            "study": manifest.get("study"),
            "export_data_hash": manifest.get("data_hash"),
            "synthetic": manifest.get("synthetic"),
            "n_train": len(train_rows),
        },
        "init_adapter": str(init_adapter) if init_adapter else None,
        "settings": settings.to_dict(),
        "system_name": name,
        "like_system": like_system,
    }
    job_id = _create_job(store, "dpo", config, out)
    return _launch(
        store,
        job_id,
        lambda record: train_dpo(model, prefs_path, settings, out, record, init_adapter),
        name,
        model,
        like,
        progress,
        background,
    )


def _launch(
    store: Store,
    job_id: int,
    train: Callable[[Progress], TrainingResult],
    system_name: str,
    model_dir: str,
    like: SystemSpec | None,
    progress: Progress | None,
    background: bool,
) -> TrainingJobInfo:
    """Train now, or in a daemon thread (the app polls the job row) when `background`."""
    if not background:
        return _run(store, job_id, train, system_name, model_dir, like, progress)

    def body() -> None:
        try:
            _run(store, job_id, train, system_name, model_dir, like, progress)
        except Exception:  # noqa: BLE001 - the failure is recorded on the job row
            pass

    threading.Thread(target=body, name=f"training-job-{job_id}", daemon=True).start()
    return get_training_job(store, job_id)
