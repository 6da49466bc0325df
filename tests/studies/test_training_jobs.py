"""Training jobs in the store: loss log, result, the adapter registered as a system."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from model.prompts import COLONOSCOPY_REPORT
from model.spec import SystemSpec
from model.training import DPOSettings, SFTSettings, assistant_message, prompt_messages
from studies.benchmarks.importer import import_benchmark
from studies.store.db import Store
from studies.store.schema import TrainingJob
from studies.systems.registry import get_system, register_system
from studies.systems.training_jobs import (
    TrainingJobError,
    get_training_job,
    list_training_jobs,
    run_dpo_job,
    run_sft_job,
)


def write_prefs(folder: Path, n: int = 4) -> Path:
    """A JSONL preference folder (images relative to it), as an export would hold."""
    (folder / "images").mkdir(parents=True)
    with (folder / "train.jsonl").open("w") as handle:
        for index in range(n):
            pixels = np.random.default_rng(index).integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "images" / f"{index}.png")
            row = {
                "prompt": prompt_messages(COLONOSCOPY_REPORT, 1),
                "chosen": assistant_message("Findings: sessile polyp 6 mm in the sigmoid colon."),
                "rejected": assistant_message("Normal mucosa."),
                "images": [f"images/{index}.png"],
                "provenance": {"case_key": f"case{index}", "source": "human"},
            }
            handle.write(json.dumps(row) + "\n")
    return folder


def _n_jobs(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(TrainingJob))


def test_dpo_job_logs_losses_and_registers_the_adapter(
    sqlite_store: Store, tmp_path: Path, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    register_system(
        sqlite_store,
        "tiny-lora",
        SystemSpec(
            kind="vlm", model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), max_new_tokens=12
        ),
    )
    seen = []
    job = run_dpo_job(
        sqlite_store,
        write_prefs(tmp_path / "prefs"),
        tiny_model_dir,
        tmp_path / "adapter",
        DPOSettings(max_steps=3, batch_size=2, learning_rate=1e-3),
        system_name="tiny-dpo",
        like_system="tiny-lora",
        progress=lambda step, total, logs: seen.append(step),
    )
    assert job.status == "done" and job.error is None
    assert [step for step, _loss in job.losses] == [1, 2, 3] == seen[:3]
    assert all(math.isfinite(loss) for _step, loss in job.losses)
    assert job.result["steps"] == 3 and job.result["reward_accuracy"] is not None
    assert job.config["data"]["n_train"] == 4 and job.config["settings"]["max_steps"] == 3
    system = get_system(sqlite_store, "tiny-dpo")
    assert system.id == job.system_id and system.kind == "vlm"
    spec = system.spec
    assert spec.adapter == str((tmp_path / "adapter").resolve())
    assert spec.model == str(tiny_model_dir.resolve())
    assert spec.max_new_tokens == 12  # copied from --like
    assert "LoRA DPO adapter" in system.description
    assert (tmp_path / "adapter" / "training_card.json").is_file()
    assert [j.id for j in list_training_jobs(sqlite_store)] == [job.id]


def test_sft_job_on_a_benchmark_train_split(
    sqlite_store: Store, tmp_path: Path, tiny_model_dir: Path
) -> None:
    import_benchmark(
        sqlite_store, "synthetic-colon", tmp_path / "bench", options={"n_images": 8, "n_videos": 1}
    )
    job = run_sft_job(
        sqlite_store,
        "synthetic-colon",
        tiny_model_dir,
        tmp_path / "sft",
        SFTSettings(max_steps=2, learning_rate=1e-3),
    )
    assert job.status == "done" and len(job.losses) == 2
    assert job.config["data"]["synthetic"] is True and job.config["data"]["n_examples"] >= 1
    system = get_system(sqlite_store, "sft")  # named after the output folder
    assert "synthetic data" in system.description
    card = json.loads((tmp_path / "sft" / "training_card.json").read_text())
    assert card["data"]["synthetic"] is True and card["kind"] == "sft"


def test_bad_requests_write_nothing(
    store: Store, tmp_path: Path, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    prefs = write_prefs(tmp_path / "prefs")
    with pytest.raises(TrainingJobError, match="has no config.json"):
        run_dpo_job(store, prefs, tmp_path / "nope", tmp_path / "a")
    with pytest.raises(TrainingJobError, match="preference data not found"):
        run_dpo_job(store, tmp_path / "missing", tiny_model_dir, tmp_path / "a")
    with pytest.raises(TrainingJobError, match="exists and is not empty"):
        run_dpo_job(store, prefs, tiny_model_dir, prefs)
    register_system(store, "taken", SystemSpec(kind="reference"))
    with pytest.raises(TrainingJobError, match="'taken' already exists"):
        run_dpo_job(store, prefs, tiny_model_dir, tmp_path / "a", system_name="taken")
    with pytest.raises(TrainingJobError, match="unknown benchmark 'ghost'"):
        run_sft_job(store, "ghost", tiny_model_dir, tmp_path / "a")
    with pytest.raises(TrainingJobError, match="unknown DPO loss_type"):
        run_dpo_job(store, prefs, tiny_model_dir, tmp_path / "a", DPOSettings(loss_type="x"))
    with pytest.raises(TrainingJobError, match="reference system, not a vlm"):
        run_dpo_job(store, prefs, tiny_model_dir, tmp_path / "a", like_system="taken")
    assert _n_jobs(store) == 0
    assert not (tmp_path / "a").exists()


def test_a_failing_job_is_recorded_as_failed(
    sqlite_store: Store, tmp_path: Path, tiny_model_dir: Path, tiny_adapter_dir: Path
) -> None:
    broken = tmp_path / "broken-adapter"
    broken.mkdir()
    shutil.copy(tiny_adapter_dir / "adapter_config.json", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(Exception):  # noqa: B017 - whatever peft raises, the row must say it
        run_dpo_job(
            sqlite_store,
            write_prefs(tmp_path / "prefs"),
            tiny_model_dir,
            tmp_path / "adapter",
            DPOSettings(max_steps=1),
            init_adapter=broken,
        )
    (job,) = list_training_jobs(sqlite_store)
    assert job.status == "failed" and job.error and job.system_id is None
    assert get_training_job(sqlite_store, job.id).finished_at is not None


def test_a_job_whose_process_died_is_closed(store: Store) -> None:
    import socket
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)
    with store.session() as session:
        for pid in (dead_pid, os.getpid()):
            session.add(
                TrainingJob(
                    kind="dpo",
                    status="running",
                    config={"process": {"host": socket.gethostname(), "pid": pid}},
                    output_dir=f"/tmp/job-{pid}",
                )
            )
    jobs = {j.output_dir: j for j in list_training_jobs(store)}
    dead = jobs[f"/tmp/job-{dead_pid}"]
    assert dead.status == "failed" and str(dead_pid) in dead.error
    assert jobs[f"/tmp/job-{os.getpid()}"].status == "running"
