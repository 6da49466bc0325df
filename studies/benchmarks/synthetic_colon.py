"""`synthetic-colon`: the seeded SYNTHETIC colonoscopy benchmark (studies.demo.synthetic).

An empty folder is filled by the generator (options n_images, n_videos, seed, image_size,
video_frames, fps); a folder that already holds manifest.jsonl is loaded as it is. Every
case is marked synthetic in its meta, and the benchmark itself is synthetic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.benchmarks.base import (
    CaseRecord,
    LoadResult,
    RowProblem,
    normalise_split,
)
from studies.benchmarks.tables import (
    media_problem,
    read_table,
    split_list,
    text_value,
    unique_records,
)
from studies.demo.synthetic import MANIFEST, PARAMS_FILE, generate_synthetic_colon

GENERATED_NAMES = {"images", "videos", PARAMS_FILE, "README.txt"}
GENERATION_OPTIONS = ("n_images", "n_videos", "seed", "image_size", "video_frames", "fps")


@dataclass(frozen=True)
class SyntheticColonLoader:
    name: str = "synthetic-colon"
    task: str = "report"
    synthetic: bool = True
    description: str = (
        "SYNTHETIC colonoscopy-like images and clips with reports written from a seeded "
        "ground truth (0-3 polyps: size, location, Paris, NICE/JNET, histology). Not patient data."
    )
    # The importer may create the dataset folder: this loader fills an empty one.
    creates_root: bool = True

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        unknown = sorted(set(options) - set(GENERATION_OPTIONS))
        if unknown:
            return LoadResult(
                [],
                [
                    RowProblem(
                        str(root),
                        None,
                        f"unknown option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(GENERATION_OPTIONS)}",
                    )
                ],
            )
        try:
            options = {key: int(value) for key, value in options.items()}
        except (TypeError, ValueError):
            return LoadResult(
                [],
                [RowProblem(str(root), None, f"options must be whole numbers, got {options}")],
            )
        manifest = root / MANIFEST
        if not manifest.exists():
            # Leftovers of an interrupted generation (the manifest is written last) are
            # regenerated; anything else in the folder is the user's and is left alone.
            if any(p.name not in GENERATED_NAMES for p in root.iterdir()):
                return LoadResult(
                    [],
                    [
                        RowProblem(
                            str(root),
                            None,
                            f"the folder holds files but no {MANIFEST}; give an empty folder "
                            "to generate the synthetic benchmark in",
                        )
                    ],
                )
            try:
                generate_synthetic_colon(root, **options)
            except (TypeError, ValueError) as exc:
                return LoadResult([], [RowProblem(str(root), None, f"bad option: {exc}")])
        else:
            problem = _options_mismatch(root, options)
            if problem:
                return LoadResult([], [problem])
        return load_manifest(root)


def _options_mismatch(root: Path, options: dict[str, Any]) -> RowProblem | None:
    """The data in root was made with other parameters than the options ask for."""
    params_path = root / PARAMS_FILE
    if not options or not params_path.exists():
        return None
    params = json.loads(params_path.read_text(encoding="utf-8"))
    differ = [
        f"{key}={options[key]} (the folder has {params.get(key)})"
        for key in options
        if params.get(key) is not None and int(options[key]) != int(params[key])
    ]
    if not differ:
        return None
    return RowProblem(
        PARAMS_FILE,
        None,
        f"the folder was generated with other parameters: {'; '.join(differ)}; "
        "use an empty folder for new parameters",
    )


def load_manifest(root: Path) -> LoadResult:
    """Cases from the synthetic manifest.jsonl, with every row checked."""
    table = read_table(root / MANIFEST, root)
    problems = list(table.problems)
    numbered: list[tuple[int, CaseRecord]] = []
    for row_number, row in table.rows:
        case_id = text_value(row.get("case_id"))
        split = normalise_split(row.get("split"))
        modality = text_value(row.get("modality")) or "image"
        report = text_value(row.get("report"))
        row_problems = []
        if not case_id:
            row_problems.append("case_id is empty")
        if split is None:
            row_problems.append(f"unknown split {row.get('split')!r}; use train, val or test")
        if not report:
            row_problems.append("report is empty")
        if modality == "image":
            media = split_list(row.get("images"))
        elif modality == "video":
            media = [text_value(row.get("video"))] if text_value(row.get("video")) else []
        else:
            media = []
            row_problems.append(f"unknown modality {modality!r}")
        if modality in ("image", "video") and not media:
            row_problems.append(f"no {'images' if modality == 'image' else 'video'} given")
        for relative in media:
            why = media_problem(root, relative, modality)
            if why:
                row_problems.append(why)
        findings = row.get("findings")
        if findings is not None and not isinstance(findings, dict):
            row_problems.append("findings must be an object")
        if row_problems:
            problems.extend(RowProblem(table.file, row_number, m) for m in row_problems)
            continue
        meta: dict[str, Any] = {"synthetic": True, "seed": row.get("seed")}
        for key in ("truth", "lesion_boxes", "surveillance_rule", "frames", "fps"):
            if key in row:
                meta[key] = row[key]
        numbered.append(
            (
                row_number,
                CaseRecord(
                    case_key=case_id,
                    split=split or "",
                    modality=modality,
                    media=media,
                    references=[report],
                    findings=findings,
                    meta=meta,
                ),
            )
        )
    unique, duplicates = unique_records(table.file, numbered, "case_id")
    problems.extend(duplicates)
    return LoadResult(unique, problems)


LOADER = SyntheticColonLoader()
