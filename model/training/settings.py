"""Training settings, one dataclass per trainer (TRL's `XConfig` style): THE source of options.

`LoraSettings`, `SFTSettings` and `DPOSettings` hold every setting of a run and are written
into the training card. Each field carries `field(default=..., metadata={"help": ...})`;
`settings_options()` turns them into the options of both launchers, `medvision train sft|dpo`
and `python -m model.training sft|dpo`, so an option exists in both or in neither. Imports
no torch, transformers or TRL (`--help` stays fast).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from model.options import Option, given, options

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


def parse_target_modules(text: str) -> str | list[str]:
    """One regex (it has regex characters) or comma-separated module name suffixes."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) == 1 and any(c in parts[0] for c in "*.(|"):
        return parts[0]
    return parts


@dataclass
class LoraSettings:
    rank: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    # A regex (peft matches it against full module names) or a list of module name suffixes.
    target_modules: str | list[str] = field(
        default=DEFAULT_TARGET_MODULES,
        metadata={
            "help": "a regex or comma-separated module names (default: the language model's "
            "attention and MLP projections)",
            "parse": parse_target_modules,
        },
    )

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
class TrainerSettings:
    """The settings SFT and DPO share."""

    learning_rate: float = field(
        default=1e-4, metadata={"help": "peak learning rate", "aliases": ("--lr",)}
    )
    epochs: float = field(default=1.0, metadata={"help": "passes over the train split"})
    max_steps: int = field(
        default=-1, metadata={"help": "optimizer steps; overrides epochs when > 0"}
    )
    batch_size: int = field(default=1, metadata={"help": "examples per device and step"})
    gradient_accumulation: int = field(
        default=1, metadata={"help": "steps whose gradients are summed before an update"}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute activations to save memory"}
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bfloat16 weights (default: on a CUDA GPU that supports it)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of initialisation and data order"})
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "share of the steps spent warming the learning rate up"}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    logging_steps: int = field(default=1, metadata={"help": "steps between loss log entries"})
    device: str | None = field(
        default=None, metadata={"help": "cpu or cuda (default: cuda when available)"}
    )
    image_max_pixels: int | None = field(
        default=None, metadata={"help": "caps image tokens (default: the processor's)"}
    )
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
class SFTSettings(TrainerSettings):
    learning_rate: float = field(
        default=2e-4, metadata={"help": "peak learning rate", "aliases": ("--lr",)}
    )
    completion_only_loss: bool = field(
        default=True,
        metadata={"help": "loss on the report tokens only (prompt and image tokens masked)"},
    )


@dataclass
class DPOSettings(TrainerSettings):
    learning_rate: float = field(
        default=5e-6, metadata={"help": "peak learning rate", "aliases": ("--lr",)}
    )
    beta: float = field(
        default=0.1, metadata={"help": "strength of the pull towards the reference policy"}
    )
    loss_type: str = field(
        default="sigmoid",
        metadata={"help": "DPO loss ('ipo' for data with ties kept)", "choices": DPO_LOSS_TYPES},
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "assumed share of flipped preference labels"}
    )

    def validate(self) -> None:
        super().validate()
        if self.loss_type not in DPO_LOSS_TYPES:
            raise ValueError(
                f"unknown DPO loss_type {self.loss_type!r}; expected one of: "
                + ", ".join(DPO_LOSS_TYPES)
            )
        if self.beta <= 0:
            raise ValueError("beta must be positive")


SETTINGS_FILE_HELP = "JSON file with settings fields (the options given here override it)"


def settings_options(cls: type[TrainerSettings]) -> list[Option]:
    """The options of trainer `cls`: its own fields, then the LoRA ones (flat: --rank ...)."""
    return options(cls, skip=("lora",)) + options(LoraSettings)


def read_settings_file(path: Path | str | None) -> dict[str, Any]:
    """The fields of a --settings JSON file ({} without one); ValueError naming the file."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--settings {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--settings {path}: expected a JSON object of settings fields")
    return data


def build_settings(
    cls: type[TrainerSettings], file_values: dict[str, Any], values: dict[str, Any]
) -> TrainerSettings:
    """Settings from a file's fields, then every option that was given; validated.

    `values` maps option names (as `settings_options` declares them) to what the command
    line gave (None: not given). Raises ValueError naming the field to fix.
    """
    try:
        settings = cls.from_dict(file_values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--settings: {exc}") from None
    lora_names = {f.name for f in fields(LoraSettings)}
    for name, value in given(values, settings_options(cls)).items():
        setattr(settings.lora if name in lora_names else settings, name, value)
    settings.validate()
    return settings
