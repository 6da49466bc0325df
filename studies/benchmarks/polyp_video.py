"""`polyp-video`: colonoscopy clips (mp4, or frame folders) with per-lesion findings.

Three layouts, tried in this order:

* A manifest (manifest.csv / .jsonl / .xlsx, or the option `manifest`) with `video` (an mp4
  file or a frame folder, relative to the root), `split`, optional `case_id`, `report` and
  the structured fields of polyp-reports (`size_mm; location; paris; histology ...`).
* SUN-SEG: frame folders `TrainDataset/Frame/<case>/`, `TestEasyDataset/{Seen,Unseen}/Frame/
  <case>/`, `TestHardDataset/...` (train and test splits).
* REAL-colon: `lesion_info.csv` (unique_object_id, unique_video_name, size [mm], site,
  histology_class, optional paris) with `<video>_frames/` folders or `<video>.mp4` clips; the
  videos have no split of their own, so the option `split` (default test) names it.

Per-lesion findings come from a lesion table: REAL-colon's lesion_info.csv, or a SUN-SEG-style
case-information CSV (`case_info.csv`, or the option `lesions`) with a case column and size,
location, shape/Paris and pathological diagnosis columns. Several rows per case are several
lesions. Where a clip has no free-text report, its reference is a plain summary of the
findings (meta `reference: "findings"`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.benchmarks.base import (
    VIDEO_SUFFIXES,
    CaseRecord,
    LoadResult,
    RowProblem,
    normalise_split,
)
from studies.benchmarks.findings import (
    findings_summary,
    make_findings,
    make_lesion,
    normalise_lst,
)
from studies.benchmarks.polyp_reports import KNOWN_COLUMNS, findings_from_row
from studies.benchmarks.tables import (
    TABLE_SUFFIXES,
    display_name,
    media_problem,
    missing_columns,
    read_table,
    text_value,
    unique_records,
)

VIDEO_COLUMNS = ("video", "clip", "frames", "video_path", "path")
CASE_COLUMNS = (
    "unique_video_name",
    "case",
    "case_id",
    "case_name",
    "video",
    "video_id",
    "id",
    "name",
)
LESION_COLUMN_NAMES = {
    "size_mm": ("size_mm", "size [mm]", "size (mm)", "size"),
    "location": ("location", "site", "segment"),
    "paris": ("paris", "paris class", "paris classification", "shape", "morphology"),
    "histology": (
        "histology",
        "histology_class",
        "pathological diagnosis",
        "pathology",
        "diagnosis",
    ),
    "lst": ("lst",),
    "nice": ("nice",),
    "jnet": ("jnet",),
    "kudo": ("kudo",),
}
SUN_SETS = {
    "TrainDataset": "train",
    "TestEasyDataset": "test",
    "TestHardDataset": "test",
    "ValDataset": "val",
}
# Histology words in lesion tables that are no polyp class of the schema.
NO_CLASS_HISTOLOGY = {"other", "no polyp", "normal", "normal mucosa"}


@dataclass(frozen=True)
class PolypVideoLoader:
    name: str = "polyp-video"
    task: str = "video-report"
    synthetic: bool = False
    description: str = (
        "Colonoscopy clips (mp4 or frame folders: manifest, SUN-SEG or REAL-colon layout) "
        "with per-lesion findings (size mm, location, Paris class, histology)."
    )

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        default_split = normalise_split(options.get("split", "test"))
        if default_split is None:
            return LoadResult(
                [],
                [RowProblem(str(root), None, f"unknown split option {options.get('split')!r}")],
            )
        lesion_path = _lesion_table_path(root, options)
        manifest = _manifest_path(root, options)
        if manifest is not None:
            return _load_manifest(root, manifest, lesion_path)
        if any((root / name).is_dir() for name in SUN_SETS):
            return _load_sun_seg(root, lesion_path)
        if (root / "lesion_info.csv").is_file():
            return _load_real_colon(root, root / "lesion_info.csv", default_split)
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    "no manifest.csv/.jsonl/.xlsx, no SUN-SEG TrainDataset/TestEasyDataset/"
                    "TestHardDataset folders and no REAL-colon lesion_info.csv in this folder",
                )
            ],
        )


def _manifest_path(root: Path, options: dict[str, Any]) -> Path | None:
    if options.get("manifest"):
        return root / str(options["manifest"])
    for suffix in TABLE_SUFFIXES:
        if (root / f"manifest{suffix}").is_file():
            return root / f"manifest{suffix}"
    return None


def _lesion_table_path(root: Path, options: dict[str, Any]) -> Path | None:
    if options.get("lesions"):
        return root / str(options["lesions"])
    for name in ("lesion_info.csv", "case_info.csv", "case_information.csv", "lesions.csv"):
        if (root / name).is_file():
            return root / name
    return None


# --- lesion tables ------------------------------------------------------------------


@dataclass
class LesionTable:
    """Lesions per case key, and the case keys whose rows had problems."""

    lesions: dict[str, list[dict[str, Any]]]
    bad_cases: set[str]
    problems: list[RowProblem]
    file: str


def read_lesion_table(root: Path, path: Path) -> LesionTable:
    table = read_table(path, root)
    result = LesionTable({}, set(), list(table.problems), table.file)
    if not table.rows:
        return result
    case_column = next((c for c in CASE_COLUMNS if c in table.columns), None)
    if case_column is None:
        result.problems.append(
            missing_columns(table, [("unique_video_name", "case", "case_id", "video")])
            or RowProblem(table.file, None, "missing a case column")
        )
        return result
    columns = {
        field: next((c for c in names if c in table.columns), None)
        for field, names in LESION_COLUMN_NAMES.items()
    }
    if not any(columns.values()):
        result.problems.append(
            RowProblem(
                table.file,
                None,
                "missing required column: none of size, location/site, paris/shape, histology",
            )
        )
        return result
    for row_number, row in table.rows:
        case = text_value(row.get(case_column))
        if not case:
            result.problems.append(RowProblem(table.file, row_number, f"{case_column} is empty"))
            continue
        values = {f: row.get(c) for f, c in columns.items() if c is not None}
        raw_histology = text_value(values.get("histology")).lower()
        if raw_histology in NO_CLASS_HISTOLOGY:
            values["histology"] = None
        paris_text = text_value(values.get("paris"))
        bracket = re.search(r"\((LST[^)]*)\)", paris_text, re.IGNORECASE)
        try:
            lesion = make_lesion(**values)
            if bracket and lesion["lst"] is None:
                lesion["lst"] = normalise_lst(bracket.group(1))
        except ValueError as exc:
            result.problems.append(RowProblem(table.file, row_number, str(exc)))
            result.bad_cases.add(case)
            continue
        result.lesions.setdefault(case, []).append(lesion)
    return result


def _lesions_for(table: LesionTable | None, case: str) -> tuple[list[dict[str, Any]] | None, bool]:
    """(lesions, bad): matched by the exact case name, else by the name before the last '_'
    (SUN-SEG clip case1_3 belongs to lesion case1)."""
    if table is None:
        return None, False
    for key in (case, case.rsplit("_", 1)[0]):
        if key in table.bad_cases:
            return None, True
        if key in table.lesions:
            return table.lesions[key], False
    return None, False


def _findings(lesions: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if lesions is None:
        return None
    return make_findings(lesions)


def _modality(root: Path, relative: str) -> str:
    return "frames" if (root / relative).is_dir() else "video"


# --- manifest -----------------------------------------------------------------------


def _load_manifest(root: Path, path: Path, lesion_path: Path | None) -> LoadResult:
    table = read_table(path, root)
    if table.problems and not table.rows:
        return LoadResult([], table.problems)
    missing = missing_columns(table, [VIDEO_COLUMNS, ("split",)])
    if missing:
        return LoadResult([], [*table.problems, missing])
    lesion_table = read_lesion_table(root, lesion_path) if lesion_path else None
    problems = list(table.problems) + (lesion_table.problems if lesion_table else [])
    video_column = next(c for c in VIDEO_COLUMNS if c in table.columns)
    numbered: list[tuple[int, CaseRecord]] = []
    for row_number, row in table.rows:
        messages = []
        relative = text_value(row.get(video_column))
        split = normalise_split(row.get("split"))
        if not relative:
            messages.append(f"no clip in column {video_column!r}")
        if split is None:
            messages.append(f"unknown split {row.get('split')!r}; use train, val or test")
        modality = "video"
        if relative:
            modality = _modality(root, relative)
            why = media_problem(root, relative, modality)
            if why:
                messages.append(why)
        case_id = text_value(row.get("case_id")) or str(Path(relative).with_suffix(""))
        try:
            findings = findings_from_row(row)
        except (ValueError, TypeError) as exc:
            messages.append(str(exc))
            findings = None
        lesions, bad = _lesions_for(lesion_table, case_id)
        if bad:
            messages.append(f"its lesions in {lesion_table.file} have problems (see there)")
        elif lesions is not None:
            if findings is not None:
                messages.append(f"findings given both here and in {lesion_table.file}")
            findings = _findings(lesions)
        if messages:
            problems.extend(RowProblem(table.file, row_number, m) for m in messages)
            continue
        meta = {
            key: text_value(value)
            for key, value in row.items()
            if key and key not in KNOWN_COLUMNS and key not in VIDEO_COLUMNS and text_value(value)
        }
        numbered.append(
            (row_number, _record(case_id, split or "", modality, relative, row, findings, meta))
        )
    records, duplicates = unique_records(table.file, numbered, "case_id")
    return LoadResult(records, problems + duplicates)


def _record(
    case_id: str,
    split: str,
    modality: str,
    relative: str,
    row: dict[str, Any],
    findings: dict[str, Any] | None,
    meta: dict[str, Any],
) -> CaseRecord:
    report = text_value(row.get("report"))
    if not report and findings is not None:
        report = findings_summary(findings)
        meta = {**meta, "reference": "findings"}
    return CaseRecord(
        case_key=case_id,
        split=split,
        modality=modality,
        media=[relative],
        references=[report] if report else [],
        findings=findings,
        meta=meta,
    )


# --- SUN-SEG ------------------------------------------------------------------------


def _load_sun_seg(root: Path, lesion_path: Path | None) -> LoadResult:
    lesion_table = read_lesion_table(root, lesion_path) if lesion_path else None
    problems = list(lesion_table.problems) if lesion_table else []
    shown = lesion_table.file if lesion_table else "SUN-SEG"
    numbered: list[tuple[int, CaseRecord]] = []
    keys_seen: dict[str, str] = {}
    position = 0
    for set_name, split in SUN_SETS.items():
        base = root / set_name
        if not base.is_dir():
            continue
        for frame_root in sorted(base.rglob("Frame")):
            if not frame_root.is_dir():
                continue
            subset = frame_root.parent.relative_to(root).as_posix()
            for folder in sorted(p for p in frame_root.iterdir() if p.is_dir()):
                position += 1
                relative = display_name(root, folder)
                case = folder.name
                why = media_problem(root, relative, "frames")
                if why:
                    problems.append(RowProblem(relative, None, why))
                    continue
                if case in keys_seen:
                    problems.append(
                        RowProblem(
                            relative, None, f"duplicate case {case!r} (also {keys_seen[case]})"
                        )
                    )
                    continue
                keys_seen[case] = relative
                lesions, bad = _lesions_for(lesion_table, case)
                if bad:
                    problems.append(
                        RowProblem(relative, None, f"its lesions in {shown} have problems")
                    )
                    continue
                meta: dict[str, Any] = {"layout": "sun-seg", "subset": subset}
                numbered.append(
                    (
                        position,
                        _record(case, split, "frames", relative, {}, _findings(lesions), meta),
                    )
                )
    if not numbered and not problems:
        problems.append(RowProblem(str(root), None, "no frame folders under */Frame/"))
    return LoadResult([record for _, record in numbered], problems)


# --- REAL-colon ---------------------------------------------------------------------


def _real_colon_media(root: Path, video: str) -> str | None:
    candidates = [f"{video}_frames", video, f"videos/{video}_frames", f"videos/{video}"]
    candidates += [
        f"{base}{suffix}" for base in (video, f"videos/{video}") for suffix in VIDEO_SUFFIXES
    ]
    for relative in candidates:
        if (root / relative).exists():
            return relative
    return None


def _load_real_colon(root: Path, lesion_path: Path, split: str) -> LoadResult:
    lesion_table = read_lesion_table(root, lesion_path)
    problems = list(lesion_table.problems)
    table = read_table(lesion_path, root)
    videos: dict[str, int] = {}
    if "unique_video_name" not in table.columns:
        problems.append(
            missing_columns(table, [("unique_video_name",)])
            or RowProblem(table.file, None, "missing required column 'unique_video_name'")
        )
        return LoadResult([], problems)
    for row_number, row in table.rows:
        video = text_value(row.get("unique_video_name"))
        if video and video not in videos:
            videos[video] = row_number
    # The case column of lesion_info.csv is unique_video_name: lesions group by video.
    by_video = lesion_table.lesions
    bad_videos = lesion_table.bad_cases
    video_info = root / "video_info.csv"
    if video_info.is_file():
        info = read_table(video_info, root)
        problems.extend(info.problems)
        for row_number, row in info.rows:
            video = text_value(row.get("unique_video_name"))
            if video and video not in videos:
                videos[video] = -row_number  # a video without lesions: a normal exam
    records: list[CaseRecord] = []
    for video, row_number in videos.items():
        shown, row = (table.file, row_number) if row_number > 0 else ("video_info.csv", -row_number)
        relative = _real_colon_media(root, video)
        if relative is None:
            problems.append(
                RowProblem(shown, row, f"missing video {video!r} ({video}_frames/ or {video}.mp4)")
            )
            continue
        modality = _modality(root, relative)
        why = media_problem(root, relative, modality)
        if why:
            problems.append(RowProblem(shown, row, why))
            continue
        if video in bad_videos:
            continue  # its lesion rows are already reported
        findings = make_findings(by_video.get(video, []))
        meta = {"layout": "real-colon", "split_from": "option"}
        records.append(_record(video, split, modality, relative, {}, findings, meta))
    return LoadResult(records, problems)


LOADER = PolypVideoLoader()
