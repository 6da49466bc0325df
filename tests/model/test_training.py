"""LoRA SFT and DPO on the tiny Qwen3-VL with the real TRL trainers (CPU, a few steps)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.prompts import COLONOSCOPY_REPORT
from model.training import (
    DEFAULT_TARGET_MODULES,
    DPOSettings,
    LoraSettings,
    SFTExample,
    SFTSettings,
    TrainingDataError,
    assistant_message,
    load_preference_dataset,
    prompt_messages,
    read_training_card,
    train_dpo,
    train_sft,
)

GOOD = "Findings: a sessile polyp of 6 mm in the sigmoid colon, Paris 0-Is, NICE type 2."
BAD = "The mucosa is normal. No bleeding."


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("train-images")
    paths = []
    for seed in range(3):
        pixels = np.random.default_rng(seed).integers(0, 255, (48, 48, 3), dtype=np.uint8)
        path = folder / f"img{seed}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def _rows(images: list[Path]) -> list[dict]:
    return [
        {
            "prompt": prompt_messages(COLONOSCOPY_REPORT, 1),
            "chosen": assistant_message(GOOD),
            "rejected": assistant_message(BAD),
            "images": [str(path)],
        }
        for path in images
    ]


def _logits(model_dir: Path, image: Path, adapter: Path | None) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    text = processor.apply_chat_template(
        prompt_messages(COLONOSCOPY_REPORT, 1), tokenize=False, add_generation_prompt=True
    )
    inputs = processor(text=[text], images=[Image.open(image)], return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits[0, -1]


def test_settings_defaults_and_round_trip() -> None:
    settings = DPOSettings(beta=0.2, loss_type="ipo", lora=LoraSettings(rank=4))
    assert settings.lora.target_modules == DEFAULT_TARGET_MODULES
    assert "language_model" in DEFAULT_TARGET_MODULES and "visual" not in DEFAULT_TARGET_MODULES
    again = DPOSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings
    with pytest.raises(ValueError, match="unknown DPOSettings field"):
        DPOSettings.from_dict({"betta": 1})
    with pytest.raises(ValueError, match="unknown DPO loss_type 'nope'"):
        DPOSettings(loss_type="nope").validate()
    with pytest.raises(ValueError, match="epochs > 0 or max_steps > 0"):
        SFTSettings(epochs=0).validate()


def test_lora_targets_text_projections_only(tiny_model_dir: Path) -> None:
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraSettings(rank=2).to_peft())
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert all("language_model" in n for n in names)
    assert any("mlp.down_proj" in n for n in names) and any("self_attn.q_proj" in n for n in names)


def test_dpo_trains_saves_card_and_changes_outputs(
    tiny_model_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    out = tmp_path / "dpo"
    settings = DPOSettings(max_steps=3, batch_size=2, learning_rate=1e-3, seed=3)
    result = train_dpo(
        tiny_model_dir, _rows(images), settings, out, progress=lambda s, t, _l: seen.append((s, t))
    )
    losses = [e["loss"] for e in result.log if "loss" in e]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)  # the adapter starts as a no-op
    assert losses[-1] < losses[0]
    assert result.reward_accuracy is not None and 0.0 <= result.reward_accuracy <= 1.0
    assert seen[-1] == (3, 3)
    assert (out / "adapter_model.safetensors").is_file()
    card = read_training_card(out)
    assert card["kind"] == "dpo" and card["base_model"] == str(tiny_model_dir)
    assert card["settings"]["beta"] == 0.1 and card["settings"]["seed"] == 3
    assert card["data"]["hash"] == result.data_hash and card["data"]["n_train"] == 3
    assert card["results"]["final_loss"] == pytest.approx(losses[-1])
    # The card says what was in effect: TRL's DPO turns dropout off (the settings say 0.05).
    effect = card["in_effect"]
    assert effect["lora"]["dropout_configured"] == pytest.approx(0.05)
    assert effect["lora"]["dropout_in_effect"] == 0.0 and effect["trl"]["disable_dropout"]
    assert effect["world_size"] == 1 and effect["effective_batch"] == 2
    readme = (out / "README.md").read_text()
    assert "research use only" in readme and result.data_hash in readme
    base = _logits(tiny_model_dir, images[0], None)
    tuned = _logits(tiny_model_dir, images[0], out)
    assert not torch.allclose(base, tuned, atol=1e-5)


def test_sft_trains_then_dpo_continues_from_it(
    tiny_model_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    examples = [SFTExample([p], GOOD, key=f"k{i}") for i, p in enumerate(images)]
    sft = train_sft(
        tiny_model_dir,
        examples,
        SFTSettings(max_steps=3, learning_rate=1e-3, lora=LoraSettings(rank=4, alpha=8)),
        tmp_path / "sft",
        validation=examples[:1],
    )
    losses = [e["loss"] for e in sft.log if "loss" in e]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert "eval_loss" in sft.eval_metrics and math.isfinite(sft.eval_metrics["eval_loss"])
    card = read_training_card(tmp_path / "sft")
    assert card["kind"] == "sft" and card["settings"]["lora"]["rank"] == 4
    assert card["data"]["n_validation"] == 1
    assert not torch.allclose(
        _logits(tiny_model_dir, images[1], None),
        _logits(tiny_model_dir, images[1], tmp_path / "sft"),
        atol=1e-5,
    )
    dpo = train_dpo(
        tiny_model_dir,
        _rows(images),
        DPOSettings(max_steps=2, batch_size=3, learning_rate=1e-3),
        tmp_path / "dpo",
        init_adapter=tmp_path / "sft",
    )
    # The reference is a frozen copy of the SFT adapter, so the first loss is log 2 again.
    first = next(e["loss"] for e in dpo.log if "loss" in e)
    assert first == pytest.approx(math.log(2), abs=1e-3)
    dpo_card = read_training_card(tmp_path / "dpo")
    assert dpo_card["init_adapter"] == str(tmp_path / "sft")
    # The continued adapter keeps its own rank and alpha, whatever the DPO settings say.
    assert dpo_card["settings"]["lora"]["rank"] == 16
    assert dpo_card["in_effect"]["lora"]["rank"] == 4
    assert dpo_card["in_effect"]["lora"]["alpha"] == 8
    assert not (tmp_path / "dpo" / "ref").exists()  # only the trained adapter is saved


def test_a_nonfinite_loss_stops_the_run_even_after_finite_ones() -> None:
    from transformers import TrainerControl, TrainerState

    from model.training.trainers import TrainingDiverged, _callback, check_finite

    log: list[dict] = []
    recorder = _callback(None, log)
    state, control = TrainerState(), TrainerControl()
    state.global_step = 1
    recorder.on_log(None, state, control, logs={"loss": 0.69, "grad_norm": 1.0})
    assert not control.should_training_stop
    state.global_step = 2
    recorder.on_log(None, state, control, logs={"loss": float("nan"), "grad_norm": float("inf")})
    assert control.should_training_stop
    assert log[-1]["loss"] is None  # JSON-safe in the log, but not forgotten
    with pytest.raises(TrainingDiverged, match=r"step 2: loss, grad_norm is not finite"):
        check_finite(log, "sft")


def test_a_diverged_run_saves_no_adapter(
    tiny_model_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    from model.training.trainers import TrainingDiverged

    examples = [SFTExample([p], GOOD, key=f"k{i}") for i, p in enumerate(images)]
    out = tmp_path / "diverged"
    with pytest.raises(TrainingDiverged, match="no adapter was saved"):
        train_sft(
            tiny_model_dir,
            examples,
            SFTSettings(
                max_steps=6, learning_rate=1e30, logging_steps=1, lora=LoraSettings(rank=4)
            ),
            out,
        )
    assert not (out / "adapter_model.safetensors").exists()
    assert read_training_card(out) is None


def test_bad_preference_data_is_named(images: list[Path], tmp_path: Path) -> None:
    rows = _rows(images)
    del rows[1]["rejected"]
    with pytest.raises(TrainingDataError, match="rows row 2: missing field 'rejected'"):
        load_preference_dataset(rows)
    rows = _rows(images)
    rows[0]["images"] = [str(tmp_path / "missing.png")]
    with pytest.raises(TrainingDataError, match="row 1: image file not found"):
        load_preference_dataset(rows)
    rows = _rows(images)
    rows[2]["images"] = []
    with pytest.raises(TrainingDataError, match="1 image block.*0 file"):
        load_preference_dataset(rows)
    bad = tmp_path / "train.jsonl"
    bad.write_text(json.dumps(_rows(images)[0]) + "\n{not json\n")
    with pytest.raises(TrainingDataError, match=r"train.jsonl line 2: not valid JSON"):
        load_preference_dataset(bad)
    with pytest.raises(TrainingDataError, match="preference data not found"):
        load_preference_dataset(tmp_path / "nowhere")


def test_refuses_to_overwrite_an_adapter(
    tiny_model_dir: Path, tiny_adapter_dir: Path, images: list[Path]
) -> None:
    with pytest.raises(FileExistsError, match="already holds an adapter"):
        train_dpo(tiny_model_dir, _rows(images), DPOSettings(max_steps=1), tiny_adapter_dir)


def test_dependency_floors_are_those_the_code_needs() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    floor = next(d for d in dependencies if d.startswith("datasets"))
    # model/training/data.py builds features with datasets.List, new in datasets 4.0.
    assert (
        "from datasets import"
        in (Path(__file__).resolve().parents[2] / "model" / "training" / "data.py").read_text()
    )
    assert floor.replace(" ", "").startswith("datasets>=4")


def test_two_processes_save_one_adapter_from_every_rank(
    tiny_model_dir: Path, images: list[Path], tmp_path: Path
) -> None:
    """torchrun, two CPU processes (gloo): every rank takes the save path (under ZeRO-3 or
    FSDP the gather is a collective, so a rank-0-only save would hang or save nothing),
    rank 0 writes one adapter, and the card says two processes were in effect."""
    import socket
    import subprocess
    import sys

    examples = tmp_path / "sft.jsonl"
    examples.write_text(
        "".join(json.dumps({"images": [str(p)], "response": GOOD}) + "\n" for p in images + images)
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "ddp"
    done = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(port), "-m", "model.training", "sft",
            "--model", str(tiny_model_dir), "--examples", str(examples), "--out", str(out),
            "--max-steps", "2", "--rank", "4", "--alpha", "8",
        ],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    card = read_training_card(out)
    assert card["in_effect"]["world_size"] == 2 and card["in_effect"]["effective_batch"] == 2
    from safetensors.torch import load_file

    weights = load_file(out / "adapter_model.safetensors")
    assert weights and all(t.numel() > 0 for t in weights.values())
    assert not (out / "ref").exists()
