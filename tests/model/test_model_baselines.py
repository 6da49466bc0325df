"""Retrieval, template and reference baselines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.baselines import DEFAULT_EMBEDDING, embed_images, most_frequent
from model.kinds import build_generator
from model.prompts import prompt_for_task
from model.requests import ReportRequest, TrainExample
from model.spec import SystemSpec


@pytest.fixture
def train(tmp_path: Path) -> list[TrainExample]:
    """Red-ish cases are adenomas, green-ish cases hyperplastic (synthetic)."""
    rows = []
    for i in range(4):
        red = tmp_path / f"red{i}.png"
        _solid(red, (200 + i * 10, 40, 40))
        rows.append(
            TrainExample(
                images=[red],
                report="Adenoma, 6 mm, NICE 2." if i < 3 else "Adenoma, 12 mm.",
                label="adenoma",
                key=f"red{i}",
            )
        )
        green = tmp_path / f"green{i}.png"
        _solid(green, (40, 200 + i * 10, 40))
        rows.append(
            TrainExample(
                images=[green], report="Hyperplastic polyp.", label="hyperplastic", key=f"g{i}"
            )
        )
    return rows


def _solid(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    rng = np.random.default_rng(sum(colour))
    pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (64, 64, 3)), 0, 255)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_embedding_is_normalised_and_separates_colours(tmp_path, train):
    red = embed_images(train[0].images)
    red2 = embed_images(train[2].images)
    green = embed_images(train[1].images)
    assert red.shape == (512 + 144 + 256,)
    assert abs(float(np.linalg.norm(red)) - 1.0) < 1e-5
    assert float(red @ red2) > float(red @ green)


def test_retrieval_returns_the_nearest_training_report(tmp_path, train):
    generator = build_generator(SystemSpec(kind="retrieval"), train)
    query_red = _solid(tmp_path / "q_red.png", (235, 45, 35))
    query_green = _solid(tmp_path / "q_green.png", (35, 215, 45))
    seen: list[int] = []
    red, green = generator.generate(
        [ReportRequest(key="a", images=[query_red]), ReportRequest(key="b", images=[query_green])],
        prompt_for_task("report"),
        progress=seen.append,
    )
    assert red.text.startswith("Adenoma")
    assert red.meta["nearest_key"].startswith("red")
    assert red.meta["embedding"] == DEFAULT_EMBEDDING
    assert green.text == "Hyperplastic polyp."
    assert green.meta["similarity"] > 0.5
    assert red.device == "baseline"
    assert seen == [1, 2]


def test_retrieval_works_on_video_requests(train, media_dir):
    generator = build_generator(SystemSpec(kind="retrieval", video_max_frames=4), train)
    (result,) = generator.generate(
        [ReportRequest(key="v", video=media_dir / "clip.mp4")], prompt_for_task("video-report")
    )
    assert result.text in {t.report for t in train}


def test_template_per_label_uses_the_label_most_frequent_report(tmp_path, train):
    generator = build_generator(SystemSpec(kind="template"), train)
    query_red = _solid(tmp_path / "q_red.png", (230, 50, 40))
    query_green = _solid(tmp_path / "q_green.png", (45, 225, 40))
    red, green = generator.generate(
        [ReportRequest(key="a", images=[query_red]), ReportRequest(key="b", images=[query_green])],
        prompt_for_task("report"),
    )
    assert red.text == "Adenoma, 6 mm, NICE 2."  # 3 of the 4 adenoma reports
    assert red.meta["predicted_label"] == "adenoma"
    assert green.text == "Hyperplastic polyp."


def test_template_without_labels_is_the_most_frequent_report(tmp_path, train):
    unlabelled = [TrainExample(images=t.images, report=t.report) for t in train]
    generator = build_generator(SystemSpec(kind="template"), unlabelled)
    results = generator.generate(
        [ReportRequest(key=f"c{i}", images=t.images) for i, t in enumerate(train[:3])],
        prompt_for_task("report"),
    )
    assert {r.text for r in results} == {"Hyperplastic polyp."}  # 4 of 8
    assert most_frequent(["b", "a", "b", "a"]) == "a"  # ties: alphabetical, fixed


def test_reference_returns_the_reference_text():
    generator = build_generator(SystemSpec(kind="reference"))
    results = generator.generate(
        [
            ReportRequest(key="a", reference=" Sessile polyp, 5 mm. "),
            ReportRequest(key="b", reference="Normal mucosa."),
        ],
        prompt_for_task("report"),
    )
    assert [r.text for r in results] == ["Sessile polyp, 5 mm.", "Normal mucosa."]
    with pytest.raises(ValueError, match="missing for: c"):
        generator.generate([ReportRequest(key="c")], prompt_for_task("report"))


def test_baselines_that_learn_need_the_train_split():
    with pytest.raises(ValueError, match="needs the train split"):
        build_generator(SystemSpec(kind="retrieval"), [])
    with pytest.raises(ValueError, match="unknown retrieval embedding"):
        build_generator(
            SystemSpec(kind="retrieval", embedding="resnet"),
            [TrainExample(images=[Path("x.png")], report="r")],
        )


def test_every_baseline_produces_output(train, media_dir):
    request = ReportRequest(key="c", images=[media_dir / "image3.png"], reference="Reference.")
    for kind in ("retrieval", "template", "reference"):
        generator = build_generator(SystemSpec(kind=kind), train)
        (result,) = generator.generate([request], prompt_for_task("report"))
        assert result.text.strip(), kind
