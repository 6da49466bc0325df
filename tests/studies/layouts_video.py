"""SUN-SEG and REAL-colon folders in their published layouts, for the polyp-video tests.

Text, ids, column names, file names and folder trees come from the public releases (cited
at each builder); the pictures are synthesised. A frame's pixel value encodes its position
in the clip (`frame_value`), so a test can read back the order a sampler produced.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image


def frame_value(index: int) -> int:
    """The grey level of the frame at position `index` of a synthesised clip."""
    return (index * 9 + 5) % 256


def write_frame(path: Path, index: int, size: int = 16) -> Path:
    """A solid grey frame holding `frame_value(index)`; PNG bytes (lossless) whatever the
    suffix, so the value reads back exactly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size, size, 3), frame_value(index), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def read_frame_value(path_or_array: object) -> int:
    array = np.asarray(path_or_array)
    if array.ndim == 0:
        with Image.open(str(path_or_array)) as image:
            array = np.asarray(image.convert("RGB"))
    return int(round(float(array.mean())))


# --- SUN-SEG ------------------------------------------------------------------------
# github:GewelsJI/VPS @ 53ab0a3fd540e836d0ff797bbdca366488b85b38, docs/INFO_POSITIVE_CASES.md:
# the heading, the legends and the table header verbatim, and these rows of its 285 verbatim
# (cell padding shortened).
SUN_INFO_HEAD = """# Information of Positive Cases in our SUN-SEG

## Abbreviation Illustration

- Shape
    - Ip - Pedunculated
    - Isp - Semipedunculated
    - Is - Sessile
    - IIa - Slightly elevated

- Location
    - C - Cecum
    - A - Ascending colon
    - T - Transverse colon
    - D - Descending colon
    - S - Sigmoid colon
    - R - Rectum

- Pathological diagnosis
    - LA - Low-grade adenoma
    - HA - High-grade adenoma
    - HP - Hyperplastic polyp
    - TSA - Traditional serrated adenoma
    - SSL - Sessile serrated lesion
    - IC - Invasive cancer (T1b)

## Statistic Table

"""
SUN_INFO_HEADER = [
    "ID",
    "Frames",
    "Duration (s)",
    "Shape",
    "Size",
    "Location",
    "Pathological diagnosis",
]
SUN_INFO_ROWS = [
    ["1_1", "150", "5.00", "Is", "6mm", "C", "Low-grade adenoma"],
    ["1_2", "216", "7.20", "Is", "6mm", "C", "Low-grade adenoma"],
    ["1_3", "161", "5.37", "Is", "6mm", "C", "Low-grade adenoma"],
    ["2_3", "150", "5.00", "Is", "18mm", "R", "High-grade adenoma"],
    ["3_1", "198", "6.60", "IIa", "3mm", "A", "Low-grade adenoma"],
    ["4", "80", "2.67", "Is", "4mm", "S", "Low-grade adenoma"],
    ["10_1", "213", "7.10", "IIa", "3mm", "T", "Low-grade adenoma"],
    ["18_1", "91", "3.03", "Is", "2mm", "S", "Hyperplastic polyp"],
    ["24_1", "150", "5.00", "Ip", "15mm-", "S", "Low-grade adenoma"],
    ["51_1", "175", "5.83", "IIa(LST-NG)", "15mm-", "C", "Low-grade adenoma"],
    ["63_1", "326", "10.87", "Is", "7mm", "R", "Invasive cancer (T1b)"],
]
# Where each clip lies. From the trees of docs/DATA_DESCRIPTION.md (github:GewelsJI/VPS @
# 11d4408daccb0a60f647ae18e4a1f21893e99585: TrainDataset/Frame/case1_1 and case1_3,
# TestEasyDataset/Frame/case2_3, TestHardDataset/Frame/case1_2) and its later Seen/Unseen
# split (the same file @ 4b2d87e8265aee8343ab47cc6b675a6df21a97fc: TestEasyDataset/
# {Seen,Unseen}/Frame/case2_3|case3_1, TestHardDataset/{Seen,Unseen}/Frame/case1_2|case10_1;
# VPS's test script evaluates 'TestEasyDataset/Seen', 'TestEasyDataset/Unseen',
# 'TestHardDataset/Seen', 'TestHardDataset/Unseen'). The training clips 4, 18_1, 24_1, 51_1
# and 63_1 are placed in TrainDataset by assumption.
SUN_FOLDERS = {
    "case1_1": "TrainDataset",
    "case1_3": "TrainDataset",
    "case4": "TrainDataset",
    "case18_1": "TrainDataset",
    "case24_1": "TrainDataset",
    "case51_1": "TrainDataset",
    "case63_1": "TrainDataset",
    "case2_3": "TestEasyDataset/Seen",
    "case3_1": "TestEasyDataset/Unseen",
    "case1_2": "TestHardDataset/Seen",
    "case10_1": "TestHardDataset/Unseen",
}
# A frame name of the release (DATA_DESCRIPTION.md, the bbox example's file_name), with
# its `_aN` segment and `imageNNNN` number; VPS's loader orders frames by those two numbers
# (lib/dataloader/dataloader.py). Segments a9 and a10 in one clip are an assumption.
SUN_FRAME_STEM = (
    "case_M_20181001100941_0U62372100109341_1_005_001-1_a{segment}_ayy_image{number:04d}"
)
SUN_FRAMES = [(9, 1), (9, 2), (10, 1)]


def sun_info_markdown(rows: list[list[str]] | None = None) -> str:
    rows = SUN_INFO_ROWS if rows is None else rows
    lines = ["| " + " | ".join(SUN_INFO_HEADER) + " |"]
    lines.append("|" + "|".join("-" * (len(h) + 2) for h in SUN_INFO_HEADER) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return SUN_INFO_HEAD + "\n".join(lines) + "\n"


def write_sun_info_csv(path: Path, rows: list[list[str]] | None = None) -> Path:
    """The Markdown table converted cell for cell, with the same header."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUN_INFO_HEADER)
        writer.writerows(SUN_INFO_ROWS if rows is None else rows)
    return path


def write_sun_seg(root: Path, case_table: str | None = "markdown") -> Path:
    """SUN-SEG as released (`SUN-SEG/` with Frame and GT folders); `case_table` adds the
    published case information as `INFO_POSITIVE_CASES.md` ("markdown"), as `case_info.csv`
    ("csv"), or not at all (None: the release as downloaded)."""
    for case, subset in SUN_FOLDERS.items():
        for position, (segment, number) in enumerate(SUN_FRAMES):
            stem = SUN_FRAME_STEM.format(segment=segment, number=number)
            write_frame(root / subset / "Frame" / case / f"{stem}.jpg", position)
            write_frame(root / subset / "GT" / case / f"{stem}.png", 0)
    if case_table == "markdown":
        (root / "INFO_POSITIVE_CASES.md").write_text(sun_info_markdown(), encoding="utf-8")
    elif case_table == "csv":
        write_sun_info_csv(root / "case_info.csv")
    return root


# --- REAL-colon ---------------------------------------------------------------------
# github:cosmoimd/real-colon-dataset @ 0af0e370a13ad60ace064c06eda2f1001f1eec1d:
# README.md "Data Format": folders `{SSS}-{VVV}_frames` and their annotations, the VOC
# format of each annotation file, and the columns of video_info.csv and lesion_info.csv;
# polyp_detection/export_coco_format.py: the frame name `002-001_18185.jpg` (no padding),
# the `_annotations` folders, frames sorted by int(name.split("_")[-1]), and the split
# (NUM_TRAIN_VIDEOS_PER_SET = 10, NUM_VALID_VIDEOS_PER_SET = 2, the rest test).
# The lesion rows' values (sizes, site words, histology_extended) are not published per
# row and are assumed (`sigma`, a site word of SurgViVQA's labels built on REAL-colon
# videos, is tested on its own).
REAL_VIDEO_INFO_COLUMNS = [
    "unique_video_name",
    "age",
    "sex",
    "endoscope_brand",
    "fps",
    "num_frames",
    "num_lesions",
    "bbps",
]
REAL_LESION_COLUMNS = [
    "unique_object_id",
    "unique_video_name",
    "size [mm]",
    "site",
    "histology_extended",
    "histology_class",
]
REAL_FRAMES = 12
REAL_VIDEOS = {
    # video: (fps, bbps, {lesion id: boxed frame numbers})
    "001-001": ("29.97", "7", {"001-001_1": range(3, 6), "001-001_2": range(8, 10)}),
    "001-011": ("25", "8", {"001-011_1": range(0, 2)}),
    "001-013": ("29.97", "6", {"001-013_1": range(5, 7), "001-013_2": range(9, 12)}),
    "002-001": ("30", "9", {}),
}
REAL_LESION_ROWS = [
    ["001-001_1", "001-001", "4", "sigmoid", "tubular adenoma low grade dysplasia", "AD"],
    ["001-001_2", "001-001", "3", "rectum", "hyperplastic polyp", "HP"],
    ["001-011_1", "001-011", "12", "ascending", "sessile serrated lesion", "SSL"],
    ["001-013_1", "001-013", "5", "transverse", "normal mucosa", "NO POLYP"],
    ["001-013_2", "001-013", "6", "descending", "lipoma", "OTHER"],
]
_VOC = """<annotation>
    </version_fmt>1.0<version_fmt>
    <folder>{video}_frames</folder>
    <filename>{video}_{t}.jpg</filename>
    <source>
        <database>cosmoimd</database>
        <release>v1.0_20230228</release>
    </source>
    <size>
        <width>1240</width>
        <height>1080</height>
        <depth>3</depth>
    </size>
{objects}</annotation>
"""
_VOC_OBJECT = """    <object>
        <name>lesion</name>
        <unique_id>{unique_id}</unique_id>
        <box_id>{box}</box_id>
        <bndbox>
            <xmin>540</xmin>
            <xmax>1196</xmax>
            <ymin>852</ymin>
            <ymax>1070</ymax>
        </bndbox>
    </object>
"""


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_real_colon(root: Path, lesion_rows: list[list[str]] | None = None) -> Path:
    """REAL-colon as released: `SSS-VVV_frames/SSS-VVV_<t>.jpg` (unpadded t),
    `SSS-VVV_annotations/SSS-VVV_<t>.xml`, video_info.csv and lesion_info.csv."""
    rows = REAL_LESION_ROWS if lesion_rows is None else lesion_rows
    info = []
    for video, (fps, bbps, lesions) in REAL_VIDEOS.items():
        for t in range(REAL_FRAMES):
            write_frame(root / f"{video}_frames" / f"{video}_{t}.jpg", t)
            objects = "".join(
                _VOC_OBJECT.format(unique_id=unique_id, box=box)
                for box, (unique_id, frames) in enumerate(lesions.items(), start=1)
                if t in frames
            )
            xml = root / f"{video}_annotations" / f"{video}_{t}.xml"
            xml.parent.mkdir(parents=True, exist_ok=True)
            xml.write_text(_VOC.format(video=video, t=t, objects=objects), encoding="utf-8")
        count = sum(1 for row in rows if row[1] == video)
        info.append([video, "61", "F", "Olympus", fps, str(REAL_FRAMES), str(count), bbps])
    _write_csv(root / "video_info.csv", REAL_VIDEO_INFO_COLUMNS, info)
    _write_csv(root / "lesion_info.csv", REAL_LESION_COLUMNS, rows)
    return root
