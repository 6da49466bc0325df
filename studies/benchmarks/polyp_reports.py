"""`polyp-reports`: colonoscopy image(s) -> free-text report.

Two layouts:

* A manifest (manifest.csv / .tsv / .jsonl / .json / .xlsx in the root, or the file named by
  the option `manifest`) with the columns `image` or `images` (several paths separated by
  ';' or a JSON list, relative to the root), `report` and `split`; optional `case_id` and
  structured fields `size_mm, location, paris, lst, nice, jnet, kudo, histology` (one value
  per lesion, several lesions separated by ';'), `no_polyps, polyp_count, bbps_total,
  resection, surveillance_years`, or a `findings` JSON object in the findings schema.
  Other columns are kept in the case meta.
* EndoRG as published: `Train/<region>/<image>` with `Train/train_reports.xlsx`, and
  `Test/<region>/<image>` with `Test/test_reports.xlsx` (the sheets may also sit in the
  dataset folder itself), each row an image file name (several separated by ';') and its
  report. EndoRG covers ten regions of the GI tract; the colonoscopy task takes the colon
  regions only, unless the option `regions` asks for `upper_gi` or `all`. A colon region is
  the location of every lesion its report mentions without placing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metrics.clinical.vocab import LESION_FIELDS, RESECTIONS
from studies.benchmarks.base import (
    IMAGE_SUFFIXES,
    SPLITS,
    CaseRecord,
    LoadResult,
    RowProblem,
    normalise_split,
    option_path,
)
from studies.benchmarks.findings import (
    is_missing,
    make_findings,
    make_lesion,
    normalise_location,
)
from studies.benchmarks.tables import (
    TABLE_SUFFIXES,
    Table,
    display_name,
    media_problem,
    missing_columns,
    read_table,
    split_list,
    text_value,
    unique_records,
)

IMAGE_COLUMNS = ("images", "image", "image_path", "image_paths")
LESION_COLUMNS = tuple(f for f in LESION_FIELDS if f != "size_class")
EXAM_COLUMNS = ("no_polyps", "polyp_count", "bbps_total", "resection", "surveillance_years")
KNOWN_COLUMNS = {
    *IMAGE_COLUMNS,
    "report",
    "split",
    "case_id",
    "question",
    "findings",
    *LESION_COLUMNS,
    *EXAM_COLUMNS,
}
ENDORG_NAME_COLUMNS = (
    "image",
    "images",
    "image_name",
    "image_names",
    "img",
    "file",
    "filename",
    "file_name",
    "name",
    "image_id",
    "id",
)
ENDORG_REPORT_COLUMNS = ("report", "reports", "text", "caption", "description", "findings")
# EndoRG's region folders outside the colon (its README's folder tree); its colon regions
# (ascending_colon ... rectum) are segments of the findings vocabulary.
ENDORG_UPPER_GI = ("esophagus", "fundus_and_cardia", "body", "antrum", "duodenum")
# The option `regions`: which EndoRG regions become cases.
REGION_CHOICES = ("colon", "upper_gi", "all")


@dataclass(frozen=True)
class PolypReportsLoader:
    name: str = "polyp-reports"
    task: str = "report"
    synthetic: bool = False
    description: str = (
        "Colonoscopy image(s) -> free-text report, from a CSV/JSONL/XLSX manifest or the "
        "EndoRG layout (Train|Test/<region>/<image> + Train/train_reports.xlsx, "
        "Test/test_reports.xlsx; colon regions unless regions=upper_gi|all)."
    )

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        if options.get("manifest"):
            path = option_path(root, options, "manifest")
            return load_manifest(root, path, sheet=options.get("sheet"))
        candidates = [root / f"manifest{suffix}" for suffix in TABLE_SUFFIXES]
        found = [path for path in candidates if path.is_file()]
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            return LoadResult(
                [],
                [
                    RowProblem(
                        str(root), None, f"several manifests ({names}); choose one with manifest="
                    )
                ],
            )
        if found:
            return load_manifest(root, found[0], sheet=options.get("sheet"))
        if any(_endorg_sheets(root, split) for split in SPLITS):
            return load_endorg(root, regions=str(options.get("regions", "colon")))
        return LoadResult(
            [],
            [
                RowProblem(
                    str(root),
                    None,
                    "no manifest.csv/.jsonl/.xlsx and no EndoRG Train/train_reports.xlsx / "
                    "Test/test_reports.xlsx in this folder",
                )
            ],
        )


# --- structured fields --------------------------------------------------------------


def findings_from_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """Findings from a `findings` JSON cell or from the structured columns (ValueError)."""
    raw = row.get("findings")
    if not is_missing(raw) and raw != "":
        value = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(value, dict) or "lesions" not in value:
            raise ValueError("findings must be a JSON object with a 'lesions' list")
        lesions = [make_lesion(**lesion) for lesion in value.get("lesions") or []]
        return make_findings(
            lesions,
            no_polyps=value.get("no_polyps"),
            polyp_count=value.get("polyp_count"),
            bbps_total=value.get("bbps_total"),
            resection=value.get("resection"),
            surveillance_years=value.get("surveillance_years"),
        )
    columns = [c for c in LESION_COLUMNS if not is_missing(row.get(c)) and text_value(row.get(c))]
    exam = {
        c: row.get(c) for c in EXAM_COLUMNS if not is_missing(row.get(c)) and text_value(row.get(c))
    }
    if not columns and not exam:
        return None
    per_column = {c: split_list(text_value(row.get(c))) or [""] for c in columns}
    n_lesions = max((len(values) for values in per_column.values()), default=0)
    for column, values in per_column.items():
        if len(values) not in (1, n_lesions):
            raise ValueError(
                f"{column} has {len(values)} values but another field has {n_lesions} lesions"
            )
    lesions = []
    for index in range(n_lesions):
        values = {c: v[index] if len(v) > 1 else v[0] for c, v in per_column.items()}
        lesions.append(make_lesion(**values))
    no_polyps = _bool(exam["no_polyps"]) if "no_polyps" in exam else None
    if no_polyps and lesions:
        raise ValueError("no_polyps is true but lesion fields are filled")
    resection = split_list(text_value(exam.get("resection"))) if "resection" in exam else []
    resection = [r.strip().lower().replace(" ", "_") for r in resection]
    for method in resection:
        if method not in RESECTIONS:
            raise ValueError(f"unknown resection {method!r}; use one of {', '.join(RESECTIONS)}")
    return make_findings(
        lesions,
        no_polyps=no_polyps,
        polyp_count=_int(exam["polyp_count"], "polyp_count") if "polyp_count" in exam else None,
        bbps_total=_int(exam["bbps_total"], "bbps_total") if "bbps_total" in exam else None,
        resection=resection,
        surveillance_years=(
            _float(exam["surveillance_years"], "surveillance_years")
            if "surveillance_years" in exam
            else None
        ),
    )


def _bool(value: object) -> bool:
    text = text_value(value).lower()
    if text in ("1", "true", "yes", "y"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"no_polyps {value!r} is not true/false")


def _int(value: object, name: str) -> int:
    try:
        return int(float(text_value(value)))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a whole number") from None


def _float(value: object, name: str) -> float:
    try:
        return float(text_value(value))
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None


# --- manifest layout ----------------------------------------------------------------


def load_manifest(root: Path, path: Path, sheet: str | None = None) -> LoadResult:
    table = read_table(path, root, sheet=sheet)
    if table.problems and not table.rows:
        return LoadResult([], table.problems)
    missing = missing_columns(table, [IMAGE_COLUMNS, ("report",), ("split",)])
    if missing:
        return LoadResult([], [*table.problems, missing])
    return _manifest_records(root, table)


def _manifest_records(root: Path, table: Table) -> LoadResult:
    problems = list(table.problems)
    numbered: list[tuple[int, CaseRecord]] = []
    image_column = next(c for c in IMAGE_COLUMNS if c in table.columns)
    for row_number, row in table.rows:
        messages: list[str] = []
        images = split_list(row.get(image_column))
        report = text_value(row.get("report"))
        split = normalise_split(row.get("split"))
        if not images:
            messages.append(f"no image in column {image_column!r}")
        if not report:
            messages.append("report is empty")
        if split is None:
            messages.append(f"unknown split {row.get('split')!r}; use train, val or test")
        for relative in images:
            why = media_problem(root, relative, "image")
            if why:
                messages.append(why)
        try:
            findings = findings_from_row(row)
        except (ValueError, TypeError) as exc:
            messages.append(str(exc))
            findings = None
        if messages:
            problems.extend(RowProblem(table.file, row_number, m) for m in messages)
            continue
        case_id = text_value(row.get("case_id")) or str(Path(images[0]).with_suffix(""))
        question = text_value(row.get("question")) or None
        meta = {
            key: text_value(value)
            for key, value in row.items()
            if key and key not in KNOWN_COLUMNS and text_value(value)
        }
        numbered.append(
            (
                row_number,
                CaseRecord(
                    case_key=case_id,
                    split=split or "",
                    modality="image",
                    media=images,
                    references=[report],
                    question=question,
                    findings=findings,
                    meta=meta,
                ),
            )
        )
    records, duplicates = unique_records(table.file, numbered, "case_id")
    return LoadResult(records, problems + duplicates)


# --- EndoRG layout ------------------------------------------------------------------


def _split_folder(root: Path, split: str) -> Path | None:
    for name in (split.capitalize(), split, split.upper()):
        if (root / name).is_dir():
            return root / name
    return None


def _endorg_sheets(root: Path, split: str) -> list[Path]:
    """The split's report sheet: `Train/train_reports.xlsx` as published, or
    `train_reports.xlsx` in the dataset folder itself."""
    folder = _split_folder(root, split)
    places = [folder] if folder is not None else []
    return [
        place / f"{split}_reports.xlsx"
        for place in (*places, root)
        if (place / f"{split}_reports.xlsx").is_file()
    ]


def _pick_column(table: Table, names: tuple[str, ...], position: int) -> str | None:
    for name in names:
        if name in table.columns:
            return name
    usable = [c for c in table.columns if c]
    return usable[position] if len(usable) > position else None


def _colon_segment(region: str) -> str | None:
    """The colon segment an EndoRG region folder shows (`ascending_colon` -> `ascending`),
    or None for a region outside the colon."""
    try:
        return normalise_location(region.replace("_", " "))
    except ValueError:
        return None


def _region_group(region: str) -> str | None:
    """`colon`, `upper_gi`, or None for a folder that is no EndoRG region."""
    if _colon_segment(region):
        return "colon"
    if region.lower() in ENDORG_UPPER_GI:
        return "upper_gi"
    return None


def load_endorg(root: Path, regions: str = "colon") -> LoadResult:
    """EndoRG's Train/ and Test/ folders; `regions` is colon, upper_gi or all."""
    regions = regions.strip().lower()
    if regions not in REGION_CHOICES:
        choices = ", ".join(REGION_CHOICES)
        return LoadResult(
            [], [RowProblem(str(root), None, f"unknown regions {regions!r}; use one of {choices}")]
        )
    problems: list[RowProblem] = []
    records: list[CaseRecord] = []
    for split in SPLITS:
        sheets = _endorg_sheets(root, split)
        if not sheets:
            continue
        if len(sheets) > 1:
            names = " and ".join(display_name(root, sheet) for sheet in sheets)
            problems.append(
                RowProblem(str(root), None, f"two {split} report sheets ({names}); keep one")
            )
            continue
        table = read_table(sheets[0], root)
        problems.extend(table.problems)
        if not table.rows:
            continue
        folder = _split_folder(root, split)
        if folder is None:
            problems.append(
                RowProblem(table.file, None, f"the image folder {split.capitalize()}/ is missing")
            )
            continue
        name_column = _pick_column(table, ENDORG_NAME_COLUMNS, 0)
        report_column = _pick_column(table, ENDORG_REPORT_COLUMNS, 1)
        if name_column is None or report_column is None or name_column == report_column:
            problems.append(
                RowProblem(
                    table.file,
                    None,
                    "missing required column: an image file name column and a 'report' column",
                )
            )
            continue
        index: dict[str, list[Path]] = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                index.setdefault(path.name.lower(), []).append(path)
                index.setdefault(path.stem.lower(), []).append(path)
        numbered: list[tuple[int, CaseRecord]] = []
        for row_number, row in table.rows:
            record, messages = _endorg_record(
                root, folder, split, row, name_column, report_column, index
            )
            if messages:
                problems.extend(RowProblem(table.file, row_number, m) for m in messages)
                continue
            assert record is not None
            groups = {_region_group(r) for r in _regions_of(record)}
            if regions != "all" and groups and groups != {regions}:
                continue  # a region the colonoscopy task (or the chosen group) leaves out
            numbered.append((row_number, record))
        unique, duplicates = unique_records(table.file, numbered, "image name")
        records.extend(unique)
        problems.extend(duplicates)
    return LoadResult(records, problems)


def _regions_of(record: CaseRecord) -> list[str]:
    region = record.meta.get("region")
    if region is None:
        return []
    return [region] if isinstance(region, str) else list(region)


def _endorg_record(
    root: Path,
    folder: Path,
    split: str,
    row: dict[str, Any],
    name_column: str,
    report_column: str,
    index: dict[str, list[Path]],
) -> tuple[CaseRecord | None, list[str]]:
    names = split_list(text_value(row.get(name_column)))
    report = text_value(row.get(report_column))
    messages = []
    if not names:
        messages.append(f"no image name in column {name_column!r}")
    if not report:
        messages.append("report is empty")
    media: list[str] = []
    regions: list[str] = []
    for name in names:
        hits = index.get(Path(name).name.lower(), [])
        if not hits:
            messages.append(f"missing image {name!r} under {folder.name}/")
            continue
        if len(hits) > 1:
            where = ", ".join(display_name(root, h) for h in hits[:3])
            messages.append(f"image name {name!r} is ambiguous ({where})")
            continue
        relative = display_name(root, hits[0])
        why = media_problem(root, relative, "image")
        if why:
            messages.append(why)
            continue
        media.append(relative)
        parts = hits[0].relative_to(folder).parts
        if len(parts) > 1:
            if _region_group(parts[0]) is None:
                known = ", ".join((*ENDORG_UPPER_GI, "or a colon segment"))
                messages.append(
                    f"image {name!r} is in {parts[0]!r}, not an EndoRG region ({known})"
                )
                continue
            regions.append(parts[0])
    if messages:
        return None, messages
    meta: dict[str, Any] = {"layout": "endorg"}
    findings = None
    distinct = sorted(set(regions))
    if distinct:
        meta["region"] = distinct[0] if len(distinct) == 1 else distinct
        segment = _colon_segment(distinct[0]) if len(distinct) == 1 else None
        if segment:
            # The image folder names the colon segment. It is kept as the case's segment, not
            # written into structured findings: stored findings are ground truth, and EndoRG
            # publishes none (findings extracted from its reports would be the extractor's
            # guess, frozen at import).
            meta["segment"] = segment
    record = CaseRecord(
        case_key=f"{split}/{Path(names[0]).stem}",
        split=split,
        modality="image",
        media=media,
        references=[report],
        findings=findings,
        meta=meta,
    )
    return record, []


LOADER = PolypReportsLoader()
