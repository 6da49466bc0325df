"""`python -m model.training sft|dpo`: training without the database, e.g. under
`accelerate launch` on several GPUs; rank 0 writes the adapter and its card.

Every settings option is generated from the settings dataclasses (`settings_options`), the
same ones `medvision train sft|dpo` offers; `--settings FILE` gives fields as JSON and the
options given here override it.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from model.options import add_arguments
from model.training.settings import (
    SETTINGS_FILE_HELP,
    DPOSettings,
    SFTSettings,
    TrainerSettings,
    build_settings,
    read_settings_file,
    settings_options,
)

PROG = "python -m model.training"


def build_parser() -> argparse.ArgumentParser:
    """The launcher's parser: one sub-command per trainer, options from its settings."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="trainer", required=True)
    sft = sub.add_parser("sft", help="LoRA SFT on a JSONL file of (images, response) examples")
    sft.add_argument(
        "--examples",
        required=True,
        help='JSONL file: one {"images": [...], "response": ..., "question"?} per line',
    )
    sft.add_argument("--validation", default=None, help="JSONL file of validation examples")
    dpo = sub.add_parser("dpo", help="DPO on a preference export")
    dpo.add_argument("--prefs", required=True, help="preference export folder or JSONL")
    dpo.add_argument("--init-adapter", default=None, help="continue from this adapter")
    for command, cls in ((sft, SFTSettings), (dpo, DPOSettings)):
        command.add_argument("--model", required=True, help="local base model folder")
        command.add_argument("--out", required=True, help="new folder for the adapter")
        command.add_argument("--settings", default=None, help=SETTINGS_FILE_HELP)
        add_arguments(command, settings_options(cls))
    return parser


def parse(argv: list[str] | None = None) -> tuple[argparse.Namespace, TrainerSettings]:
    """The parsed command line and the settings it describes (exit 2 with a message if bad)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    cls = SFTSettings if args.trainer == "sft" else DPOSettings
    try:
        settings = build_settings(cls, read_settings_file(args.settings), vars(args))
    except ValueError as exc:
        parser.error(str(exc))
    return args, settings


def main(argv: list[str] | None = None) -> int:
    args, settings = parse(argv)
    from model.training.data import load_sft_examples
    from model.training.trainers import train_dpo, train_sft

    if args.trainer == "sft":
        validation = load_sft_examples(args.validation) if args.validation else None
        result = train_sft(
            args.model,
            load_sft_examples(args.examples),
            settings,
            args.out,
            validation=validation,
            data_source=str(args.examples),
        )
    else:
        result = train_dpo(
            args.model, args.prefs, settings, args.out, init_adapter=args.init_adapter
        )
    if int(os.environ.get("RANK", "0")) == 0:
        summary: dict[str, Any] = {k: v for k, v in result.to_dict().items() if k != "log"}
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
