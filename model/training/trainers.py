"""LoRA supervised fine-tuning and DPO for Qwen-VL models with TRL (no database here).

The settings (`model.training.settings`) describe a run completely; they are written, with
the data hash and the final losses, into the training card saved next to every adapter.

The DPO reference is the frozen policy itself: TRL computes the reference log-probabilities
with the LoRA adapter disabled (or, when training continues from an existing adapter, with a
frozen copy of it), so no second model is loaded. `max_length=None` keeps every image token;
the processor is always passed as `processing_class`, so nothing is fetched from the hub.

Multi-GPU / multi-node: run `python -m model.training ...` under `accelerate launch` (see
docs/training.md); the Trainer takes the distribution from the launcher.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.media import processor_size
from model.prompts import COLONOSCOPY_REPORT, RESEARCH_NOTICE, PromptTemplate
from model.training.data import (
    SFTExample,
    TrainingDataError,
    dataset_hash,
    load_preference_dataset,
    sft_dataset,
)
from model.training.settings import DPOSettings, SFTSettings, TrainerSettings

TRAINING_CARD = "training_card.json"
# Logged values that must stay finite; the first non-finite one stops the run.
WATCHED_LOSSES = ("loss", "train_loss", "eval_loss", "grad_norm")


class TrainingDiverged(RuntimeError):
    """A logged loss or gradient norm was NaN or infinite: nothing is saved or registered."""


# progress(step, total_steps, logs): logs is the Trainer's log dict of that step.
Progress = Callable[[int, int, dict[str, Any]], None]


@dataclass
class TrainingResult:
    kind: str  # sft | dpo
    adapter_dir: Path
    base_model: str
    data_hash: str
    n_train: int
    n_validation: int
    steps: int
    final_loss: float | None
    train_loss: float | None
    reward_accuracy: float | None  # DPO: last logged train reward accuracy
    eval_metrics: dict[str, float]
    log: list[dict[str, Any]]
    runtime_s: float
    card: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["adapter_dir"] = str(self.adapter_dir)
        return out


# --- model loading --------------------------------------------------------------------


def resolve_device(settings: TrainerSettings) -> str:
    import torch

    if settings.device:
        return settings.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _use_bf16(settings: TrainerSettings, device: str) -> bool:
    import torch

    if settings.bf16 is not None:
        return bool(settings.bf16) and device.startswith("cuda")
    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


def _load(model_dir: str | Path, settings: TrainerSettings, device: str):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(model_dir))
    if settings.image_max_pixels:
        # The same resize as inference (model.generation.processor_inputs): one token grid.
        processor.image_processor.size = processor_size(
            processor.image_processor.size, settings.image_max_pixels
        )
    dtype = torch.bfloat16 if _use_bf16(settings, device) else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype)
    return model, processor


def _checkpointing_key() -> str:
    """transformers 5.x renamed `gradient_checkpointing` to `activation_checkpointing` (the
    old name warns and goes in v6); use the name the installed version knows."""
    from dataclasses import fields as dataclass_fields

    from transformers import TrainingArguments

    names = {f.name for f in dataclass_fields(TrainingArguments)}
    return (
        "activation_checkpointing"
        if "activation_checkpointing" in names
        else "gradient_checkpointing"
    )


def _base_args(settings: TrainerSettings, out_dir: Path, device: str) -> dict[str, Any]:
    return {
        "output_dir": str(out_dir / "checkpoints"),
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        _checkpointing_key(): settings.gradient_checkpointing,
        "bf16": _use_bf16(settings, device),
        "fp16": False,
        "seed": settings.seed,
        "data_seed": settings.seed,
        # transformers 5 reads a float below 1 as a fraction of the total steps.
        "warmup_steps": float(settings.warmup_ratio),
        "weight_decay": settings.weight_decay,
        "logging_steps": settings.logging_steps,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": device == "cpu",
        "max_length": None,  # never truncate: a cut would drop image tokens
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def _callback(progress: Progress | None, log: list[dict[str, Any]]):
    from transformers import TrainerCallback

    class _Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not logs:
                return
            # Finiteness is checked on the raw values, on every rank, before the entry is
            # made JSON-safe (which maps NaN to None and would hide it).
            bad = _nonfinite(logs)
            if bad:
                control.should_training_stop = True
            if not state.is_world_process_zero:
                return
            entry = {"step": int(state.global_step)}
            entry.update({k: _plain(v) for k, v in logs.items()})
            if bad:
                entry["nonfinite"] = bad
            log.append(entry)
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps), entry)

    return _Recorder()


def _nonfinite(logs: dict[str, Any]) -> list[str]:
    """The watched keys of one log entry whose value is NaN or infinite."""
    bad = []
    for key in WATCHED_LOSSES:
        value = logs.get(key)
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            bad.append(key)
    return bad


def check_finite(log: Iterable[dict[str, Any]], kind: str) -> None:
    """Raise `TrainingDiverged` naming the first step whose loss was not finite."""
    for entry in log:
        if entry.get("nonfinite"):
            names = ", ".join(entry["nonfinite"])
            raise TrainingDiverged(
                f"{kind.upper()} training diverged at step {entry.get('step')}: {names} is not "
                "finite; no adapter was saved. Lower the learning rate or check the data."
            )


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- cards ----------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import peft
    import torch
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "peft": peft.__version__,
        "python": sys.version.split()[0],
    }


def _card_markdown(card: dict[str, Any]) -> str:
    results = card["results"]
    lines = [
        f"# LoRA adapter ({card['kind'].upper()}) for {card['base_model']}",
        "",
        f"**{RESEARCH_NOTICE}** This adapter is for research use only; its reports must not "
        "be used for patient care.",
        "",
        f"- Trained: {card['created_at']} on {card['device']}",
        f"- Base model: `{card['base_model']}`",
    ]
    if card.get("init_adapter"):
        lines.append(f"- Started from adapter: `{card['init_adapter']}`")
    data = card["data"]
    lines += [
        f"- Data: {data['source']} (sha256 `{data['hash']}`), {data['n_train']} train / "
        f"{data['n_validation']} validation examples",
    ]
    if data.get("synthetic"):
        lines.append("- The training data are synthetic.")
    lines += [
        f"- Steps: {results['steps']}; final loss: {results['final_loss']}; "
        f"mean train loss: {results['train_loss']}",
    ]
    if card["kind"] == "dpo":
        lines.append(f"- Final train reward accuracy: {results['reward_accuracy']}")
    if results.get("eval"):
        lines.append(f"- Validation: {json.dumps(results['eval'], sort_keys=True)}")
    lines += [
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(card["settings"], indent=2, sort_keys=True),
        "```",
        "",
        "## In effect during training",
        "",
        "What the trainer actually used, where it differs from or adds to the settings (the "
        "continued adapter's rank, dropout turned off by DPO, processes and effective batch):",
        "",
        "```json",
        json.dumps(card.get("in_effect", {}), indent=2, sort_keys=True),
        "```",
        "",
        "## Software",
        "",
        ", ".join(f"{k} {v}" for k, v in card["versions"].items()),
        "",
        "Load with `peft.PeftModel.from_pretrained(base_model, this_folder)`.",
        "",
    ]
    return "\n".join(lines)


def _write_card(
    out_dir: Path,
    kind: str,
    model_dir: str | Path,
    settings: TrainerSettings,
    data: dict[str, Any],
    results: dict[str, Any],
    device: str,
    init_adapter: str | None,
    in_effect: dict[str, Any],
) -> dict[str, Any]:
    card = {
        "kind": kind,
        "base_model": str(model_dir),
        "init_adapter": init_adapter,
        "data": data,
        "settings": settings.to_dict(),
        "in_effect": in_effect,
        "results": results,
        "device": device,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "research_use": f"{RESEARCH_NOTICE} For research use only.",
    }
    (out_dir / TRAINING_CARD).write_text(
        json.dumps(card, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
    (out_dir / "README.md").write_text(_card_markdown(card), encoding="utf-8")
    return card


def read_training_card(adapter_dir: Path | str) -> dict[str, Any] | None:
    path = Path(adapter_dir) / TRAINING_CARD
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --- trainers -------------------------------------------------------------------------


def _last(log: Iterable[dict[str, Any]], key: str) -> float | None:
    value = None
    for entry in log:
        if entry.get(key) is not None:
            value = entry[key]
    return value


def in_effect(trainer, kind: str) -> dict[str, Any]:
    """The settings the live trainer used: the trained adapter's LoRA configuration (a
    continued adapter keeps its own rank and alpha), dropout as it was during training (TRL's
    DPO turns every dropout module off unless `disable_dropout=False`), the number of
    processes and the effective batch, and the TRL defaults that shape the loss."""
    args = trainer.args
    world = int(getattr(trainer.accelerator, "num_processes", 1) or 1)
    model = trainer.accelerator.unwrap_model(trainer.model)
    lora: dict[str, Any] = {}
    config = getattr(model, "peft_config", {}).get("default")
    if config is not None:
        dropout_off = bool(getattr(args, "disable_dropout", False))
        lora = {
            "rank": int(config.r),
            "alpha": int(config.lora_alpha),
            "dropout_configured": float(config.lora_dropout),
            "dropout_in_effect": 0.0 if dropout_off else float(config.lora_dropout),
            "target_modules": sorted(config.target_modules)
            if isinstance(config.target_modules, set | list | tuple)
            else config.target_modules,
        }
    out: dict[str, Any] = {
        "lora": lora,
        "world_size": world,
        "per_device_batch": int(args.per_device_train_batch_size),
        "gradient_accumulation": int(args.gradient_accumulation_steps),
        "effective_batch": int(args.per_device_train_batch_size)
        * int(args.gradient_accumulation_steps)
        * world,
        "bf16": bool(args.bf16),
    }
    if kind == "dpo":
        out["trl"] = {
            name: _plain(getattr(args, name))
            for name in (
                "disable_dropout",
                "f_divergence_type",
                "loss_type",
                "beta",
                "label_smoothing",
                "precompute_ref_log_probs",
                "use_weighting",
            )
            if hasattr(args, name)
        }
        out["trl"] = {
            k: (str(v) if not isinstance(v, bool | int | float | str | list | None) else v)
            for k, v in out["trl"].items()
        }
    return out


def _gathered_state_dict(trainer) -> dict[str, Any] | None:  # noqa: ANN001
    """The model's state dict gathered on every rank where the weights are sharded (DeepSpeed
    ZeRO-3, FSDP), as `Trainer.save_model` gathers it; None when each rank holds them whole.
    Every rank must call this: the gather is a collective operation."""
    if getattr(trainer, "is_deepspeed_enabled", False):
        stage = trainer.deepspeed.config.get("zero_optimization", {}).get("stage")
        if stage == 3:
            return trainer.deepspeed._zero3_consolidated_16bit_state_dict(
                exclude_frozen_parameters=True
            )
        return trainer.accelerator.get_state_dict(trainer.deepspeed)
    if getattr(trainer, "is_fsdp_enabled", False):
        return trainer.accelerator.get_state_dict(trainer.model)
    return None


def save_adapter(trainer, out_dir: Path) -> None:  # noqa: ANN001
    """Save the trained LoRA adapter ("default" only: DPO may hold a frozen "ref" copy of an
    initial adapter). Called on every rank; only the main process writes."""
    state_dict = _gathered_state_dict(trainer)
    model = trainer.accelerator.unwrap_model(trainer.model)
    model.save_pretrained(
        str(out_dir),
        state_dict=state_dict,
        selected_adapters=["default"],
        is_main_process=trainer.accelerator.is_main_process,
    )


def _finish(
    trainer,
    kind: str,
    out_dir: Path,
    model_dir: str | Path,
    settings: TrainerSettings,
    data: dict[str, Any],
    log: list[dict[str, Any]],
    started: float,
    device: str,
    init_adapter: str | None,
    has_eval: bool,
) -> TrainingResult:
    check_finite(log, kind)  # before evaluating a diverged model
    eval_metrics: dict[str, float] = {}
    if has_eval:
        eval_metrics = {k: _plain(v) for k, v in trainer.evaluate().items()}
    train_logs = [e for e in log if "loss" in e]
    final_loss = _last(train_logs, "loss")
    train_loss = _last(log, "train_loss")
    reward_acc = _last(train_logs, "rewards/accuracies") if kind == "dpo" else None
    check_finite(log, kind)
    save_adapter(trainer, out_dir)
    results = {
        "steps": int(trainer.state.global_step),
        "final_loss": final_loss,
        "train_loss": train_loss,
        "reward_accuracy": reward_acc,
        "eval": eval_metrics,
        "runtime_s": round(time.perf_counter() - started, 3),
    }
    card = {}
    if trainer.accelerator.is_main_process:
        checkpoints = out_dir / "checkpoints"
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()
        card = _write_card(
            out_dir,
            kind,
            model_dir,
            settings,
            data,
            results,
            device,
            init_adapter,
            in_effect(trainer, kind),
        )
    return TrainingResult(
        kind=kind,
        adapter_dir=out_dir,
        base_model=str(model_dir),
        data_hash=data["hash"],
        n_train=data["n_train"],
        n_validation=data["n_validation"],
        steps=results["steps"],
        final_loss=final_loss,
        train_loss=train_loss,
        reward_accuracy=reward_acc,
        eval_metrics=eval_metrics,
        log=log,
        runtime_s=results["runtime_s"],
        card=card,
    )


def _prepare_out_dir(out_dir: Path | str) -> Path:
    out = Path(out_dir)
    if out.exists() and (out / "adapter_config.json").exists():
        raise FileExistsError(f"{out} already holds an adapter; choose a new output folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_sft(
    model_dir: str | Path,
    examples: Sequence[SFTExample],
    settings: SFTSettings | None = None,
    out_dir: str | Path = "adapter",
    progress: Progress | None = None,
    validation: Sequence[SFTExample] | None = None,
    template: PromptTemplate = COLONOSCOPY_REPORT,
    data_source: str = "examples",
    synthetic: bool = False,
) -> TrainingResult:
    """LoRA SFT of a Qwen-VL model on (images, report) examples; saves adapter and card."""
    from trl import SFTConfig, SFTTrainer

    settings = settings or SFTSettings()
    settings.validate()
    train_ds = sft_dataset(examples, template)
    eval_ds = sft_dataset(validation, template) if validation else None
    out = _prepare_out_dir(out_dir)
    device = resolve_device(settings)
    model, processor = _load(model_dir, settings, device)
    args = SFTConfig(
        **_base_args(settings, out, device),
        completion_only_loss=settings.completion_only_loss,
    )
    log: list[dict[str, Any]] = []
    started = time.perf_counter()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=processor,
        peft_config=settings.lora.to_peft(),
        callbacks=[_callback(progress, log)],
    )
    trainer.train()
    data = {
        "source": data_source,
        "hash": dataset_hash(train_ds),
        "n_train": len(train_ds),
        "n_validation": len(eval_ds) if eval_ds is not None else 0,
        "prompt": template.name,
        "prompt_hash": template.hash,
        "synthetic": synthetic,
    }
    return _finish(
        trainer,
        "sft",
        out,
        model_dir,
        settings,
        data,
        log,
        started,
        device,
        None,
        eval_ds is not None,
    )


def train_dpo(
    model_dir: str | Path,
    dataset_dir_or_rows: Path | str | list[dict[str, Any]],
    settings: DPOSettings | None = None,
    out_dir: str | Path = "adapter",
    progress: Progress | None = None,
    init_adapter: str | Path | None = None,
) -> TrainingResult:
    """DPO with LoRA on preference pairs (see `load_preference_dataset` for the inputs).

    With `init_adapter` (e.g. an SFT adapter) training continues from it and the reference is
    a frozen copy of it; otherwise a fresh LoRA is trained and the reference is the base model
    with the adapter disabled.
    """
    from trl import DPOConfig, DPOTrainer

    settings = settings or DPOSettings()
    settings.validate()
    train_ds = load_preference_dataset(dataset_dir_or_rows, "train")
    if train_ds is None or len(train_ds) == 0:
        raise TrainingDataError(f"{dataset_dir_or_rows}: the train split has no preference pairs")
    eval_ds = None
    if not isinstance(dataset_dir_or_rows, list):
        eval_ds = load_preference_dataset(dataset_dir_or_rows, "validation")
    out = _prepare_out_dir(out_dir)
    device = resolve_device(settings)
    model, processor = _load(model_dir, settings, device)
    peft_config = settings.lora.to_peft()
    if init_adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        peft_config = None  # the loaded adapter is trained; TRL keeps a frozen "ref" copy
    args = DPOConfig(
        **_base_args(settings, out, device),
        beta=settings.beta,
        loss_type=[settings.loss_type],
        label_smoothing=settings.label_smoothing,
    )
    log: list[dict[str, Any]] = []
    started = time.perf_counter()
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[_callback(progress, log)],
    )
    trainer.train()
    source = "rows" if isinstance(dataset_dir_or_rows, list) else str(dataset_dir_or_rows)
    synthetic = False
    if not isinstance(dataset_dir_or_rows, list):
        manifest = _export_manifest(Path(dataset_dir_or_rows))
        synthetic = bool(manifest.get("synthetic", False))
    data = {
        "source": source,
        "hash": dataset_hash(train_ds),
        "n_train": len(train_ds),
        "n_validation": len(eval_ds) if eval_ds is not None else 0,
        "synthetic": synthetic,
    }
    return _finish(
        trainer,
        "dpo",
        out,
        model_dir,
        settings,
        data,
        log,
        started,
        device,
        str(init_adapter) if init_adapter else None,
        eval_ds is not None,
    )


def _export_manifest(path: Path) -> dict[str, Any]:
    """The export.json a preference export carries (empty when there is none)."""
    folder = path if path.is_dir() else path.parent
    for candidate in (folder / "export.json", folder.parent / "export.json"):
        if candidate.exists():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                return {}
    return {}
