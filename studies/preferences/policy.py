"""The harvest policy: which judgments become preference pairs, declared once.

Its fields carry their help (and choices, parse) so `medvision prefs` builds its options from
them (`model.options`); the module imports nothing heavy, so `medvision prefs --help` stays fast.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from model.prompts import get_prompt


class PreferenceError(ValueError):
    """A harvest or export that cannot be done; the message says what to fix."""


def _option(default: Any = None, help: str = "", **metadata: Any) -> Any:  # noqa: A002
    # `help` (and `choices`, `parse`) make the field a `medvision prefs` option (model.options).
    return field(default=default, metadata={"help": help, **metadata})


def comma_list(text: str) -> list[str]:
    """'a, b' -> ['a', 'b'] (a list option on the command line)."""
    return [item.strip() for item in text.split(",") if item.strip()]


@dataclass
class HarvestPolicy:
    """Which judged items become preference pairs; stored with every export.

    Each field's `metadata["help"]` is its command-line help: the `prefs` options are
    generated from these fields.
    """

    min_raters: int = _option(1, "Raters an item needs.")
    # Share of an item's raters that chose the winning outcome (the outcome must also be the
    # unique most frequent one); 0 accepts any plurality, 1 demands unanimity.
    min_agreement: float = _option(0.0, "Share of raters on the winning side (1 = unanimous).")
    # keep: both orderings, for an IPO-style loss
    ties: str = _option(
        "drop", "drop, or keep (both orders; train with --loss-type ipo).", choices=("drop", "keep")
    )
    # reference: the human reference as chosen against each report
    both_bad: str = _option(
        "drop",
        "drop, or reference (the human reference as chosen).",
        choices=("drop", "reference"),
    )
    # Mean Likert difference (winner minus loser, averaged over criteria and raters) a pair
    # must reach; None turns the filter off.
    min_likert_margin: float | None = _option(None, "Mean Likert difference winner minus loser.")
    # None: every criterion of the study's form; names outside the form are refused.
    likert_criteria: list[str] | None = _option(
        None, "Comma-separated criteria for the margin (default all).", parse=comma_list
    )
    likert_lower_is_better: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Comma-separated criteria where a lower score is better.",
            "parse": comma_list,
        },
    )
    # use: an item a senior rater adjudicated (studies.readers.adjudication) takes the
    # adjudicated outcome, whatever the raters' majority and agreement.
    adjudication: str = _option(
        "ignore",
        "ignore, or use (an adjudicated item takes the senior rater's answer).",
        choices=("ignore", "use"),
    )
    # Gold items are quality-control pairs, not new data.
    include_gold: bool = _option(False, "Also harvest gold items.")
    automatic: bool = _option(False, "Add automatic cold-start pairs (clinical metric errors).")
    validation_fraction: float = _option(0.1, "Share of cases held out (split by case).")
    seed: int = _option(0, "Seed of the train/validation split.")
    prompt: str | None = _option(None, "Prompt name (default: the benchmark task's).")  # PROMPTS

    def validate(self) -> None:
        if self.min_raters < 1:
            raise PreferenceError("min_raters must be at least 1")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise PreferenceError("min_agreement must be between 0 and 1")
        if self.ties not in ("drop", "keep"):
            raise PreferenceError(f"ties must be 'drop' or 'keep', not {self.ties!r}")
        if self.adjudication not in ("ignore", "use"):
            raise PreferenceError(
                f"adjudication must be 'ignore' or 'use', not {self.adjudication!r}"
            )
        if self.both_bad not in ("drop", "reference"):
            raise PreferenceError(f"both_bad must be 'drop' or 'reference', not {self.both_bad!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise PreferenceError("validation_fraction must be in [0, 1)")
        if self.prompt is not None:
            try:
                get_prompt(self.prompt)
            except ValueError as exc:
                raise PreferenceError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HarvestPolicy:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PreferenceError(f"unknown harvest policy field(s): {', '.join(unknown)}")
        return cls(**data)

    @property
    def hash(self) -> str:
        payload = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()
