"""Generation through the real loader, processor and peft adapter on the tiny Qwen3-VL."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.generation import clear_model_cache, load_vlm, run_in_batches
from model.kinds import build_generator
from model.media import MediaReadError
from model.prompts import prompt_for_task
from model.requests import ReportRequest
from model.spec import SystemSpec


def _spec(model: Path, adapter: Path | None, kind: str = "vlm", **kw) -> SystemSpec:
    return SystemSpec(
        kind=kind,
        model=str(model),
        adapter=str(adapter) if adapter else None,
        max_new_tokens=kw.pop("max_new_tokens", 12),
        batch_size=kw.pop("batch_size", 4),
        **kw,
    )


def _image_requests(media_dir: Path, n: int = 5) -> list[ReportRequest]:
    return [ReportRequest(key=f"case-{i}", images=[media_dir / f"image{i}.png"]) for i in range(n)]


def test_image_generation_through_the_real_processor(tiny_model_dir, tiny_adapter_dir, media_dir):
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir))
    requests = _image_requests(media_dir, 3)
    requests.append(
        ReportRequest(key="two-images", images=[media_dir / "image0.png", media_dir / "image1.png"])
    )
    seen: list[int] = []
    results = generator.generate(requests, prompt_for_task("report"), progress=seen.append)
    assert len(results) == 4
    assert seen == [4]
    for result in results:
        assert result.device == "cpu"
        assert 1 <= result.output_tokens <= 12
        assert result.text
        assert result.meta["adapter"] == "on"
    # A 224x224 image is 49 image tokens at patch 16 / merge 2; two images add more tokens.
    assert results[3].prompt_tokens > results[0].prompt_tokens + 40
    assert results[3].meta["n_images"] == 2


def test_video_generation_with_timestamps(tiny_model_dir, tiny_adapter_dir, media_dir):
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, video_max_frames=6))
    requests = [
        ReportRequest(key="mp4", video=media_dir / "clip.mp4"),
        ReportRequest(key="frames", video=media_dir / "frames"),
        ReportRequest(key="image", images=[media_dir / "image2.png"]),
    ]
    results = generator.generate(requests, prompt_for_task("video-report"))
    mp4, frames, image = results
    # 40 frames at 10 fps = 4 s; 2 fps asks for 8 frames, capped at 6.
    assert len(mp4.meta["frame_indices"]) == 6
    assert mp4.meta["frame_indices"][0] == 0 and mp4.meta["frame_indices"][-1] == 39
    assert mp4.meta["video_fps"] == 10.0
    assert frames.meta["frame_source"] == "frames"
    assert "frame_indices" not in image.meta
    assert all(r.text and r.output_tokens for r in results)


def test_vqa_question_reaches_the_prompt(tiny_model_dir, tiny_adapter_dir, media_dir):
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, batch_size=1))
    image = media_dir / "image0.png"
    short, long = generator.generate(
        [
            ReportRequest(key="q1", images=[image], question="Size?"),
            ReportRequest(
                key="q2",
                images=[image],
                question="What is the size and the Paris class of the polyp in the sigmoid?",
            ),
        ],
        prompt_for_task("vqa"),
    )
    assert long.prompt_tokens > short.prompt_tokens


def test_adapter_on_and_off_differ_and_share_one_model(tiny_model_dir, tiny_adapter_dir, media_dir):
    tuned = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, kind="vlm"))
    base = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, kind="vlm-base"))
    assert tuned.loaded is base.loaded  # one copy of the weights
    prompt = prompt_for_task("report")
    requests = _image_requests(media_dir, 3)
    on = [r.text for r in tuned.generate(requests, prompt)]
    off = [r.text for r in base.generate(requests, prompt)]
    assert on != off
    # Disabling the adapter leaves it enabled afterwards.
    assert [r.text for r in tuned.generate(requests, prompt)] == on

    # The base system with the adapter disabled writes what the plain base model writes.
    plain = build_generator(_spec(tiny_model_dir, None, kind="vlm-base"))
    assert plain.loaded is not base.loaded
    assert [r.text for r in plain.generate(requests, prompt)] == off


def test_merged_adapter_matches_the_live_adapter(tiny_model_dir, tiny_adapter_dir, media_dir):
    live = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, max_new_tokens=6))
    merged = build_generator(
        _spec(tiny_model_dir, tiny_adapter_dir, merge_adapter=True, max_new_tokens=6)
    )
    assert not merged.loaded.has_adapter
    prompt = prompt_for_task("report")
    requests = _image_requests(media_dir, 2)
    assert [r.text for r in merged.generate(requests, prompt)] == [
        r.text for r in live.generate(requests, prompt)
    ]


def test_greedy_decoding_is_deterministic(tiny_model_dir, tiny_adapter_dir, media_dir):
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir))
    prompt = prompt_for_task("report")
    requests = _image_requests(media_dir, 3)
    torch.manual_seed(1)
    first = [r.text for r in generator.generate(requests, prompt)]
    torch.manual_seed(2)
    second = [r.text for r in generator.generate(requests, prompt)]
    assert first == second
    # A fresh load of the same folders writes the same reports.
    clear_model_cache()
    again = build_generator(_spec(tiny_model_dir, tiny_adapter_dir))
    assert [r.text for r in again.generate(requests, prompt)] == first


def test_batched_output_equals_one_at_a_time_in_order(tiny_model_dir, tiny_adapter_dir, media_dir):
    prompt = prompt_for_task("report")
    # Different image sizes give different prompt lengths, so left padding is exercised.
    requests = _image_requests(media_dir, 6)
    batched = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, batch_size=4))
    single = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, batch_size=1))
    seen: list[int] = []
    together = batched.generate(requests, prompt, progress=seen.append)
    alone = [single.generate([r], prompt)[0] for r in requests]
    assert seen == [4, 6]
    assert len({r.prompt_tokens for r in together}) > 1
    assert [r.text for r in together] == [r.text for r in alone]
    assert [r.prompt_tokens for r in together] == [r.prompt_tokens for r in alone]
    assert [r.meta["batch_size"] for r in together] == [4, 4, 4, 4, 2, 2]


def test_out_of_memory_halves_the_batch_and_keeps_every_item():
    calls: list[int] = []

    def run(batch: list[int]) -> list[int]:
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    sizes: list[int] = []
    out = run_in_batches(list(range(7)), 8, run, on_out_of_memory=sizes.append)
    assert out == [x * 10 for x in range(7)]
    assert sizes == [4, 2]
    assert calls[:3] == [7, 4, 2]


def test_out_of_memory_at_batch_one_raises_and_other_errors_pass_through():
    def always_oom(batch: list[int]) -> list[int]:
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        run_in_batches([1, 2, 3], 4, always_oom)

    def broken(batch: list[int]) -> list[int]:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        run_in_batches([1, 2], 2, broken)


def test_out_of_memory_inside_real_generation_is_retried(
    tiny_model_dir, tiny_adapter_dir, media_dir
):
    """The real generator shares the halving code: a forward hook raises OOM on big batches."""
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir, batch_size=4))
    prompt = prompt_for_task("report")
    requests = _image_requests(media_dir, 4)
    expected = [r.text for r in generator.generate(requests, prompt)]

    def refuse_big_batches(module, args, kwargs):
        ids = kwargs.get("input_ids")
        embeds = kwargs.get("inputs_embeds")
        rows = (ids if ids is not None else embeds).shape[0]
        if rows > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    language_model = generator.loaded.model.get_base_model().model.language_model
    handle = language_model.register_forward_pre_hook(refuse_big_batches, with_kwargs=True)
    try:
        results = generator.generate(requests, prompt)
    finally:
        handle.remove()
        generator.batch_size = 4
    assert [r.text for r in results] == expected
    assert [r.meta["batch_size"] for r in results] == [1, 1, 1, 1]


def test_unreadable_media_names_the_case_and_file(tiny_model_dir, tiny_adapter_dir, tmp_path):
    generator = build_generator(_spec(tiny_model_dir, tiny_adapter_dir))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(MediaReadError, match=r"case c7: cannot read image .*broken\.png"):
        generator.generate([ReportRequest(key="c7", images=[bad])], prompt_for_task("report"))
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"garbage" * 50)
    with pytest.raises(MediaReadError, match=r"case c8: cannot read video .*broken\.mp4"):
        generator.generate([ReportRequest(key="c8", video=clip)], prompt_for_task("report"))
    with pytest.raises(MediaReadError, match="case c9: no image or video"):
        generator.generate([ReportRequest(key="c9")], prompt_for_task("report"))


def test_missing_adapter_folder_is_a_clear_error(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="has no adapter_config.json"):
        load_vlm(str(tiny_model_dir), str(tmp_path), device="cpu")


@pytest.fixture(scope="module")
def tiny_qwen2_5_vl_dir(tmp_path_factory) -> Path:
    from model.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-qwen2.5-vl") / "model")


def test_qwen2_5_vl_family_generates_from_images_and_video(tiny_qwen2_5_vl_dir, media_dir):
    generator = build_generator(
        _spec(tiny_qwen2_5_vl_dir, None, kind="vlm-base", max_new_tokens=6, video_max_frames=4)
    )
    assert generator.loaded.model_type == "qwen2_5_vl"
    image, video = generator.generate(
        [
            ReportRequest(key="i", images=[media_dir / "image0.png"]),
            ReportRequest(key="v", video=media_dir / "clip.mp4"),
        ],
        prompt_for_task("report"),
    )
    assert image.text and video.text
    assert len(video.meta["frame_indices"]) == 4
    alone = generator.generate(
        [ReportRequest(key="v", video=media_dir / "clip.mp4")], prompt_for_task("report")
    )
    assert alone[0].text == video.text
