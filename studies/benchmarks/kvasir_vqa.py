"""`kvasir-vqa-x1`: endoscopy image + question -> free-text answer (Kvasir-VQA-x1 layout).

Rows carry `img_id, complexity, question, answer, original, question_class`, from parquet or
JSONL files in the root or in data/ (as the public release ships them). The split comes
from a `split` column or else from the file name (train-*.parquet, test.jsonl ...). Images
are `images/<img_id>.jpg` (the folder can be changed with the option `images`). A case is
one question: its key is the img_id and the question's running index for that image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studies.benchmarks.base import (
    IMAGE_SUFFIXES,
    SPLIT_ALIASES,
    SPLITS,
    CaseRecord,
    LoadResult,
    RowProblem,
    normalise_split,
)
from studies.benchmarks.tables import (
    media_problem,
    missing_columns,
    read_table,
    text_value,
)

REQUIRED = [("img_id",), ("question",), ("answer",)]
DATA_SUFFIXES = (".parquet", ".jsonl")


@dataclass(frozen=True)
class KvasirVQALoader:
    name: str = "kvasir-vqa-x1"
    task: str = "vqa"
    synthetic: bool = False
    description: str = (
        "Kvasir-VQA-x1: GI endoscopy image + question -> free-text answer, with complexity "
        "and question classes (parquet or JSONL; images/<img_id>.jpg)."
    )

    def load(self, root: Path, options: dict[str, Any]) -> LoadResult:
        images_dir = str(options.get("images", "images")).strip("/") or "images"
        files = _data_files(root)
        if not files:
            return LoadResult(
                [],
                [
                    RowProblem(
                        str(root),
                        None,
                        "no .parquet or .jsonl files in the folder or its data/ folder",
                    )
                ],
            )
        problems: list[RowProblem] = []
        collected: list[tuple[str, str, int, dict[str, Any]]] = []  # split, file, row, values
        for path in files:
            table = read_table(path, root)
            problems.extend(table.problems)
            if not table.rows:
                continue
            missing = missing_columns(table, REQUIRED)
            if missing:
                problems.append(missing)
                continue
            file_split = _split_from_name(path.name)
            if "split" not in table.columns and file_split is None:
                problems.append(
                    RowProblem(
                        table.file,
                        None,
                        "cannot tell the split: name the file train*/test* or add a split column",
                    )
                )
                continue
            for row_number, row in table.rows:
                # A split cell wins; an empty one falls back to the file name.
                raw = text_value(row.get("split")) or file_split
                split = normalise_split(raw)
                if split is None:
                    problems.append(
                        RowProblem(
                            table.file, row_number, f"unknown split {raw!r}; use train or test"
                        )
                    )
                    continue
                collected.append((split, table.file, row_number, row))
        # Train before val before test, so question indices do not depend on file order.
        collected.sort(key=lambda item: SPLITS.index(item[0]))
        records, row_problems = _records(root, images_dir, collected)
        return LoadResult(records, problems + row_problems)


def _data_files(root: Path) -> list[Path]:
    files = []
    for folder in (root, root / "data"):
        if folder.is_dir():
            files.extend(
                p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in DATA_SUFFIXES
            )
    return files


def _split_from_name(name: str) -> str | None:
    stem = name.split(".")[0].lower()
    for alias in sorted(SPLIT_ALIASES, key=len, reverse=True):
        if stem == alias or stem.startswith((alias + "-", alias + "_")):
            return SPLIT_ALIASES[alias]
    return None


def _image_path(root: Path, images_dir: str, img_id: str) -> str:
    if Path(img_id).suffix.lower() in IMAGE_SUFFIXES:
        return f"{images_dir}/{img_id}"
    for suffix in (".jpg", ".jpeg", ".png"):
        if (root / images_dir / f"{img_id}{suffix}").exists():
            return f"{images_dir}/{img_id}{suffix}"
    return f"{images_dir}/{img_id}.jpg"


def _plain(value: Any) -> Any:
    """JSON-able value: parsed JSON text for list-like strings, lists as lists."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, tuple):
        return list(value)
    return value


def _records(
    root: Path, images_dir: str, collected: list[tuple[str, str, int, dict[str, Any]]]
) -> tuple[list[CaseRecord], list[RowProblem]]:
    problems: list[RowProblem] = []
    records: list[CaseRecord] = []
    image_checks: dict[str, str | None] = {}
    image_paths: dict[str, str] = {}
    counts: dict[str, int] = {}
    seen: dict[tuple[str, str, str], tuple[str, int]] = {}
    for split, file, row_number, row in collected:
        img_id = text_value(row.get("img_id"))
        question = text_value(row.get("question"))
        answer = text_value(row.get("answer"))
        messages = []
        if not img_id:
            messages.append("img_id is empty")
        if not question:
            messages.append("question is empty")
        if not answer:
            messages.append("answer is empty")
        relative = ""
        if img_id:
            if img_id not in image_paths:
                image_paths[img_id] = _image_path(root, images_dir, img_id)
            relative = image_paths[img_id]
            if relative not in image_checks:
                image_checks[relative] = media_problem(root, relative, "image")
            if image_checks[relative]:
                messages.append(f"image for img_id {img_id!r}: {image_checks[relative]}")
        key = (split, img_id, question.lower())
        if not messages and key in seen:
            first_file, first_row = seen[key]
            where = f"row {first_row}" if first_file == file else f"{first_file}, row {first_row}"
            messages.append(
                f"duplicate question {question!r} for img_id {img_id!r} (first seen in {where})"
            )
        if messages:
            problems.extend(RowProblem(file, row_number, m) for m in messages)
            continue
        seen[key] = (file, row_number)
        index = counts.get(img_id, 0)
        counts[img_id] = index + 1
        meta: dict[str, Any] = {"img_id": img_id}
        for field in ("complexity", "question_class", "original"):
            if field in row and row[field] not in (None, ""):
                meta[field] = _plain(row[field])
        records.append(
            CaseRecord(
                case_key=f"{img_id}#q{index}",
                split=split,
                modality="image",
                media=[relative],
                references=[answer],
                question=question,
                meta=meta,
            )
        )
    return records, problems


LOADER = KvasirVQALoader()
