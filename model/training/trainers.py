"""LoRA supervised fine-tuning and DPO for Qwen-VL models with TRL (no database here).

One settings dataclass per trainer (`SFTSettings`, `DPOSettings`, both holding a
`LoraSettings`) describes a run completely; it is written, with the data hash and the final
losses, into the training card saved next to every adapter.

The DPO reference is the frozen policy itself: TRL computes the reference log-probabilities
with the LoRA adapter disabled (or, when training continues from an existing adapter, with a
frozen copy of it), so no second model is loaded. `max_length=None` keeps every image token;
the processor is always passed as `processing_class`, so nothing is fetched from the hub.

Multi-GPU / multi-node: run `python -m model.training ...` under `accelerate launch` (see
docs/training.md); the Trainer takes the distribution from the launcher.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.prompts import COLONOSCOPY_REPORT, RESEARCH_NOTICE, PromptTemplate

# Text attention and MLP projections of the language model only: the vision tower and the
# merger stay frozen, as in the usual Qwen-VL LoRA recipes.
DEFAULT_TARGET_MODULES = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)
DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
TRAINING_CARD = "training_card.json"
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected", "images")

# progress(step, total_steps, logs): logs is the Trainer's log dict of that step.
Progress = Callable[[int, int, dict[str, Any]], None]


class TrainingDataError(ValueError):
    """Training data a user supplied is unusable; the message names the file, row and field."""


# --- settings -------------------------------------------------------------------------


@dataclass
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # A regex (peft matches it against full module names) or a list of module name suffixes.
    target_modules: str | list[str] = DEFAULT_TARGET_MODULES

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )


@dataclass
class _CommonSettings:
    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 1
    gradient_accumulation: int = 1
    gradient_checkpointing: bool = False
    bf16: bool | None = None  # None: bf16 on a CUDA GPU that supports it, float32 otherwise
    seed: int = 0
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    logging_steps: int = 1
    device: str | None = None  # None: cuda when available, else cpu
    image_max_pixels: int | None = None  # caps image tokens; None keeps the processor's
    lora: LoraSettings = field(default_factory=LoraSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("lora"), dict):
            values["lora"] = LoraSettings(**values["lora"])
        return cls(**values)

    def validate(self) -> None:
        if self.learning_rate <= 0:
            raise ValueError("learning_rate must be positive")
        if self.batch_size < 1 or self.gradient_accumulation < 1:
            raise ValueError("batch_size and gradient_accumulation must be at least 1")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if self.lora.rank < 1:
            raise ValueError("LoRA rank must be at least 1")


@dataclass
class SFTSettings(_CommonSettings):
    learning_rate: float = 2e-4
    # Loss on the report tokens only (prompt and image tokens are masked).
    completion_only_loss: bool = True


@dataclass
class DPOSettings(_CommonSettings):
    learning_rate: float = 5e-6
    beta: float = 0.1
    loss_type: str = "sigmoid"  # "ipo" for data with ties kept
    label_smoothing: float = 0.0

    def validate(self) -> None:
        super().validate()
        if self.loss_type not in DPO_LOSS_TYPES:
            raise ValueError(
                f"unknown DPO loss_type {self.loss_type!r}; expected one of: "
                + ", ".join(DPO_LOSS_TYPES)
            )
        if self.beta <= 0:
            raise ValueError("beta must be positive")


# --- records --------------------------------------------------------------------------


@dataclass
class SFTExample:
    """One supervised example: images, the target report (or answer), an optional question."""

    images: list[Path]
    response: str
    question: str | None = None
    key: str = ""


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


# --- prompts and data -----------------------------------------------------------------


def prompt_messages(
    template: PromptTemplate, n_images: int, question: str | None = None
) -> list[dict[str, Any]]:
    """The chat prompt in TRL's vision format: system text, then user image blocks and text.

    Every content is a list of blocks (never a bare string) so that the column has one Arrow
    type across rows.
    """
    messages: list[dict[str, Any]] = []
    if template.system:
        messages.append({"role": "system", "content": [{"type": "text", "text": template.system}]})
    blocks: list[dict[str, Any]] = [{"type": "image", "text": None} for _ in range(n_images)]
    blocks.append({"type": "text", "text": template.user_text(question)})
    messages.append({"role": "user", "content": blocks})
    return messages


def assistant_message(text: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "content": [{"type": "text", "text": text}]}]


def _image_entry(path: Path) -> dict[str, Any]:
    return {"bytes": Path(path).read_bytes(), "path": Path(path).name}


def _hash_update_json(digest: Any, value: Any) -> None:
    digest.update(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode())


def _check_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise TrainingDataError(f"{where}: image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise TrainingDataError(f"{where}: not a readable image: {path} ({exc})") from None


def sft_dataset(examples: Sequence[SFTExample], template: PromptTemplate):
    """SFT examples as a prompt-completion vision dataset (images embedded as bytes)."""
    from datasets import Dataset, Image, List

    if not examples:
        raise TrainingDataError("no SFT examples: the training split is empty")
    rows = []
    for i, ex in enumerate(examples):
        where = f"example {i} ({ex.key or 'no key'})"
        if not ex.response or not ex.response.strip():
            raise TrainingDataError(f"{where}: field 'response' is empty")
        for p in ex.images:
            _check_image(Path(p), where)
        rows.append(
            {
                "prompt": prompt_messages(template, len(ex.images), ex.question),
                "completion": assistant_message(ex.response.strip()),
                "images": [_image_entry(Path(p)) for p in ex.images],
                "key": ex.key,
            }
        )
    return Dataset.from_list(rows).cast_column("images", List(Image()))


def dataset_hash(dataset) -> str:
    """sha256 over every row's text columns and image bytes (order-sensitive)."""
    from datasets import Image, List

    digest = hashlib.sha256()
    plain = dataset
    if "images" in dataset.column_names:
        plain = dataset.cast_column("images", List(Image(decode=False)))
    text_columns = [
        c for c in ("prompt", "completion", "chosen", "rejected") if c in plain.column_names
    ]
    for row in plain:
        _hash_update_json(digest, {c: row[c] for c in text_columns})
        for image in row.get("images") or []:
            data = image.get("bytes")
            if data is None and image.get("path"):
                data = Path(image["path"]).read_bytes()
            digest.update(hashlib.sha256(data or b"").digest())
    return digest.hexdigest()


def preference_rows_to_dataset(rows: list[dict[str, Any]], base_dir: Path | None, source: str):
    """Validated preference rows (images as file paths) to a Dataset with embedded images.

    Raises TrainingDataError naming the source, the row and the field of the first bad row.
    """
    from datasets import Dataset, Image, List

    if not rows:
        raise TrainingDataError(f"{source}: no preference rows")
    clean = []
    for i, row in enumerate(rows):
        where = f"{source} row {i + 1}"
        for column in PREFERENCE_COLUMNS:
            if column not in row:
                raise TrainingDataError(f"{where}: missing field {column!r}")
        for column in ("prompt", "chosen", "rejected"):
            value = row[column]
            if (
                not isinstance(value, list)
                or not value
                or not all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
            ):
                raise TrainingDataError(
                    f"{where}: field {column!r} must be a list of chat messages "
                    "with role and content"
                )
        if not isinstance(row["images"], list):
            raise TrainingDataError(f"{where}: field 'images' must be a list of image files")
        n_blocks = sum(
            1
            for m in row["prompt"]
            if isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "image"
        )
        if n_blocks != len(row["images"]):
            raise TrainingDataError(
                f"{where}: the prompt has {n_blocks} image block(s) but 'images' lists "
                f"{len(row['images'])} file(s)"
            )
        images = []
        for item in row["images"]:
            if isinstance(item, dict) and item.get("bytes") is not None:
                images.append({"bytes": item["bytes"], "path": item.get("path")})
                continue
            path = Path(item["path"] if isinstance(item, dict) else item)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            _check_image(path, where)
            images.append(_image_entry(path))
        out = {k: row[k] for k in ("prompt", "chosen", "rejected")}
        out["images"] = images
        if "provenance" in row:
            out["provenance"] = json.dumps(row["provenance"], sort_keys=True, default=str)
        clean.append(out)
    return Dataset.from_list(clean).cast_column("images", List(Image()))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TrainingDataError(
                    f"{path} line {number}: not valid JSON ({exc.msg})"
                ) from None
    return rows


def load_preference_dataset(source: Path | str | list[dict[str, Any]], split: str = "train"):
    """A preference split from an export folder, a `datasets` folder, a JSONL file or rows.

    Accepted: the folder `studies.preferences.harvest.export_preferences` writes (its `hf/` datasets
    folder is used), any `save_to_disk` folder (a DatasetDict is indexed by `split`), a
    `<split>.jsonl` file or a folder holding one (image paths relative to the file), or a
    list of row dicts with `prompt`, `chosen`, `rejected`, `images` (paths). Returns None when
    the requested split does not exist or is empty (a missing validation split is normal).
    """
    from datasets import Dataset, DatasetDict, load_from_disk

    if isinstance(source, list):
        return preference_rows_to_dataset(source, None, "rows")
    path = Path(source)
    if not path.exists():
        raise TrainingDataError(f"preference data not found: {path}")
    if path.is_dir() and (path / "hf").is_dir():
        path = path / "hf"
    if path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()
    ):
        loaded = load_from_disk(str(path))
        if isinstance(loaded, DatasetDict):
            if split not in loaded:
                return None
            loaded = loaded[split]
        assert isinstance(loaded, Dataset)
        missing = [c for c in PREFERENCE_COLUMNS if c not in loaded.column_names]
        if missing:
            raise TrainingDataError(f"{path}: dataset lacks column(s) {', '.join(missing)}")
        return loaded if len(loaded) else None
    jsonl = path if path.is_file() else path / f"{split}.jsonl"
    if path.is_dir() and not jsonl.exists():
        if split == "train":
            raise TrainingDataError(
                f"{path}: no preference data (expected hf/, a datasets folder or {split}.jsonl)"
            )
        return None
    if path.is_file() and split != "train":
        return None
    rows = _read_jsonl(jsonl)
    if not rows:
        return (
            None if split != "train" else preference_rows_to_dataset(rows, jsonl.parent, str(jsonl))
        )
    return preference_rows_to_dataset(rows, jsonl.parent, str(jsonl))


# --- model loading --------------------------------------------------------------------


def resolve_device(settings: _CommonSettings) -> str:
    import torch

    if settings.device:
        return settings.device
    return "cuda" if torch.cuda.is_available() else "cpu"


def _use_bf16(settings: _CommonSettings, device: str) -> bool:
    import torch

    if settings.bf16 is not None:
        return bool(settings.bf16) and device.startswith("cuda")
    return device.startswith("cuda") and torch.cuda.is_bf16_supported()


def _load(model_dir: str | Path, settings: _CommonSettings, device: str):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(str(model_dir))
    if settings.image_max_pixels:
        size = dict(processor.image_processor.size)
        size["longest_edge"] = int(settings.image_max_pixels)
        processor.image_processor.size = size
    dtype = torch.bfloat16 if _use_bf16(settings, device) else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(str(model_dir), dtype=dtype)
    return model, processor


def _base_args(settings: _CommonSettings, out_dir: Path, device: str) -> dict[str, Any]:
    return {
        "output_dir": str(out_dir / "checkpoints"),
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation,
        "gradient_checkpointing": settings.gradient_checkpointing,
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
            if not logs or not state.is_world_process_zero:
                return
            entry = {"step": int(state.global_step)}
            entry.update({k: _plain(v) for k, v in logs.items()})
            log.append(entry)
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps), entry)

    return _Recorder()


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
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
    settings: _CommonSettings,
    data: dict[str, Any],
    results: dict[str, Any],
    device: str,
    init_adapter: str | None,
) -> dict[str, Any]:
    card = {
        "kind": kind,
        "base_model": str(model_dir),
        "init_adapter": init_adapter,
        "data": data,
        "settings": settings.to_dict(),
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


def _finish(
    trainer,
    kind: str,
    out_dir: Path,
    model_dir: str | Path,
    settings: _CommonSettings,
    data: dict[str, Any],
    log: list[dict[str, Any]],
    started: float,
    device: str,
    init_adapter: str | None,
    has_eval: bool,
) -> TrainingResult:
    eval_metrics: dict[str, float] = {}
    if has_eval:
        eval_metrics = {k: _plain(v) for k, v in trainer.evaluate().items()}
    train_logs = [e for e in log if "loss" in e]
    final_loss = _last(train_logs, "loss")
    train_loss = _last(log, "train_loss")
    reward_acc = _last(train_logs, "rewards/accuracies") if kind == "dpo" else None
    for value, name in ((final_loss, "final loss"), (train_loss, "train loss")):
        if value is not None and not math.isfinite(value):
            raise RuntimeError(f"{kind.upper()} training diverged: the {name} is {value}")
    if trainer.accelerator.is_main_process:
        # Only the trained adapter: DPO may hold a frozen "ref" copy of an initial adapter.
        trainer.model.save_pretrained(str(out_dir), selected_adapters=["default"])
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
        card = _write_card(out_dir, kind, model_dir, settings, data, results, device, init_adapter)
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


# --- launch path (no database): `accelerate launch -m model.training dpo ...` ----------


def _settings_from_args(cls, args: argparse.Namespace):
    data: dict[str, Any] = {}
    if args.settings:
        data = json.loads(Path(args.settings).read_text(encoding="utf-8"))
    settings = cls.from_dict(data)
    for name in ("learning_rate", "epochs", "max_steps", "batch_size", "gradient_accumulation"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    if args.gradient_checkpointing:
        settings.gradient_checkpointing = True
    return settings


def main(argv: list[str] | None = None) -> int:
    """Train without the database, e.g. under `accelerate launch` on several GPUs."""
    parser = argparse.ArgumentParser(prog="python -m model.training", description=__doc__)
    sub = parser.add_subparsers(dest="kind", required=True)
    dpo = sub.add_parser("dpo", help="DPO on a preference export")
    dpo.add_argument("--prefs", required=True, help="preference export folder or JSONL")
    dpo.add_argument("--init-adapter", default=None)
    for p in (dpo,):
        p.add_argument("--model", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--settings", default=None, help="JSON file with DPOSettings fields")
        p.add_argument("--learning-rate", dest="learning_rate", type=float, default=None)
        p.add_argument("--epochs", type=float, default=None)
        p.add_argument("--max-steps", dest="max_steps", type=int, default=None)
        p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
        p.add_argument(
            "--gradient-accumulation", dest="gradient_accumulation", type=int, default=None
        )
        p.add_argument("--gradient-checkpointing", action="store_true")
    args = parser.parse_args(argv)
    settings = _settings_from_args(DPOSettings, args)
    result = train_dpo(args.model, args.prefs, settings, args.out, init_adapter=args.init_adapter)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in result.to_dict().items() if k != "log"}, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
