"""Training: LoRA SFT / DPO jobs, running and finished, with loss curves; start a new job."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from model.kinds import kinds_where
from model.training.settings import DPO_LOSS_TYPES, DPOSettings, LoraSettings, SFTSettings
from studies.store.media import MediaPathError, path_inside
from studies.store.settings import get_settings
from studies.systems.catalog import benchmark_summaries
from studies.systems.registry import list_systems
from studies.systems.training_jobs import (
    TrainingJobError,
    TrainingJobInfo,
    base_model_choices,
    list_training_jobs,
    preference_exports,
    run_dpo_job,
    run_sft_job,
)
from workbench import access
from workbench.ui import disclaimer, store

st.title("Training")
access.require_role("admin")
disclaimer()
st.caption(
    "LoRA fine-tuning with TRL: SFT on a benchmark's train split, DPO on exported preference "
    "pairs. Each adapter gets a training card and is registered as a new system."
)
workbench_store = store()
settings = get_settings()


def _loss_frame(job: TrainingJobInfo) -> pd.DataFrame:
    rows = [
        {"step": e["step"], "loss": e["loss"]}
        for e in job.log
        if isinstance(e.get("loss"), (int, float))
    ]
    return pd.DataFrame(rows)


def _data_line(job: TrainingJobInfo) -> str:
    """What the job trained on, in words (the full record stays in the job's config)."""
    data = job.config.get("data") or {}
    if not isinstance(data, dict):
        return f"data {data}"
    if job.kind == "dpo":
        study = f" of study {data['study']}" if data.get("study") else ""
        return f"preference export `{data.get('prefs')}`{study} ({data.get('n_train')} train pairs)"
    return (
        f"benchmark {data.get('benchmark')}, split {data.get('split')} "
        f"({data.get('n_examples')} examples)"
    )


def _job_panel(job: TrainingJobInfo) -> None:
    title = f"Job {job.id}: {job.kind.upper()} · {job.status}"
    if job.system_name:
        title += f" · system {job.system_name}"
    synthetic = bool((job.config.get("data") or {}).get("synthetic"))
    if synthetic:
        title += " · SYNTHETIC data"
    with st.expander(title, expanded=job.status == "running"):
        frame = _loss_frame(job)
        if len(frame):
            st.line_chart(frame, x="step", y="loss", height=220)
        else:
            st.caption("No loss logged yet.")
        if job.status == "running" and job.log:
            last = job.log[-1]
            total = last.get("total_steps") or 0
            if total:
                st.progress(min(1.0, last["step"] / total), text=f"step {last['step']}/{total}")
        result = job.result
        if job.status == "done":
            st.write(
                {
                    "steps": result.get("steps"),
                    "final loss": result.get("final_loss"),
                    "reward accuracy": result.get("reward_accuracy"),
                    "validation": result.get("eval_metrics"),
                    "data sha256": result.get("data_hash"),
                    "adapter": job.output_dir,
                }
            )
        if job.error:
            st.error(job.error)
        st.caption(f"Model `{job.config.get('model')}` · {_data_line(job)}")
        if synthetic:
            st.caption(":material/science: Trained on SYNTHETIC data, not patients.")


RUNNING_KEY = "training_running_ids"


@st.fragment(run_every=2.0)
def running_jobs() -> None:
    jobs = [j for j in list_training_jobs(workbench_store) if j.status == "running"]
    ids = {j.id for j in jobs}
    seen = st.session_state.get(RUNNING_KEY, set())
    st.session_state[RUNNING_KEY] = ids
    if seen - ids:
        # A job finished: redraw the whole page so it moves to Finished (and its system shows).
        st.rerun(scope="app")
    for job in jobs:
        _job_panel(job)
    if not jobs:
        st.caption("No job is running.")


st.subheader("Running")
running_jobs()

st.subheader("Finished")
finished = [j for j in list_training_jobs(workbench_store) if j.status != "running"]
if finished:
    for job in finished:
        _job_panel(job)
else:
    st.caption("No finished training jobs yet.")

st.subheader("Start a job")
kind = st.radio("Kind", ["DPO", "SFT"], horizontal=True, key="train_kind")
stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
models = base_model_choices(workbench_store, settings.model)
DEFAULTS = "workbench defaults"
# Newest first, like the base models: the default copies the system the default model came from.
model_systems = sorted(
    (s for s in list_systems(workbench_store) if s.kind in kinds_where(needs_model=True)),
    key=lambda s: s.id,
    reverse=True,
)
exports = preference_exports(settings.data_dir / "preferences")
if kind == "DPO" and not exports:
    st.info(
        "No preference export yet: export pairs on the Preferences page first "
        "(or give the folder of an export made elsewhere below)."
    )
with st.form("train_form"):
    model_dir = st.text_input(
        "Base model (local folder or hub id)",
        models[0],
        key="train_model",
        help="Models of the registered systems: " + ", ".join(f"`{m}`" for m in models),
    )
    if kind == "DPO":
        prefs = st.text_input(
            "Preference export folder",
            str(exports[0] if exports else settings.data_dir / "preferences"),
            key="train_prefs",
            help="Default: the newest export under the data folder.",
        )
        init_adapter = st.text_input("Start from adapter (optional)", "", key="train_init")
        left, right = st.columns(2)
        beta = left.number_input("beta", 0.001, 10.0, 0.1, key="train_beta")
        loss_type = right.selectbox("Loss", list(DPO_LOSS_TYPES), key="train_loss_type")
        default_lr = DPOSettings().learning_rate
    else:
        names = [b.name for b in benchmark_summaries(workbench_store)]
        benchmark = st.selectbox("Benchmark (train split)", names, key="train_benchmark")
        default_lr = SFTSettings().learning_rate
    left, middle, right = st.columns(3)
    learning_rate = left.number_input(
        "Learning rate", 1e-8, 1.0, default_lr, format="%.2e", key="train_lr"
    )
    epochs = middle.number_input("Epochs", 0.1, 100.0, 1.0, key="train_epochs")
    max_steps = right.number_input("Max steps (0 = by epochs)", 0, 10**7, 0, key="train_steps")
    batch_size = left.number_input("Batch size", 1, 512, 1, key="train_batch")
    accumulation = middle.number_input("Gradient accumulation", 1, 512, 1, key="train_accum")
    rank = right.number_input("LoRA rank", 1, 512, 16, key="train_rank")
    checkpointing = left.checkbox("Gradient checkpointing", key="train_ckpt")
    seed = middle.number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
    out_dir = st.text_input(
        "Adapter output folder",
        str(settings.data_dir / "adapters" / f"{kind.lower()}-{stamp}"),
        key="train_out",
    )
    system_name = st.text_input(
        "New system name (default: the folder name)", "", key="train_system"
    )
    like = st.selectbox(
        "Prompt and decoding settings of the new system",
        [DEFAULTS, *(s.name for s in model_systems)],
        index=1 if model_systems else 0,
        key="train_like",
        help="Copied from this system (max new tokens, prompt, ...), so the new adapter is "
        "compared with it on equal terms.",
    )
    started = st.form_submit_button(
        "Start training", type="primary", icon=":material/model_training:"
    )

if started:
    common = {
        "learning_rate": float(learning_rate),
        "epochs": float(epochs),
        "max_steps": int(max_steps) or -1,
        "batch_size": int(batch_size),
        "gradient_accumulation": int(accumulation),
        "gradient_checkpointing": bool(checkpointing),
        "seed": int(seed),
        "lora": LoraSettings(rank=int(rank), alpha=2 * int(rank)),
    }
    try:
        # Folders the page writes or reads exports from stay inside the data folder (the
        # base model may live anywhere: it is only read, and may be a hub id).
        adapter_out = path_inside(settings.data_dir, out_dir, what="Adapter output folder")
        if kind == "DPO":
            prefs_dir = path_inside(settings.data_dir, prefs, what="Preference export folder")
            start_adapter = (
                path_inside(settings.data_dir, init_adapter, what="Start from adapter")
                if init_adapter.strip()
                else None
            )
            job = run_dpo_job(
                workbench_store,
                prefs_dir,
                Path(model_dir).expanduser(),
                adapter_out,
                DPOSettings(beta=float(beta), loss_type=loss_type, **common),
                system_name=system_name.strip() or None,
                init_adapter=start_adapter,
                like_system=None if like == DEFAULTS else like,
                background=True,
            )
        else:
            job = run_sft_job(
                workbench_store,
                benchmark,
                Path(model_dir).expanduser(),
                adapter_out,
                SFTSettings(**common),
                system_name=system_name.strip() or None,
                like_system=None if like == DEFAULTS else like,
                background=True,
            )
    except (TrainingJobError, MediaPathError) as exc:
        st.error(str(exc))
    else:
        st.success(f"Job {job.id} started; it appears under Running.")
