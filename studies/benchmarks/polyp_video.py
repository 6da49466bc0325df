"""`polyp-video`: colonoscopy clips (mp4, or frame folders) with per-lesion findings.

Three layouts, tried in this order:

* A manifest (manifest.csv / .jsonl / .xlsx, or the option `manifest`) with `video` (an mp4
  file or a frame folder, relative to the root), `split`, optional `case_id`, `report` and
  the structured fields of polyp-reports (`size_mm; location; paris; histology ...`).
* SUN-SEG as released (github.com/GewelsJI/VPS, docs/DATA_DESCRIPTION.md): frame folders
  `TrainDataset/Frame/case<ID>/` and `Test{Easy,Hard}Dataset/{Seen,Unseen}/Frame/case<ID>/`.
  The release holds no case table: its findings come from the published
  `INFO_POSITIVE_CASES.md` (docs/ of the same repository), saved in the root as it is, or a
  CSV of that table (`case_info.csv`, or the option `lesions`): one row per clip, ID `1_1`
  for folder `case1_1`, location letters C/A/T/D/S/R, sizes like `6mm` or `15mm-` (15 mm or
  more), pathology with its dysplasia grade. Without a table the import is refused, unless
  the option `unlabelled` is true (clips without reference or findings). Seen test clips show
  lesions that also have training clips, so the test split holds one track: the option
  `track` is `unseen` (default), `seen` or `all`; every test clip says its track in meta.
* REAL-colon as released (github.com/cosmoimd/real-colon-dataset): `lesion_info.csv`,
  `video_info.csv`, `SSS-VVV_frames/` folders of unpadded frames `SSS-VVV_<t>.jpg` and
  `SSS-VVV_annotations/` of per-frame VOC XML. The split is the dataset's own (per study,
  videos 1-10 train, 11-12 validation, 13-15 test; the option `split` overrides it); `bbps`
  and `fps` come from video_info.csv; lesions whose `histology_class` is `NO POLYP` or
  `OTHER` are no polyps. The option `clips` is `procedure` (default: one case per video) or
  `lesion` (one case per lesion: `clip_frames` frames, default 16, in frame order, from the
  frames where the lesion is boxed, widened by `margin_s` seconds, default 2, each side).

Where a clip has no free-text report, its reference is a plain summary of the findings (meta
`reference: "findings"`). Frames are ordered by their number, never by text
(`model.video.frame_order`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.video import frame_files, frame_order
from studies.benchmarks.base import (
    VIDEO_SUFFIXES,
    CaseRecord,
    LoadResult,
    RowProblem,
    normalise_split,
    option_path,
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
    Table,
    display_name,
    media_problem,
    missing_columns,
    read_table,
    read_text_utf8,
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
SUN_TRACKS = ("unseen", "seen", "all")
# The legends of SUN-SEG's INFO_POSITIVE_CASES.md (its "Abbreviation Illustration").
SUN_LEGEND = {
    "location": {
        "C": "cecum",
        "A": "ascending",
        "T": "transverse",
        "D": "descending",
        "S": "sigmoid",
        "R": "rectum",
    },
    "histology": {
        "LA": "Low-grade adenoma",
        "HA": "High-grade adenoma",
        "HP": "Hyperplastic polyp",
        "TSA": "Traditional serrated adenoma",
        "SSL": "Sessile serrated lesion",
        "IC": "Invasive cancer (T1b)",
    },
}
SUN_TABLE_NAMES = ("INFO_POSITIVE_CASES.md", "case_info.csv", "case_information.csv")
SUN_SEEN_NOTE = (
    "a Seen test clip shows a lesion that also has training clips (and the same reference)"
)
# Histology words in lesion tables that are no polyp class of the schema.
NO_CLASS_HISTOLOGY = {"other", "no polyp", "normal", "normal mucosa"}
# REAL-colon's histology_class values that are not polyps (its README's class list).
REAL_COLON_NOT_POLYPS = {"no polyp", "other"}
# REAL-colon's split (polyp_detection/export_coco_format.py): per study, the first 10 videos
# train, the next 2 validation, the rest (3) test.
REAL_COLON_TRAIN_VIDEOS = 10
REAL_COLON_VAL_VIDEOS = 2
REAL_COLON_CLIPS = ("procedure", "lesion")
REAL_COLON_FPS = 30.0  # when video_info.csv gives none
_FRAME_NUMBER = re.compile(r"_(\d+)$")
_UNIQUE_ID = re.compile(r"<unique_id>\s*([^<]*?)\s*</unique_id>")


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
        split_option = options.get("split")
        chosen_split = normalise_split(split_option) if split_option is not None else None
        if split_option is not None and chosen_split is None:
            return LoadResult(
                [],
                [RowProblem(str(root), None, f"unknown split option {split_option!r}")],
            )
        lesion_path = _lesion_table_path(root, options)
        manifest = _manifest_path(root, options)
        if manifest is not None:
            return _load_manifest(root, manifest, lesion_path)
        if any((root / name).is_dir() for name in SUN_SETS):
            return _load_sun_seg(root, lesion_path, options)
        if (root / "lesion_info.csv").is_file():
            return _load_real_colon(root, root / "lesion_info.csv", chosen_split, options)
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


def _flag(value: object) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _manifest_path(root: Path, options: dict[str, Any]) -> Path | None:
    if options.get("manifest"):
        return option_path(root, options, "manifest")
    for suffix in TABLE_SUFFIXES:
        if (root / f"manifest{suffix}").is_file():
            return root / f"manifest{suffix}"
    return None


def _lesion_table_path(root: Path, options: dict[str, Any]) -> Path | None:
    if options.get("lesions"):
        return option_path(root, options, "lesions")
    names = ("lesion_info.csv", *SUN_TABLE_NAMES, "lesions.csv")
    for name in names:
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
    # Per case key, the row ids of its lesions (REAL-colon unique_object_id), in order.
    ids: dict[str, list[str]] = field(default_factory=dict)
    # Per case key, the ids (or rows) of rows that are no polyp (dropped when asked).
    not_polyps: dict[str, list[str]] = field(default_factory=dict)


def read_markdown_table(path: Path, root: Path) -> Table:
    """The first pipe table of a Markdown file (SUN-SEG publishes its case information only
    as one); rows are numbered by their line in the file."""
    table = Table(display_name(root, path))
    if not path.is_file():
        table.problems.append(RowProblem(table.file, None, "file not found"))
        return table
    text, problem = read_text_utf8(path, table.file)
    if problem or text is None:
        table.problems.append(problem or RowProblem(table.file, None, "unreadable"))
        return table
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("|"):
            if table.columns:
                break  # the table ended
            continue
        cells = [cell.strip() for cell in stripped.strip("|").split("|")]
        if not table.columns:
            table.columns = [cell.lower() for cell in cells]
        elif all(re.fullmatch(r":?-+:?", cell) for cell in cells if cell):
            continue  # the header rule
        elif len(cells) != len(table.columns):
            table.problems.append(
                RowProblem(
                    table.file,
                    line_number,
                    f"{len(cells)} cells but {len(table.columns)} columns",
                )
            )
        else:
            table.rows.append((line_number, dict(zip(table.columns, cells, strict=True))))
    if not table.columns:
        table.problems.append(RowProblem(table.file, None, "no Markdown table (| a | b |) found"))
    return table


def read_lesion_table(
    root: Path,
    path: Path,
    *,
    legend: dict[str, dict[str, str]] | None = None,
    case_key: Callable[[str], str] | None = None,
    drop: set[str] | None = None,
) -> LesionTable:
    """Lesions of a lesion table. `legend` maps a dataset's codes (SUN-SEG's location
    letters) to words, per field; `case_key` turns the table's case value into a folder
    name; rows whose histology is in `drop` are counted in `not_polyps`, not as lesions."""
    if path.suffix.lower() == ".md":
        table = read_markdown_table(path, root)
    else:
        table = read_table(path, root)
    result = LesionTable({}, set(), list(table.problems), table.file)
    if not table.rows:
        return result
    case_column = next((c for c in CASE_COLUMNS if c in table.columns), None)
    if case_column is None:
        result.problems.append(
            missing_columns(table, [("unique_video_name", "case", "case_id", "video", "id")])
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
    id_column = "unique_object_id" if "unique_object_id" in table.columns else None
    for row_number, row in table.rows:
        case = text_value(row.get(case_column))
        if not case:
            result.problems.append(RowProblem(table.file, row_number, f"{case_column} is empty"))
            continue
        if case_key is not None:
            case = case_key(case)
        values = {f: row.get(c) for f, c in columns.items() if c is not None}
        for name, codes in (legend or {}).items():
            code = text_value(values.get(name))
            if code in codes:
                values[name] = codes[code]
        raw_histology = text_value(values.get("histology")).lower()
        row_id = (text_value(row.get(id_column)) if id_column else "") or f"row {row_number}"
        if drop and raw_histology in drop:
            result.not_polyps.setdefault(case, []).append(row_id)
            continue
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
        result.ids.setdefault(case, []).append(row_id)
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


def sun_seg_case(value: str) -> str:
    """The folder of a SUN-SEG case-table ID: `1_1` -> `case1_1`, `4` -> `case4`."""
    return f"case{value}" if re.fullmatch(r"\d+(?:_\d+)?", value) else value


def _sun_track(subset: str) -> str | None:
    parts = {part.lower() for part in subset.split("/")}
    return next((track for track in ("seen", "unseen") if track in parts), None)


def _load_sun_seg(root: Path, lesion_path: Path | None, options: dict[str, Any]) -> LoadResult:
    unlabelled = _flag(options.get("unlabelled", False))
    track_option = str(options.get("track", "unseen")).strip().lower()
    if track_option not in SUN_TRACKS:
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    f"unknown track option {options.get('track')!r}; use {', '.join(SUN_TRACKS)}",
                )
            ],
        )
    if lesion_path is None and not unlabelled:
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    "SUN-SEG as released has no case table, so its clips would have no "
                    "reference and no findings: save INFO_POSITIVE_CASES.md (docs/ of "
                    "github.com/GewelsJI/VPS) in this folder as it is, or a CSV of that table "
                    "as case_info.csv (or name the file with -o lesions=FILE); to import the "
                    "clips without labels, pass -o unlabelled=true",
                )
            ],
        )
    lesion_table = (
        read_lesion_table(root, lesion_path, legend=SUN_LEGEND, case_key=sun_seg_case)
        if lesion_path
        else None
    )
    problems = list(lesion_table.problems) if lesion_table else []
    if lesion_table is not None and not lesion_table.lesions and not lesion_table.bad_cases:
        # The whole table failed: no clip is imported without its labels.
        return LoadResult(
            [], problems or [RowProblem(lesion_table.file, None, "the case table has no rows")]
        )
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
            track = _sun_track(subset) if split == "test" else None
            if track is not None and track_option not in ("all", track):
                continue
            for folder in sorted(
                (p for p in frame_root.iterdir() if p.is_dir()), key=lambda p: frame_order(p)
            ):
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
                if track is not None:
                    meta["track"] = track
                    if track == "seen":
                        meta["track_note"] = SUN_SEEN_NOTE
                if lesions is None:
                    if not unlabelled:
                        problems.append(
                            RowProblem(
                                relative,
                                None,
                                f"no row for {case} in {shown} (its ID is "
                                f"{case.removeprefix('case')!r}); add it, or pass "
                                "-o unlabelled=true to import clips without labels",
                            )
                        )
                        continue
                    meta["labels"] = "none"
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


def real_colon_split(video: str) -> str | None:
    """REAL-colon's own split of video `SSS-VVV`: per study, videos 1-10 train, 11-12 val,
    13-15 test; None when the name is not of that form."""
    match = re.fullmatch(r"(\d{3})-(\d{3})", video)
    if not match:
        return None
    number = int(match.group(2))
    if number <= REAL_COLON_TRAIN_VIDEOS:
        return "train"
    if number <= REAL_COLON_TRAIN_VIDEOS + REAL_COLON_VAL_VIDEOS:
        return "val"
    return "test"


def _real_colon_media(root: Path, video: str) -> str | None:
    candidates = [f"{video}_frames", video, f"videos/{video}_frames", f"videos/{video}"]
    candidates += [
        f"{base}{suffix}" for base in (video, f"videos/{video}") for suffix in VIDEO_SUFFIXES
    ]
    for relative in candidates:
        if (root / relative).exists():
            return relative
    return None


@dataclass
class VideoInfo:
    """A row of REAL-colon's video_info.csv."""

    row: int
    fps: float | None = None
    bbps: int | None = None


def _video_info(root: Path, problems: list[RowProblem]) -> dict[str, VideoInfo]:
    path = root / "video_info.csv"
    if not path.is_file():
        return {}
    info = read_table(path, root)
    problems.extend(info.problems)
    videos: dict[str, VideoInfo] = {}
    for row_number, row in info.rows:
        video = text_value(row.get("unique_video_name"))
        if not video:
            continue
        entry = VideoInfo(row_number)
        fps, bbps = text_value(row.get("fps")), text_value(row.get("bbps"))
        try:
            entry.fps = float(fps) if fps else None
            if entry.fps is not None and not 0 < entry.fps <= 1000:
                raise ValueError
        except ValueError:
            problems.append(RowProblem(info.file, row_number, f"fps {fps!r} is not a frame rate"))
            continue
        try:
            entry.bbps = int(float(bbps)) if bbps else None
            if entry.bbps is not None and not 0 <= entry.bbps <= 9:
                raise ValueError
        except ValueError:
            problems.append(
                RowProblem(info.file, row_number, f"bbps {bbps!r} is not a Boston score 0-9")
            )
            continue
        videos.setdefault(video, entry)
    return videos


def _load_real_colon(
    root: Path, lesion_path: Path, chosen_split: str | None, options: dict[str, Any]
) -> LoadResult:
    clips = str(options.get("clips", "procedure")).strip().lower()
    if clips not in REAL_COLON_CLIPS:
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    f"unknown clips option {options.get('clips')!r}; "
                    f"use {', '.join(REAL_COLON_CLIPS)}",
                )
            ],
        )
    try:
        margin_s = float(options.get("margin_s", 2.0))
        clip_frames = int(options.get("clip_frames", 16))
        if margin_s < 0 or clip_frames < 2:
            raise ValueError
    except (TypeError, ValueError):
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    "margin_s must be seconds >= 0 and clip_frames a whole number >= 2 "
                    f"(got {options.get('margin_s')!r}, {options.get('clip_frames')!r})",
                )
            ],
        )
    lesion_table = read_lesion_table(root, lesion_path, drop=REAL_COLON_NOT_POLYPS)
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
    info = _video_info(root, problems)
    for video, entry in info.items():
        if video not in videos:
            videos[video] = -entry.row  # a video without removed lesions
    records: list[CaseRecord] = []
    for video, row_number in videos.items():
        shown, row = (table.file, row_number) if row_number > 0 else ("video_info.csv", -row_number)
        split = chosen_split or real_colon_split(video)
        if split is None:
            problems.append(
                RowProblem(
                    shown,
                    row,
                    f"video {video!r} is not named SSS-VVV, so its REAL-colon split is "
                    "unknown; pass -o split=train|val|test",
                )
            )
            continue
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
        if video in lesion_table.bad_cases:
            continue  # its lesion rows are already reported
        entry = info.get(video, VideoInfo(0))
        meta: dict[str, Any] = {
            "layout": "real-colon",
            "split_from": "option" if chosen_split else "dataset",
        }
        if entry.fps is not None:
            meta["fps"] = entry.fps
        if lesion_table.not_polyps.get(video):
            meta["not_polyps"] = lesion_table.not_polyps[video]
        lesions = lesion_table.lesions.get(video, [])
        if clips == "lesion":
            if modality != "frames":
                problems.append(
                    RowProblem(shown, row, f"lesion clips need the frame folder {video}_frames/")
                )
                continue
            fps = entry.fps or REAL_COLON_FPS
            clip_records, clip_problems = _lesion_clips(
                root,
                video,
                relative,
                lesions,
                lesion_table.ids.get(video, []),
                split,
                meta | {"fps": fps},
                round(margin_s * fps),
                clip_frames,
                entry.bbps,
            )
            records.extend(clip_records)
            problems.extend(RowProblem(shown, row, message) for message in clip_problems)
            continue
        findings = make_findings(lesions, bbps_total=entry.bbps)
        records.append(_record(video, split, modality, relative, {}, findings, meta))
    return LoadResult(records, problems)


def _frame_number(path: Path) -> int | None:
    match = _FRAME_NUMBER.search(path.stem)
    return int(match.group(1)) if match else None


def _boxed_frames(root: Path, video: str) -> tuple[dict[str, list[int]], str | None]:
    """Frame numbers where each lesion (its unique_id) has a box, from the per-frame VOC
    files of `<video>_annotations/` (the README's list says `_annotation`)."""
    for end in ("_annotations", "_annotation"):
        if (root / f"{video}{end}").is_dir():
            folder = root / f"{video}{end}"
            break
    else:
        return {}, f"lesion clips need the annotation folder {video}_annotations/"
    boxed: dict[str, list[int]] = {}
    for path in folder.glob("*.xml"):
        number = _frame_number(path)
        if number is None:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for unique_id in set(_UNIQUE_ID.findall(text)):
            boxed.setdefault(unique_id, []).append(number)
    return boxed, None


def _evenly(items: list[Any], most: int) -> list[Any]:
    if len(items) <= most:
        return list(items)
    step = (len(items) - 1) / (most - 1)
    return [items[round(i * step)] for i in range(most)]


def _lesion_clips(
    root: Path,
    video: str,
    relative: str,
    lesions: list[dict[str, Any]],
    ids: list[str],
    split: str,
    meta: dict[str, Any],
    margin: int,
    clip_frames: int,
    bbps: int | None,
) -> tuple[list[CaseRecord], list[str]]:
    """One case per lesion: `clip_frames` frames, in frame order, from the frames where the
    lesion is boxed, `margin` frames wider each side. The frames are the case's images, so
    every generator sees exactly this window."""
    if not lesions:
        return [], []
    boxed, why = _boxed_frames(root, video)
    if why:
        return [], [why]
    numbered = [(n, p) for p in frame_files(root / relative) if (n := _frame_number(p)) is not None]
    records: list[CaseRecord] = []
    problems: list[str] = []
    for lesion, lesion_id in zip(lesions, ids, strict=True):
        frames = boxed.get(lesion_id)
        if not frames:
            problems.append(f"lesion {lesion_id!r} has no box in {video}_annotations/")
            continue
        first, last = min(frames) - margin, max(frames) + margin
        window = [p for n, p in numbered if first <= n <= last]
        chosen = _evenly(window, clip_frames)
        if len(chosen) < 2:
            problems.append(f"lesion {lesion_id!r}: fewer than 2 frames in {relative}/")
            continue
        findings = make_findings([lesion], bbps_total=bbps)
        clip_meta = meta | {
            "clip": "lesion",
            "video": video,
            "lesion": lesion_id,
            "boxed_frames": [min(frames), max(frames)],
            "frame_numbers": [_frame_number(p) for p in chosen],
        }
        clip_meta.pop("not_polyps", None)
        media = [display_name(root, p) for p in chosen]
        record = _record(lesion_id, split, "image", media[0], {}, findings, clip_meta)
        record.media = media
        records.append(record)
    return records, problems


LOADER = PolypVideoLoader()
