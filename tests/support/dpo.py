"""Exported preference pairs straight into TRL's DPOTrainer on the CPU (the tiny test model):
the proof, shared by the harvest, CLI and browser tests, that an export trains as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def dpo_train(
    model_dir: Path, train_dataset: Any, output_dir: Path, *, steps: int = 2, lora: bool = True
) -> Any:
    """Train `steps` DPO steps on `train_dataset` (rows as the preference export writes them)
    with a LoRA adapter (`lora`) or the whole model, and return the trainer."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from trl import DPOConfig, DPOTrainer

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    args = DPOConfig(
        output_dir=str(output_dir),
        max_steps=steps,
        per_device_train_batch_size=2,
        max_length=None,
        bf16=False,
        gradient_checkpointing=False,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=processor,
        peft_config=(
            LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]) if lora else None
        ),
    )
    trainer.train()
    return trainer


def train_losses(trainer: Any) -> list[float]:
    """The loss logged at each step of a `dpo_train` run."""
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def export_trains(model_dir: Path, export_dir: Path, output_dir: Path) -> list[float]:
    """Two LoRA DPO steps on an export's `hf` dataset (its train split): the losses."""
    from datasets import load_from_disk

    trainer = dpo_train(model_dir, load_from_disk(str(export_dir / "hf"))["train"], output_dir)
    return train_losses(trainer)
