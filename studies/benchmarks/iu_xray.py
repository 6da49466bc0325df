"""`iu-xray`: chest X-ray (usually two views) -> findings report, in the R2Gen layout.

annotation.json is `{"train"|"val"|"test": [{"id", "report", "image_path": [..], "split"}]}`
with image paths relative to images/. It serves cross-domain checks of the report models.
Rows in messages are the 1-based position in that split's list ("annotation.json [train]").
The options `annotation` and `images` rename the file and the image folder.
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
    option_path,
)
from studies.benchmarks.tables import (
    display_name,
    media_problem,
    read_text_utf8,
    split_list,
    text_value,
)

REQUIRED_FIELDS = ("id", "report", "image_path")


@dataclass(frozen=True)
class IUXrayLoader:
    name: str = "iu-xray"
    task: str = "cxr-report"
    synthetic: bool = False
    description: str = (
        "IU X-Ray (R2Gen annotation.json layout): chest X-ray views -> findings report, "
        "for cross-domain checks."
    )

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        annotation = option_path(root, options, "annotation", "annotation.json")
        images_dir = str(options.get("images", "images")).strip("/") or "images"
        option_path(root, {"images": images_dir}, "images")  # stays inside the root
        shown = display_name(root, annotation)
        if not annotation.is_file():
            return LoadResult([], [RowProblem(shown, None, "file not found")])
        text, problem = read_text_utf8(annotation, shown)
        if problem:
            return LoadResult([], [problem])
        try:
            data = json.loads(text or "")
        except json.JSONDecodeError as exc:
            return LoadResult(
                [], [RowProblem(shown, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")]
            )
        if not isinstance(data, dict) or not data:
            return LoadResult(
                [],
                [
                    RowProblem(
                        shown,
                        None,
                        'expected an object {"train": [...], "val": [...], "test": [...]}',
                    )
                ],
            )
        problems: list[RowProblem] = []
        records: list[CaseRecord] = []
        seen: dict[str, str] = {}
        for key, entries in data.items():
            split = normalise_split(key)
            where = f"{shown} [{key}]"
            if split is None:
                problems.append(
                    RowProblem(shown, None, f"unknown split {key!r}; use train, val or test")
                )
                continue
            if not isinstance(entries, list):
                problems.append(RowProblem(where, None, "expected a list of entries"))
                continue
            for position, entry in enumerate(entries, start=1):
                record, messages = _entry(root, images_dir, split, entry)
                if record is not None:
                    if record.case_key in seen:
                        messages.append(
                            f"duplicate id {record.case_key!r} (first seen in "
                            f"{seen[record.case_key]})"
                        )
                    else:
                        seen[record.case_key] = f"[{key}] row {position}"
                if messages:
                    problems.extend(RowProblem(where, position, m) for m in messages)
                    continue
                assert record is not None
                records.append(record)
        return LoadResult(records, problems)


def _entry(
    root: Path, images_dir: str, split: str, entry: object
) -> tuple[CaseRecord | None, list[str]]:
    if not isinstance(entry, dict):
        return None, ["an entry must be an object"]
    absent = [name for name in REQUIRED_FIELDS if name not in entry]
    if absent:
        return None, [f"missing required field {', '.join(repr(a) for a in absent)}"]
    messages = []
    case_id = text_value(entry.get("id"))
    report = text_value(entry.get("report"))
    images = split_list(entry.get("image_path"))
    if not case_id:
        messages.append("id is empty")
    if not report:
        messages.append("report is empty")
    if not images:
        messages.append("image_path is empty")
    if "split" in entry and normalise_split(entry["split"]) != split:
        messages.append(f"split {entry['split']!r} does not match the list it is in ({split})")
    media = [f"{images_dir}/{path}" for path in images]
    for relative in media:
        why = media_problem(root, relative, "image")
        if why:
            messages.append(why)
    record = CaseRecord(
        case_key=case_id,
        split=split,
        modality="image",
        media=media,
        references=[report],
        meta={"views": len(media)},
    )
    return (record if case_id else None), messages


LOADER = IUXrayLoader()
