"""Kvasir-VQA-x1 and EndoRG folders written exactly in their published layouts.

Text, ids, field names and folder trees come from the public releases, cited where they
are used; images are synthesised (no release ships them in a public repository), and a
value no public source gives per row is marked as assumed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmark_layouts import write_png, write_table

# --- Kvasir-VQA-x1 ------------------------------------------------------------------
# Fields: github:simula/Kvasir-VQA-x1 @ 67903e5252e6d69c45a649088fdbb6ec49049640, README.md,
# "Dataset Structure": img_id, complexity, question, answer, original, question_class; the
# Hugging Face split names train / test and the `image` column: github:simula/
# MediaEval-Medico-2025 @ 8c332641cc598328bcc0c9d5abe3d21c424d7adc, README.md (the Subtask 2
# snippet drops complexity, answer, original, question_class and keeps img_id, image,
# question).
KVASIR_IMAGE_URL = "https://huggingface.co/datasets/SimulaMet/Kvasir-VQA-x1/resolve/main/images/"
KVASIR_FIELDS = (
    "image",
    "img_id",
    "complexity",
    "question",
    "answer",
    "original",
    "question_class",
)

# The first three train rows, img_id / question / answer verbatim from the output of the
# sanity-check cell of MediaEval-Medico-2025 Task_1_Sample_Notebook.ipynb (same commit).
# Their complexity, question_class and original are not published per row: assumed from the
# question text. The fourth train row and the test row are schema-only (assumed text); the
# test row's image is a train image, as the real test split shares images with train; the
# test row's image and question are the README's usage example.
KVASIR_TRAIN = [
    {
        "img_id": "clb0kvxvm90y4074yf50vf5nq",
        "complexity": 3,
        "question": (
            "Are there any abnormalities, polyps, or anatomical landmarks visible in the image?"
        ),
        "answer": (
            "Evidence of oesophagitis is present with no polyps identified and the z-line is "
            "visible."
        ),
        "original": [
            {"q": "Are there any abnormalities in the image?", "a": "Oesophagitis"},
            {"q": "How many polyps are in the image?", "a": "0"},
            {"q": "Are there any anatomical landmarks in the image?", "a": "Z-line"},
        ],
        "question_class": ["abnormality_presence", "polyp_count", "landmark_presence"],
    },
    {
        "img_id": "cl8k2u1r71foz083278j63qnm",
        "complexity": 2,
        "question": ("What procedure is depicted in the image and what type of polyp is observed?"),
        "answer": "Evidence of a colonoscopy with a paris iia polyp noted",
        "original": [
            {"q": "What type of procedure is the image taken from?", "a": "Colonoscopy"},
            {"q": "What type of polyp is present?", "a": "Paris iia"},
        ],
        "question_class": ["procedure_type", "polyp_type"],
    },
    {
        "img_id": "cl8k2u1qa1ekz08324rek2qcv",
        "complexity": 3,
        "question": (
            "Have all polyps been removed, is there any text present, and where is the "
            "abnormality located in the image?"
        ),
        "answer": (
            "Polyps remain present, text is visible, and the abnormality is located in the "
            "central and upper-center regions."
        ),
        "original": [
            {"q": "Have all polyps been removed?", "a": "No"},
            {"q": "Is there text?", "a": "Yes"},
            {"q": "Where in the image is the abnormality?", "a": "Center; Upper-center"},
        ],
        "question_class": ["polyp_removal_status", "text_presence", "abnormality_location"],
    },
    {
        "img_id": "cl8k2u1qa1ekz08324rek2qcv",
        "complexity": 1,
        "question": "Is there any text in the image?",
        "answer": "Yes, text is present in the image.",
        "original": [{"q": "Is there text?", "a": "Yes"}],
        "question_class": ["text_presence"],
    },
]
KVASIR_TEST = [
    {
        "img_id": "clb0kvxvm90y4074yf50vf5nq",
        "complexity": 1,
        "question": "What is shown in the image?",
        "answer": "The image shows oesophagitis near the z-line.",
        "original": [{"q": "What is shown?", "a": "Oesophagitis"}],
        "question_class": ["abnormality_presence"],
    }
]
KVASIR_SPLITS = {"train": KVASIR_TRAIN, "test": KVASIR_TEST}


def kvasir_image_ids() -> list[str]:
    return sorted({row["img_id"] for rows in KVASIR_SPLITS.values() for row in rows})


def write_kvasir_images(root: Path, folder: str = "images") -> None:
    """`images/<img_id>.jpg`, as the Hugging Face repository holds them (README l.70)."""
    for seed, img_id in enumerate(kvasir_image_ids()):
        write_png(root / folder / f"{img_id}.jpg", seed=seed)


def kvasir_hf_row(row: dict) -> dict:
    """A row as the Hugging Face parquet holds it: `original` as JSON text, the image URL."""
    values = {**row, "image": KVASIR_IMAGE_URL + f"{row['img_id']}.jpg"}
    values["original"] = json.dumps(row["original"])
    return {field: values[field] for field in KVASIR_FIELDS}


def write_kvasir_hf(root: Path, splits: dict[str, list[dict]] | None = None) -> Path:
    """The Hugging Face snapshot: data/{split}-00000-of-00001.parquet and images/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_kvasir_images(root)
    schema = pa.schema(
        [
            ("image", pa.string()),
            ("img_id", pa.string()),
            ("complexity", pa.int64()),
            ("question", pa.string()),
            ("answer", pa.string()),
            ("original", pa.string()),
            ("question_class", pa.list_(pa.string())),
        ]
    )
    for split, rows in (splits or KVASIR_SPLITS).items():
        path = root / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([kvasir_hf_row(row) for row in rows], schema=schema)
        pq.write_table(table, path)
    return root


def write_kvasir_csv(root: Path) -> Path:
    """The CSV export a researcher writes from the parquet: `df.to_csv("data/train.csv")`
    (pandas' unnamed index column; `question_class` as pandas writes a list column)."""
    import pandas as pd

    write_kvasir_hf(root)
    for split in KVASIR_SPLITS:
        parquet = root / "data" / f"{split}-00000-of-00001.parquet"
        pd.read_parquet(parquet).to_csv(root / "data" / f"{split}.csv")
        parquet.unlink()
    return root


def kvasir_jsonl_line(row: dict, image: str) -> str:
    """One line as the README's "Download Original Images" snippet writes it (README
    l.132-142 at the commit above): messages (user "<image>question", assistant answer) and
    images [path]."""
    record = {
        "messages": [
            {"role": "user", "content": f"<image>{row['question']}"},
            {"role": "assistant", "content": row["answer"]},
        ],
        "images": [image],
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def write_kvasir_jsonl(root: Path, image_dir: str | None = None, augmented: bool = False) -> Path:
    """`Kvasir-VQA-x1-{split}.jsonl` next to `images/`, as the README writes them: the image
    path is `os.path.abspath(d_path/images)/<img_id>.jpg`; `image_dir` stands for the folder
    written on another machine (the sample notebook writes `Kvasir-VQA-x1/images`, relative
    to its working folder). With `augmented`, also the README's `-aug.jsonl` files over
    `image_weak_augmented/`."""
    write_kvasir_images(root)
    img_dir = image_dir or os.path.abspath(root / "images")
    for split, rows in KVASIR_SPLITS.items():
        text = "".join(kvasir_jsonl_line(row, f"{img_dir}/{row['img_id']}.jpg") for row in rows)
        (root / f"Kvasir-VQA-x1-{split}.jsonl").write_text(text, encoding="utf-8")
    if augmented:
        aug_dir = (root / "image_weak_augmented").resolve()
        for seed, img_id in enumerate(kvasir_image_ids(), start=50):
            write_png(aug_dir / f"{img_id}.jpg", seed=seed)
        for split, rows in KVASIR_SPLITS.items():
            text = "".join(
                kvasir_jsonl_line(row, str(aug_dir / f"{row['img_id']}.jpg")) for row in rows
            )
            (root / f"Kvasir-VQA-x1-{split}-aug.jsonl").write_text(text, encoding="utf-8")
    return root


# --- EndoRG -------------------------------------------------------------------------
# Folder tree: github:javadmozaffari/EndoRG @ 25a7330f9629737a6ac30d8d8ba5637466e90515,
# README.md "Folder Structure": EndoRGData/{Train,Test}/<10 region folders> with
# Train/train_reports.xlsx and Test/test_reports.xlsx. The region names are the README's.
# Report texts: the excerpts per region in Figures/Fig3.png of that commit (verbatim). The
# sheet's column names and the image file names are not published: `image`, `report` and
# `img_NNNN.jpg` are assumed.
ENDORG_REGIONS = (
    "esophagus",
    "fundus_and_cardia",
    "body",
    "antrum",
    "duodenum",
    "ascending_colon",
    "transverse_colon",
    "descending_colon",
    "sigmoid",
    "rectum",
)
ENDORG_UPPER_GI = ENDORG_REGIONS[:5]
ENDORG_REPORTS = {
    "esophagus": (
        "The lower third of the esophagus shows of severe esophagitis Grade C-D. "
        "Biopsies were taken."
    ),
    "fundus_and_cardia": (
        "A small to moderate Hiatal Hernia was observed and a small polyp was identified and "
        "removed with forceps."
    ),
    "body": "The body of the stomach appeared normal during the endoscopic examination.",
    "antrum": (
        "An ulcerative lesion was identified in the antrum. Biopsy samples were taken to rule "
        "out a possible malignant lesion."
    ),
    "duodenum": "The first part of the duodenum (bulb) reveals a small, clean-based ulcer.",
    "ascending_colon": "The ascending colon appears to be normal. No abnormalities were observed.",
    "transverse_colon": (
        "A single, small polyp was observed in the transverse colon and removed accompanied by "
        "forceps."
    ),
    "descending_colon": (
        "One linear polyps were observed in the descending colon, and biopsy samples were taken."
    ),
    "sigmoid": (
        "A semi-sessile polyp was identified in the sigmoid colon. Multiple biopsies were "
        "obtained for additional assessment."
    ),
    "rectum": "A diminutive polyp was identified at 10 cm from the anus and removed via forceps.",
}
# One train image per region; the test set holds one colon and one upper-GI image.
ENDORG_TEST_REGIONS = ("rectum", "duodenum")


def endorg_image(split: str, region: str) -> str:
    number = ENDORG_REGIONS.index(region) + (1 if split == "train" else 101)
    return f"img_{number:04d}.jpg"


def write_endorg_published(root: Path, sheets_in_root: bool = False) -> Path:
    """EndoRGData as the README's tree shows it (all ten region folders in Train/ and Test/,
    each sheet inside its split folder); `sheets_in_root` puts the sheets in the dataset
    folder itself instead, the older layout the loader also reads."""
    layout = {"train": ENDORG_REGIONS, "test": ENDORG_TEST_REGIONS}
    for split, regions in layout.items():
        folder = root / split.capitalize()
        for region in ENDORG_REGIONS:
            (folder / region).mkdir(parents=True, exist_ok=True)
        rows = []
        for seed, region in enumerate(regions):
            name = endorg_image(split, region)
            write_png(folder / region / name, seed=seed + (0 if split == "train" else 40))
            rows.append({"image": name, "report": ENDORG_REPORTS[region]})
        sheet = (root if sheets_in_root else folder) / f"{split}_reports.xlsx"
        write_table(sheet, rows, columns=["image", "report"])
    return root
