"""Prompts, system specs, fingerprints, video sampling and the tiny model builder."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from model.kinds import build_generator, check_spec, fingerprint, folder_content_hash
from model.prompts import PROMPTS, PromptTemplate, get_prompt, prompt_for_task
from model.spec import SpecError, SystemSpec
from model.video import VideoReadError, sample_indices, sample_video


def test_prompts_are_versioned_and_hashed():
    report = prompt_for_task("report")
    assert report is PROMPTS["colonoscopy-report"]
    for section in ("Findings", "Impression", "Recommendation", "Paris", "NICE", "JNET"):
        assert section in report.user
    assert prompt_for_task("vqa").user_text("How big?") == "Question: How big?\nAnswer:"
    assert prompt_for_task("cxr-report").name == "cxr-findings"
    assert prompt_for_task("video-report") is report
    changed = dataclasses.replace(report, version="2")
    assert changed.hash != report.hash and len(report.hash) == 64
    assert PromptTemplate(**dataclasses.asdict(report)).hash == report.hash
    with pytest.raises(ValueError, match="unknown benchmark task 'caption'"):
        prompt_for_task("caption")
    with pytest.raises(ValueError, match="unknown prompt"):
        get_prompt("nope")


def test_spec_round_trips_through_json_and_validates():
    spec = SystemSpec(kind="vlm", model="Qwen/Qwen3-VL-2B-Instruct", adapter="/a", batch_size=4)
    again = SystemSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    with pytest.raises(ValueError, match="unknown system field"):
        SystemSpec.from_dict({"kind": "vlm", "model": "m", "temprature": 0.7})
    with pytest.raises(SpecError, match="system kind 'gpt'"):
        check_spec(SystemSpec(kind="gpt"))
    with pytest.raises(SpecError, match="needs 'model'"):
        check_spec(SystemSpec(kind="vlm"))
    with pytest.raises(SpecError, match="needs 'remote_model'") as missing:
        check_spec(SystemSpec(kind="remote", remote_url="http://x/v1"))
    assert missing.value.fields == ("remote_model",)
    with pytest.raises(SpecError, match="'dtype'"):
        SystemSpec(kind="vlm", model="m", dtype="int3")
    with pytest.raises(SpecError, match="'embedding' only applies to retrieval systems, not vlm"):
        check_spec(SystemSpec(kind="vlm", model="m", embedding="colour-texture-v1"))
    with pytest.raises(ValueError, match="needs the train split"):
        build_generator(SystemSpec(kind="template"))


def test_fingerprint_covers_what_changes_the_output(tmp_path):
    prompt = prompt_for_task("report")
    base = SystemSpec(kind="vlm", model="Qwen/Qwen3-VL-2B-Instruct", device="cpu")
    fp = fingerprint(base, prompt)
    # Runtime-only settings do not change it.
    assert fingerprint(dataclasses.replace(base, remote_concurrency=9), prompt) == fp
    # A model's batch size does: bf16 greedy text on a GPU depends on the batch's shape
    # (at ebb17df it was runtime-only, so one fingerprint could hold either text).
    assert fingerprint(dataclasses.replace(base, batch_size=64), prompt) != fp
    retrieval = SystemSpec(kind="retrieval")
    assert fingerprint(dataclasses.replace(retrieval, batch_size=64), prompt) == fingerprint(
        retrieval, prompt
    )
    # Decoding settings, pixel budgets, prompt and model do.
    assert fingerprint(dataclasses.replace(base, repetition_penalty=1.05), prompt) != fp
    assert fingerprint(dataclasses.replace(base, video_max_pixels=10**6), prompt) != fp
    assert fingerprint(dataclasses.replace(base, video_cap_pixels_per_frame=False), prompt) != fp
    assert fingerprint(dataclasses.replace(base, max_new_tokens=64), prompt) != fp
    assert fingerprint(base, prompt_for_task("vqa")) != fp
    assert fingerprint(dataclasses.replace(base, model="Qwen/Qwen2.5-VL-3B"), prompt) != fp
    assert fingerprint(dataclasses.replace(base, dtype="bfloat16"), prompt) != fp


def test_fingerprint_hashes_folder_content(tmp_path):
    prompt = prompt_for_task("report")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    spec = SystemSpec(kind="vlm", model="m", adapter=str(adapter), device="cpu")
    fp = fingerprint(spec, prompt)
    # A copy elsewhere has the same content, hence the same fingerprint.
    copy = tmp_path / "copy"
    shutil.copytree(adapter, copy)
    assert fingerprint(dataclasses.replace(spec, adapter=str(copy)), prompt) == fp
    assert folder_content_hash(copy) == folder_content_hash(adapter)
    # Retraining into the same folder changes it.
    (adapter / "adapter_model.safetensors").write_bytes(b"\x01" * 64)
    assert fingerprint(spec, prompt) != fp
    # The base system ignores the adapter it disables.
    base = dataclasses.replace(spec, kind="vlm-base")
    assert fingerprint(base, prompt) == fingerprint(
        dataclasses.replace(base, adapter=str(copy)), prompt
    )
    assert fingerprint(base, prompt) == fingerprint(dataclasses.replace(base, adapter=None), prompt)


def test_sample_indices_by_fps_and_cap():
    # 10 s at 10 fps sampled at 2 fps -> 20 frames, capped at 16, spread over the whole clip.
    indices = sample_indices(100, 10.0, 2.0, 16)
    assert len(indices) == 16 and indices[0] == 0 and indices[-1] == 99
    assert len(sample_indices(100, 10.0, 1.0, 16)) == 10
    assert len(sample_indices(3, 10.0, 0.1, 16)) == 2  # never fewer than two frames
    assert sample_indices(0, 10.0, 2.0, 16) == []


def test_sample_video_file_and_frame_folder(media_dir):
    clip = sample_video(media_dir / "clip.mp4", fps=2.0, max_frames=16)
    assert clip.source == "pyav"
    assert clip.frames.shape == (8, 120, 160, 3)
    assert clip.frame_indices == sample_indices(40, 10.0, 2.0, 16)
    assert clip.metadata.timestamps[-1] == pytest.approx(3.9)
    folder = sample_video(media_dir / "frames", fps=10.0, max_frames=4)
    assert folder.source == "frames"
    assert folder.frames.shape == (4, 96, 128, 3)
    assert folder.frame_indices == [0, 4, 7, 11]


def test_long_clips_are_sampled_from_keyframes(media_dir, monkeypatch):
    import model.video as video

    monkeypatch.setattr(video, "LONG_CLIP_FRAMES", 10)
    clip = sample_video(media_dir / "clip.mp4", fps=2.0, max_frames=4)
    assert clip.source == "pyav-keyframes"
    assert 2 <= len(clip.frames) <= 4
    assert clip.frame_indices == sorted(clip.frame_indices)
    assert clip.frame_indices[0] == 0


def test_unreadable_videos_are_named(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 100)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        sample_video(bad)
    with pytest.raises(VideoReadError, match="does not exist"):
        sample_video(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoReadError, match="has no image files"):
        sample_video(empty)


def test_tiny_model_folder_is_a_real_qwen3_vl(tiny_model_dir, tiny_adapter_dir):
    from peft import PeftConfig
    from transformers import AutoConfig, AutoProcessor

    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert config.model_type == "qwen3_vl"
    assert config.text_config.hidden_size == 64 and config.text_config.num_hidden_layers == 2
    assert config.vision_config.deepstack_visual_indexes == [0, 1]
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") == config.image_token_id
    assert "<|vision_start|><|image_pad|><|vision_end|>" in processor.chat_template
    assert json.loads((tiny_model_dir / "medvision_tiny.json").read_text())["synthetic"] is True
    adapter = PeftConfig.from_pretrained(tiny_adapter_dir)
    assert adapter.peft_type == "LORA"


def test_packaged_chat_template_is_the_trl_qwen3_vl_template():
    from importlib.resources import files

    ours = (files("model") / "templates" / "qwen3_vl.jinja").read_text(encoding="utf-8")
    spec = __import__("importlib.util").util.find_spec("trl")
    if spec is None:
        pytest.skip("TRL is not installed")
    theirs = Path(spec.origin).parent / "chat_templates" / "qwen3_vl.jinja"
    assert ours == theirs.read_text(encoding="utf-8")
