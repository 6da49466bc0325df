"""What reaches generate(): greedy stated in full, the real Qwen3-VL processor settings, one
resize for training and inference, and what each result records of its decoding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.generation import clear_model_cache, processor_inputs
from model.kinds import build_generator
from model.media import build_messages, prepare_request
from model.prompts import prompt_for_task
from model.requests import ReportRequest
from model.spec import SystemSpec
from model.video import SampledVideo

REAL = Path(__file__).parent / "data" / "qwen3-vl-2b-instruct"


def _spec(model: Path, **kw) -> SystemSpec:
    return SystemSpec(
        kind="vlm", model=str(model), max_new_tokens=kw.pop("max_new_tokens", 16), **kw
    )


def _requests(media_dir: Path) -> list[ReportRequest]:
    return [ReportRequest(key=f"c{i}", images=[media_dir / f"image{i}.png"]) for i in range(3)]


def test_greedy_does_not_inherit_the_checkpoints_repetition_penalty(
    tiny_model_dir: Path, media_dir: Path, tmp_path: Path
) -> None:
    # The same weights with Qwen2.5-VL's kind of generation_config.json (a repetition penalty,
    # here large so that it visibly changes greedy text).
    penalised = tmp_path / "penalised"
    shutil.copytree(tiny_model_dir, penalised)
    config_path = penalised / "generation_config.json"
    config = json.loads(config_path.read_text())
    config.update(repetition_penalty=3.0, no_repeat_ngram_size=2)
    config_path.write_text(json.dumps(config))
    prompt = prompt_for_task("report")
    requests = _requests(media_dir)
    clean = build_generator(_spec(tiny_model_dir)).generate(requests, prompt)
    inherited = build_generator(_spec(penalised)).generate(requests, prompt)
    asked = build_generator(_spec(tiny_model_dir, repetition_penalty=3.0)).generate(
        requests, prompt
    )
    clear_model_cache()
    # The penalty changes this model's greedy text when a system asks for it ...
    assert [r.text for r in asked] != [r.text for r in clean]
    # ... and never when only the checkpoint's config has it (at ebb17df it was inherited).
    assert [r.text for r in inherited] == [r.text for r in clean]
    recorded = inherited[0].meta["generation_config"]
    assert recorded["repetition_penalty"] == 1.0 and recorded["no_repeat_ngram_size"] == 0
    assert recorded["do_sample"] is False and recorded["num_beams"] == 1
    assert asked[0].meta["generation_config"]["repetition_penalty"] == 3.0


def test_every_result_says_whether_it_was_cut_at_max_new_tokens(
    tiny_model_dir: Path, media_dir: Path
) -> None:
    prompt = prompt_for_task("report")
    results = build_generator(_spec(tiny_model_dir, max_new_tokens=3)).generate(
        _requests(media_dir), prompt
    )
    for result in results:
        reason = result.meta["finish_reason"]
        assert reason in {"stop", "length"}
        assert (reason == "length") == (result.output_tokens == 3 and reason != "stop")


def _real_qwen3_vl_processor(tiny_model_dir: Path):
    from transformers import AutoProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    tiny = AutoProcessor.from_pretrained(tiny_model_dir)
    video_config = json.loads((REAL / "video_preprocessor_config.json").read_text())
    video_config.pop("video_processor_type")
    return Qwen3VLProcessor(
        image_processor=tiny.image_processor,
        tokenizer=tiny.tokenizer,
        video_processor=Qwen3VLVideoProcessor(**video_config),
        chat_template=tiny.chat_template,
    )


def _clip(frames: int, height: int, width: int, fps: float) -> SampledVideo:
    from transformers.video_utils import VideoMetadata

    indices = np.linspace(0, fps * 60 - 1, frames).round().astype(int)
    metadata = VideoMetadata(
        total_num_frames=int(fps * 60),
        fps=fps,
        width=width,
        height=height,
        duration=60.0,
        frames_indices=indices,
    )
    pixels = np.zeros((frames, height, width, 3), dtype=np.uint8)
    return SampledVideo(frames=pixels, metadata=metadata, source="pyav")


def _video_tokens(processor, spec: SystemSpec, clip: SampledVideo) -> int:
    from model.media import PreparedRequest

    prepared = PreparedRequest(
        request=ReportRequest(key="clip", video=Path("clip.mp4")),
        messages=build_messages(prompt_for_task("video-report"), 0, True, None),
        images=[],
        video=clip,
    )
    grid = processor_inputs(processor, [prepared], spec)["video_grid_thw"][0].tolist()
    return int(grid[0] * grid[1] * grid[2] // 4)  # merge 2 x 2


def test_a_real_qwen3_vl_clip_costs_the_reference_number_of_visual_tokens(
    tiny_model_dir: Path,
) -> None:
    processor = _real_qwen3_vl_processor(tiny_model_dir)
    clip = _clip(16, 1080, 1920, 30.0)
    spec = _spec(tiny_model_dir)
    # The per-frame cap (qwen-vl-utils' preprocessing) is the default: 8 x 40 x 72 patches.
    assert _video_tokens(processor, spec, clip) == 5760
    # Without it a real checkpoint gets 8 x 58 x 104: about twice the tokens (ebb17df's path).
    uncapped = _spec(tiny_model_dir, video_cap_pixels_per_frame=False)
    assert _video_tokens(processor, uncapped, clip) == 12064
    # A clip pixel budget lowers it further.
    budget = _spec(tiny_model_dir, video_max_pixels=16 * 256 * 256)
    assert _video_tokens(processor, budget, clip) < 5760 / 4


def test_training_and_inference_resize_an_image_to_one_token_grid(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from model.training.settings import SFTSettings
    from model.training.trainers import _load

    image = tmp_path / "frame.png"
    Image.fromarray(np.full((1080, 1920, 3), 120, dtype=np.uint8)).save(image)
    budget = 448 * 448
    # Training: the processor the trainer is given.
    _model, train_processor = _load(tiny_model_dir, SFTSettings(image_max_pixels=budget), "cpu")
    text = train_processor.apply_chat_template(
        build_messages(prompt_for_task("report"), 1, False, None),
        tokenize=False,
        add_generation_prompt=True,
    )
    trained = train_processor(text=[text], images=[Image.open(image)], return_tensors="pt")
    # Inference: the generator's path, from the case's file.
    from transformers import AutoProcessor

    spec = _spec(tiny_model_dir, image_max_pixels=budget)
    prepared = prepare_request(
        ReportRequest(key="c", images=[image]), prompt_for_task("report"), spec, downscale=False
    )
    inferred = processor_inputs(AutoProcessor.from_pretrained(tiny_model_dir), [prepared], spec)
    assert trained["image_grid_thw"].tolist() == inferred["image_grid_thw"].tolist()
    # (ebb17df pre-resized with PIL for inference: [1, 20, 38] against training's [1, 20, 36].)
    assert inferred["image_grid_thw"].tolist() == [[1, 20, 36]]


@pytest.mark.parametrize("kind", ["vlm", "vlm-base"])
def test_new_decoding_fields_belong_to_model_kinds(kind: str, tiny_model_dir: Path) -> None:
    from model.kinds import check_spec
    from model.spec import SpecError

    check_spec(SystemSpec(kind=kind, model="m", adapter="a", repetition_penalty=1.1))
    with pytest.raises(SpecError, match="'video_cap_pixels_per_frame' only applies"):
        check_spec(SystemSpec(kind="retrieval", video_cap_pixels_per_frame=False))
    with pytest.raises(SpecError, match="'repetition_penalty' must be positive"):
        SystemSpec(kind=kind, model="m", repetition_penalty=0)


def test_media_are_read_ahead_on_a_worker_while_batches_run(media_dir: Path) -> None:
    import threading

    from model.generation import MediaPrefetch, prompt_cost

    requests = _requests(media_dir) * 3
    seen: list[tuple[int, str]] = []

    def read(request: ReportRequest) -> str:
        seen.append((id(request), threading.current_thread().name))
        return request.key

    media = MediaPrefetch(requests, read, ahead=2)
    assert media.get(0) == "c0"
    # Asking for the first request already queued the next two, on the media thread.
    media.get(1)
    assert len(seen) >= 3 and all(name.startswith("media") for _, name in seen)
    assert media.submitted <= 1 + 1 + 2
    media.release([0, 1])
    assert media.get(0) == "c0"  # a retry after an out-of-memory reads again
    media.close()
    # Length order: plain images first, then more images, then videos.
    video = ReportRequest(key="v", video=media_dir / "clip.mp4")
    two = ReportRequest(key="2", images=[media_dir / "image0.png", media_dir / "image1.png"])
    one = _requests(media_dir)[0]
    assert sorted([video, two, one], key=prompt_cost) == [one, two, video]


def test_a_static_cache_writes_the_same_greedy_text(tiny_model_dir: Path, media_dir: Path) -> None:
    prompt = prompt_for_task("report")
    requests = _requests(media_dir)
    dynamic = build_generator(_spec(tiny_model_dir)).generate(requests, prompt)
    static = build_generator(_spec(tiny_model_dir, static_cache=True)).generate(requests, prompt)
    assert [r.text for r in static] == [r.text for r in dynamic]
    assert static[0].meta["generation_config"]["cache_implementation"] == "static"
