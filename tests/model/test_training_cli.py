"""Both training command lines are generated from the settings dataclasses, and every command
line quoted in docs/training.md parses (parse only: nothing is trained).

On the old code `python -m model.training dpo ... --beta 0.2 --loss-type ipo` failed with
"unrecognized arguments", although the docs promised the options of `medvision train dpo`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from model.training.__main__ import build_parser, parse
from model.training.settings import DPOSettings, SFTSettings, settings_options

DOCS = Path(__file__).resolve().parents[2] / "docs" / "training.md"


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def quoted_command_lines() -> list[list[str]]:
    """Every `medvision ...` and `... -m model.training ...` line of the fenced blocks, with
    backslash continuations joined, as argument lists."""
    found = []
    for block in _code_blocks(DOCS.read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line)
            if words[:1] == ["medvision"] or "model.training" in words:
                found.append(words)
    return found


def _medvision_params(words: list[str]) -> dict[str, Any]:
    """Parse `medvision GROUP [SUB] ARGS` with the real click commands; the parsed values."""
    from workbench.cli import load_command

    command = load_command(words[1])
    args = words[2:]
    while hasattr(command, "commands") and args and args[0] in command.commands:
        command, args = command.commands[args[0]], args[1:]
    context = command.make_context(" ".join(words[:2]), list(args))
    return dict(context.params)


def _launcher_args(words: list[str]) -> list[str]:
    if words[:3] == ["python", "-m", "model.training"]:
        return words[3:]
    index = words.index("-m")  # accelerate launch [its options] -m model.training ...
    assert words[index + 1] == "model.training"
    return words[index + 2 :]


def test_the_docs_quote_both_launchers() -> None:
    lines = quoted_command_lines()
    assert any(w[:3] == ["medvision", "train", "dpo"] for w in lines)
    assert any(w[:3] == ["medvision", "train", "sft"] for w in lines)
    launched = [_launcher_args(w)[0] for w in lines if "model.training" in w]
    assert {"sft", "dpo"} <= set(launched)


@pytest.mark.parametrize("words", quoted_command_lines(), ids=lambda w: " ".join(w[:4]))
def test_every_command_line_in_the_docs_parses(
    words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    if "--settings" in words:  # the docs' example settings file: an empty JSON object
        (tmp_path / words[words.index("--settings") + 1]).write_text("{}")
    if "model.training" in words:
        parse(_launcher_args(words))
    else:
        _medvision_params(words)


def test_every_settings_option_is_in_the_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for cls in (SFTSettings, DPOSettings):
        for option in settings_options(cls):
            assert f"`{option.flag}`" in text, option.flag


def test_beta_and_loss_type_reach_dpo_settings_through_both_launchers() -> None:
    from workbench.commands.train import _configure

    argv = ["--model", "m", "--out", "o", "--prefs", "p", "--beta", "0.2", "--loss-type", "ipo"]
    _args, launched = parse(["dpo", *argv, "--rank", "8", "--no-bf16"])
    params = _medvision_params(["medvision", "train", "dpo", *argv, "--rank", "8", "--no-bf16"])
    typed = _configure(DPOSettings, params)
    for settings in (launched, typed):
        assert isinstance(settings, DPOSettings)
        assert (settings.beta, settings.loss_type) == (0.2, "ipo")
        assert settings.lora.rank == 8 and settings.bf16 is False
        assert settings.learning_rate == DPOSettings().learning_rate
    assert launched == typed


def test_both_launchers_offer_the_same_settings_options() -> None:
    from workbench.cli import load_command

    for trainer, cls in (("sft", SFTSettings), ("dpo", DPOSettings)):
        expected = {flag for option in settings_options(cls) for flag in option.flags}
        command = load_command("train").commands[trainer]  # type: ignore[attr-defined]
        typed = {flag for param in command.params for flag in param.opts}
        sub = build_parser()._subparsers._group_actions[0].choices[trainer]  # noqa: SLF001
        launched = {flag for action in sub._actions for flag in action.option_strings}
        assert expected <= typed and expected <= launched, trainer


def test_a_settings_file_is_overridden_by_the_options_given(tmp_path: Path) -> None:
    file = tmp_path / "dpo.json"
    file.write_text('{"beta": 0.5, "seed": 3, "lora": {"rank": 4, "alpha": 8}}')
    _args, settings = parse(
        ["dpo", "--model", "m", "--out", "o", "--prefs", "p", "--settings", str(file)]
        + ["--beta", "0.2", "--target-modules", "q_proj,v_proj"]
    )
    assert (settings.beta, settings.seed) == (0.2, 3)
    assert (settings.lora.rank, settings.lora.alpha) == (4, 8)
    assert settings.lora.target_modules == ["q_proj", "v_proj"]


def test_bad_values_are_a_message_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["dpo", "--model", "m", "--out", "o", "--prefs", "p"]
    with pytest.raises(SystemExit) as exited:
        parse([*base, "--loss-type", "nonsense"])
    assert exited.value.code == 2
    assert "unknown DPO loss_type 'nonsense'" in capsys.readouterr().err
    typo = tmp_path / "typo.json"
    typo.write_text('{"betta": 0.2}')
    with pytest.raises(SystemExit):
        parse([*base, "--settings", str(typo)])
    assert "unknown DPOSettings field(s): betta" in capsys.readouterr().err


def _write_image(path: Path, seed: int) -> Path:
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_the_launcher_trains_sft_then_dpo_with_the_options_given(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from model.prompts import COLONOSCOPY_REPORT
    from model.training.__main__ import main
    from model.training.data import assistant_message, prompt_messages
    from model.training.trainers import read_training_card

    images = [_write_image(tmp_path / f"img{i}.png", i).name for i in range(2)]
    examples = tmp_path / "sft.jsonl"
    examples.write_text(
        "".join(
            json.dumps({"images": [image], "response": "Findings: a 6 mm sessile polyp."}) + "\n"
            for image in images
        )
    )
    sft_out = tmp_path / "sft"
    common = ["--model", str(tiny_model_dir), "--max-steps", "1", "--device", "cpu"]
    assert main(["sft", "--examples", str(examples), "--out", str(sft_out), *common]) == 0
    sft_card = read_training_card(sft_out)
    assert sft_card["data"]["n_train"] == 2 and sft_card["settings"]["max_steps"] == 1

    prefs = tmp_path / "train.jsonl"
    prefs.write_text(
        "".join(
            json.dumps(
                {
                    "prompt": prompt_messages(COLONOSCOPY_REPORT, 1),
                    "chosen": assistant_message("Findings: a 6 mm sessile polyp."),
                    "rejected": assistant_message("The mucosa is normal."),
                    "images": [image],
                }
            )
            + "\n"
            for image in images
        )
    )
    dpo_out = tmp_path / "dpo"
    argv = ["dpo", "--prefs", str(prefs), "--out", str(dpo_out), "--init-adapter", str(sft_out)]
    assert main([*argv, *common, "--beta", "0.2", "--loss-type", "ipo"]) == 0
    card = read_training_card(dpo_out)
    assert (card["settings"]["beta"], card["settings"]["loss_type"]) == (0.2, "ipo")
    assert card["init_adapter"] == str(sft_out)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["kind"] == "dpo"


def test_bad_sft_examples_name_the_row(tmp_path: Path) -> None:
    from model.training.data import TrainingDataError, load_sft_examples

    examples = tmp_path / "sft.jsonl"
    examples.write_text('{"images": ["a.png"], "response": "ok"}\n{"images": "a.png"}\n')
    with pytest.raises(TrainingDataError, match=r"sft\.jsonl row 2: field 'images'"):
        load_sft_examples(examples)
    with pytest.raises(TrainingDataError, match="SFT examples not found"):
        load_sft_examples(tmp_path / "missing.jsonl")
