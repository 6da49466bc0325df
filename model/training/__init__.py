"""LoRA SFT and DPO with TRL: settings (`settings`), data (`data`), trainers (`trainers`), and
the database-free launcher (`python -m model.training sft|dpo`, `__main__`).

The names below are the package's public API; each is declared once, in its submodule.
"""

from model.training.data import (
    PREFERENCE_COLUMNS,
    SFTExample,
    TrainingDataError,
    assistant_message,
    dataset_hash,
    load_preference_dataset,
    load_sft_examples,
    preference_rows_to_dataset,
    prompt_messages,
    sft_dataset,
)
from model.training.settings import (
    DEFAULT_TARGET_MODULES,
    DPO_LOSS_TYPES,
    DPOSettings,
    LoraSettings,
    SFTSettings,
    TrainerSettings,
)
from model.training.trainers import (
    TRAINING_CARD,
    Progress,
    TrainingResult,
    read_training_card,
    train_dpo,
    train_sft,
)

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "DPO_LOSS_TYPES",
    "PREFERENCE_COLUMNS",
    "TRAINING_CARD",
    "DPOSettings",
    "LoraSettings",
    "Progress",
    "SFTExample",
    "SFTSettings",
    "TrainerSettings",
    "TrainingDataError",
    "TrainingResult",
    "assistant_message",
    "dataset_hash",
    "load_preference_dataset",
    "load_sft_examples",
    "preference_rows_to_dataset",
    "prompt_messages",
    "read_training_card",
    "sft_dataset",
    "train_dpo",
    "train_sft",
]
