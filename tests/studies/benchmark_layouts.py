"""Writers of small datasets in each public layout (nothing is downloaded), and store look-ups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

from studies.demo.synthetic import write_mp4
from studies.store.db import Store
from studies.store.schema import Benchmark, Case

SMALL_SYNTHETIC = {"n_images": 6, "n_videos": 2, "seed": 3, "image_size": 96, "video_frames": 4}


def write_png(path: Path, seed: int = 0, size: int = 32, suffix_format: str | None = None) -> Path:
    """A small random picture; different seeds give different bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    fmt = suffix_format or ("JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def write_clip(path: Path, seed: int = 0, frames: int = 4, size: int = 64) -> Path:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(frames)]
    write_mp4(path, arrays, fps=4, codec="mpeg4")
    return path


def write_frames(folder: Path, seed: int = 0, frames: int = 3) -> Path:
    for index in range(frames):
        write_png(folder / f"frame_{index:04d}.jpg", seed=seed * 100 + index)
    return folder


def corrupt(path: Path) -> None:
    """Overwrite a media file with bytes no decoder accepts."""
    path.write_bytes(b"this is not media" * 10)


def cases_of(store: Store, benchmark: str) -> dict[str, Case]:
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == benchmark))
        if bench is None:
            return {}
        cases = session.scalars(select(Case).where(Case.benchmark_id == bench.id)).all()
        for case in cases:
            session.expunge(case)
        return {case.case_key: case for case in cases}


def benchmark_row(store: Store, name: str) -> Benchmark | None:
    with store.session() as session:
        bench = session.scalar(select(Benchmark).where(Benchmark.name == name))
        if bench is not None:
            session.expunge(bench)
        return bench


def write_table(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """rows as CSV, JSONL or XLSX by the suffix of `path`."""
    import csv
    import json

    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    elif path.suffix == ".xlsx":
        import openpyxl

        workbook = openpyxl.Workbook()
        sheet = workbook.active
        sheet.append(columns)
        for row in rows:
            sheet.append([row.get(column) for column in columns])
        workbook.save(path)
    else:  # pragma: no cover - a test bug
        raise ValueError(path.suffix)
    return path


POLYP_ROWS = [
    {
        "case_id": "c1",
        "images": "images/c1_a.png;images/c1_b.png",
        "report": "A 6 mm sessile polyp in the sigmoid colon, removed by cold snare.",
        "split": "train",
        "size_mm": "6",
        "location": "sigmoid colon",
        "paris": "Is",
        "histology": "TA",
    },
    {
        "case_id": "c2",
        "images": "images/c2.png",
        "report": "Two polyps: 1.2 cm pedunculated in the rectum, 4 mm flat in the cecum.",
        "split": "validation",
        "size_mm": "1.2 cm; 4",
        "location": "rectum; cecum",
        "paris": "0-Ip; IIb",
        "histology": "",
    },
    {
        "case_id": "c3",
        "images": "images/c3.png",
        "report": "Normal colonoscopy. No polyps.",
        "split": "test",
        "no_polyps": "yes",
    },
]


def write_polyp_reports(root: Path, fmt: str = "csv") -> Path:
    """A polyp-reports manifest dataset with three cases (one with two images)."""
    for seed, name in enumerate(["c1_a", "c1_b", "c2", "c3"]):
        write_png(root / "images" / f"{name}.png", seed=seed)
    write_table(root / f"manifest.{fmt}", [dict(row) for row in POLYP_ROWS])
    return root


def write_endorg(root: Path) -> Path:
    """EndoRG: Train|Test/<region>/<image> and train_reports.xlsx / test_reports.xlsx."""
    write_png(root / "Train" / "sigmoid" / "0001.jpg", seed=1)
    write_png(root / "Train" / "rectum" / "0002.jpg", seed=2)
    write_png(root / "Train" / "rectum" / "0003.jpg", seed=3)
    write_png(root / "Test" / "cecum" / "0100.jpg", seed=4)
    write_table(
        root / "train_reports.xlsx",
        [
            {"image_name": "0001.jpg", "report": "Sessile polyp of 5 mm in the sigmoid."},
            {"image_name": "0002.jpg;0003.jpg", "report": "Rectal polyp, 8 mm, pedunculated."},
        ],
    )
    write_table(
        root / "test_reports.xlsx",
        [{"image_name": "0100", "report": "Normal caecum, no polyps."}],
    )
    return root


KVASIR_ROWS = {
    "train": [
        {
            "img_id": "cl8k2u1pr1dzn0832dry8fwxi",
            "complexity": 1,
            "question": "Is there a polyp in the image?",
            "answer": "Yes, one polyp is visible.",
            "original": ["Are there any polyps? | 1"],
            "question_class": ["polyp_count"],
        },
        {
            "img_id": "cl8k2u1pr1dzn0832dry8fwxi",
            "complexity": 2,
            "question": "What size is the polyp and where is it?",
            "answer": "A 5-10 mm polyp in the lower left.",
            "original": ["What is the size of the polyp? | 5-10mm"],
            "question_class": ["polyp_size", "polyp_location"],
        },
        {
            "img_id": "cl8k2u1q21e2z0832bxxa3t1d",
            "complexity": 1,
            "question": "Is an instrument present?",
            "answer": "No instruments are visible.",
            "original": ["Are there any instruments? | none"],
            "question_class": ["instrument_presence"],
        },
    ],
    "test": [
        {
            "img_id": "clb0lbwzqdnxg086u9s3g8jwk",
            "complexity": 3,
            "question": "Which landmark is seen and is there any abnormality?",
            "answer": "The cecum is seen, with no abnormality.",
            "original": ["What landmark? | cecum"],
            "question_class": ["landmark", "abnormality"],
        }
    ],
}


def write_kvasir_vqa(root: Path, fmt: str = "parquet") -> Path:
    """Kvasir-VQA-x1: data/train-*.parquet, data/test-*.parquet (or train.jsonl / test.jsonl)
    and images/<img_id>.jpg."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = sorted({row["img_id"] for rows in KVASIR_ROWS.values() for row in rows})
    for seed, img_id in enumerate(ids):
        write_png(root / "images" / f"{img_id}.jpg", seed=seed)
    for split, rows in KVASIR_ROWS.items():
        if fmt == "parquet":
            path = root / "data" / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), path)
        else:
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (root / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return root


def iu_xray_annotation() -> dict:
    def entry(case_id: str, split: str, report: str) -> dict:
        return {
            "id": case_id,
            "report": report,
            "image_path": [f"{case_id}/0.png", f"{case_id}/1.png"],
            "split": split,
        }

    return {
        "train": [
            entry(
                "CXR2384_IM-0942",
                "train",
                "The heart size and pulmonary vascularity appear normal.",
            ),
            entry("CXR2926_IM-1328", "train", "No acute cardiopulmonary abnormality."),
        ],
        "val": [entry("CXR1000_IM-0003", "val", "Mild cardiomegaly. No effusion.")],
        "test": [entry("CXR3_IM-1384", "test", "Lungs are clear. No pneumothorax.")],
    }


def write_iu_xray(root: Path, annotation: dict | None = None) -> Path:
    """R2Gen IU X-Ray: annotation.json and images/<id>/0.png, 1.png."""
    import json

    annotation = annotation or iu_xray_annotation()
    seed = 0
    for entries in annotation.values():
        for entry in entries:
            for relative in entry["image_path"]:
                seed += 1
                write_png(root / "images" / relative, seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotation.json").write_text(json.dumps(annotation), encoding="utf-8")
    return root


def write_video_manifest(root: Path) -> Path:
    """Clips listed in manifest.csv (an mp4 and a frame folder) plus lesions.csv."""
    write_clip(root / "clips" / "a.mp4", seed=1)
    write_frames(root / "clips" / "b", seed=2)
    write_table(
        root / "manifest.csv",
        [
            {
                "case_id": "clip-a",
                "video": "clips/a.mp4",
                "split": "train",
                "report": "An 8 mm sessile polyp in the sigmoid colon.",
                "size_mm": "8",
                "location": "sigmoid",
                "paris": "Is",
                "histology": "TA",
            },
            {"case_id": "clip-b", "video": "clips/b", "split": "test"},
        ],
    )
    write_table(
        root / "lesions.csv",
        [
            {"case_id": "clip-b", "size_mm": "12", "location": "cecum", "paris": "IIa"},
            {"case_id": "clip-b", "size_mm": "3", "location": "rectum", "paris": "Is"},
        ],
    )
    return root


SUN_CASE_INFO = [
    {
        "case": "case1",
        "pathological diagnosis": "Low-grade adenoma",
        "size": "6mm",
        "location": "Sigmoid colon",
        "shape": "Is",
    },
    {
        "case": "case2",
        "pathological diagnosis": "Hyperplastic polyp",
        "size": "3mm",
        "location": "Rectum",
        "shape": "IIa",
    },
    {
        "case": "case3",
        "pathological diagnosis": "Sessile serrated lesion",
        "size": "15mm",
        "location": "Ascending colon",
        "shape": "IIa(LST-NG)",
    },
]


def write_sun_seg(root: Path) -> Path:
    """SUN-SEG frame folders (train, test easy/hard) and a case-information CSV."""
    write_frames(root / "TrainDataset" / "Frame" / "case1_1", seed=1)
    write_frames(root / "TrainDataset" / "Frame" / "case1_2", seed=2)
    write_frames(root / "TestEasyDataset" / "Seen" / "Frame" / "case2_1", seed=3)
    write_frames(root / "TestHardDataset" / "Unseen" / "Frame" / "case3_1", seed=4)
    write_table(root / "case_info.csv", [dict(row) for row in SUN_CASE_INFO])
    return root


REAL_COLON_LESIONS = [
    {
        "unique_object_id": "001-001_1",
        "unique_video_name": "001-001",
        "size [mm]": "4",
        "site": "rectum",
        "histology_class": "HP",
    },
    {
        "unique_object_id": "001-001_2",
        "unique_video_name": "001-001",
        "size [mm]": "12",
        "site": "trasnverse",
        "histology_class": "AD",
    },
    {
        "unique_object_id": "001-002_1",
        "unique_video_name": "001-002",
        "size [mm]": "7",
        "site": "caecum",
        "histology_class": "SSL",
    },
]


def write_real_colon(root: Path) -> Path:
    """REAL-colon: lesion_info.csv, video_info.csv, <video>_frames/ folders and an mp4."""
    write_frames(root / "001-001_frames", seed=1)
    write_clip(root / "001-002.mp4", seed=2)
    write_frames(root / "001-003_frames", seed=3)
    write_table(root / "lesion_info.csv", [dict(row) for row in REAL_COLON_LESIONS])
    write_table(
        root / "video_info.csv",
        [{"unique_video_name": name, "bbps": "8"} for name in ("001-001", "001-002", "001-003")],
    )
    return root
