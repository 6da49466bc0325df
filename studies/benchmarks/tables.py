"""Reading manifests (CSV, JSONL, JSON, XLSX, parquet) with the row numbers a user sees.

Row numbers: CSV and XLSX rows count like a spreadsheet (the header is row 1, the first
data row is row 2); JSONL rows are line numbers; parquet and JSON-array rows are 1-based
record numbers. A file that cannot be read at all becomes one RowProblem with row None.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studies.benchmarks.base import CaseRecord, RowProblem

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".xlsx", ".parquet")


@dataclass
class Table:
    file: str  # as shown in messages: relative to the dataset root where possible
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def display_name(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def read_text_utf8(path: Path, shown: str) -> tuple[str | None, RowProblem | None]:
    """The file's text, or a problem saying it is not UTF-8 (with the line of the bad byte)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        return None, RowProblem(
            shown,
            None,
            f"the file is not UTF-8 text (byte 0x{byte} on line {line}); "
            "save it as UTF-8 and import again",
        )


def _clean_key(key: object) -> str:
    return str(key or "").strip().lstrip("\ufeff").strip().lower()


def read_table(path: Path, root: Path, sheet: str | None = None) -> Table:
    """Read a manifest by its suffix; column names are stripped and lower-cased."""
    shown = display_name(root, path)
    table = Table(shown)
    if not path.is_file():
        table.problems.append(RowProblem(shown, None, "file not found"))
        return table
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            _read_csv(path, table, "\t" if suffix == ".tsv" else None)
        elif suffix == ".jsonl":
            _read_jsonl(path, table)
        elif suffix == ".json":
            _read_json(path, table)
        elif suffix == ".xlsx":
            _read_xlsx(path, table, sheet)
        elif suffix == ".parquet":
            _read_parquet(path, table)
        else:
            table.problems.append(
                RowProblem(
                    shown, None, f"unsupported manifest type; use {', '.join(TABLE_SUFFIXES)}"
                )
            )
    except Exception as exc:  # noqa: BLE001 - any parser failure is a problem with this file
        table.problems.append(RowProblem(shown, None, f"cannot read the file: {exc}"))
    return table


def _read_csv(path: Path, table: Table, delimiter: str | None) -> None:
    text, problem = read_text_utf8(path, table.file)
    if problem:
        table.problems.append(problem)
        return
    assert text is not None
    if delimiter is None:
        # Judge by the header line only: report text and ';'-separated image lists in the
        # data rows would mislead a sniffer.
        header_line = text.split("\n", 1)[0]
        delimiter = max((",", ";", "\t"), key=header_line.count)
        if header_line.count(delimiter) == 0:
            delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    for record in reader:
        row_number = reader.line_num
        if header is None:
            header = [_clean_key(h) for h in record]
            table.columns = header
            continue
        if not any(cell.strip() for cell in record):
            continue
        if len(record) > len(header):
            table.problems.append(
                RowProblem(
                    table.file, row_number, f"{len(record)} values but {len(header)} columns"
                )
            )
            continue
        values = {key: (record[i] if i < len(record) else "") for i, key in enumerate(header)}
        table.rows.append((row_number, values))
    if header is None:
        table.problems.append(RowProblem(table.file, None, "the file is empty"))


def _read_jsonl(path: Path, table: Table) -> None:
    text, problem = read_text_utf8(path, table.file)
    if problem:
        table.problems.append(problem)
        return
    assert text is not None
    columns: dict[str, None] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            table.problems.append(RowProblem(table.file, line_number, f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            table.problems.append(RowProblem(table.file, line_number, "a line must be an object"))
            continue
        row = {_clean_key(k): v for k, v in value.items()}
        columns.update(dict.fromkeys(row))
        table.rows.append((line_number, row))
    table.columns = list(columns)


def _read_json(path: Path, table: Table) -> None:
    text, problem = read_text_utf8(path, table.file)
    if problem:
        table.problems.append(problem)
        return
    assert text is not None
    value = json.loads(text)
    if not isinstance(value, list):
        table.problems.append(RowProblem(table.file, None, "expected a JSON list of objects"))
        return
    columns: dict[str, None] = {}
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            table.problems.append(RowProblem(table.file, index, "an entry must be an object"))
            continue
        row = {_clean_key(k): v for k, v in item.items()}
        columns.update(dict.fromkeys(row))
        table.rows.append((index, row))
    table.columns = list(columns)


def _read_xlsx(path: Path, table: Table, sheet: str | None) -> None:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        header: list[str] | None = None
        for row_number, record in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if header is None:
                if not any(cell is not None for cell in record):
                    continue
                header = [_clean_key(h) for h in record]
                table.columns = header
                continue
            if not any(cell not in (None, "") for cell in record):
                continue
            values = {
                key: ("" if cell is None else cell)
                for key, cell in zip(header, record, strict=False)
                if key
            }
            table.rows.append((row_number, values))
        if header is None:
            table.problems.append(RowProblem(table.file, None, "the sheet is empty"))
    finally:
        workbook.close()


def _read_parquet(path: Path, table: Table) -> None:
    import pyarrow.parquet as pq

    data = pq.read_table(path)
    table.columns = [_clean_key(name) for name in data.column_names]
    for index, record in enumerate(data.to_pylist(), start=1):
        table.rows.append((index, {_clean_key(k): v for k, v in record.items()}))


def missing_columns(table: Table, required: list[tuple[str, ...]]) -> RowProblem | None:
    """A problem naming every required column (or group of alternatives) that is absent."""
    absent = []
    present = set(table.columns)
    for alternatives in required:
        if not present.intersection(alternatives):
            absent.append(" or ".join(repr(a) for a in alternatives))
    if not absent:
        return None
    have = ", ".join(table.columns) or "none"
    return RowProblem(
        table.file, None, f"missing required column {', '.join(absent)} (columns found: {have})"
    )


def text_value(value: object) -> str:
    """A cell as stripped text ('' for empty/None)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def media_problem(root: Path, relative: str, kind: str) -> str | None:
    """Why `relative` is not usable media of `kind` (image | video | frames), or None."""
    from studies.benchmarks.base import (
        check_frame_folder,
        check_image,
        check_media_path,
        check_video,
    )

    try:
        path = check_media_path(root, relative)
        if kind == "image":
            check_image(path)
        elif kind == "video":
            check_video(path)
        else:
            check_frame_folder(path)
    except ValueError as exc:
        return str(exc)
    return None


def split_list(value: object) -> list[str]:
    """Several paths in one cell: a JSON list, or names separated by ';' (or '|')."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v).strip() for v in parsed if str(v).strip()]
    separator = ";" if ";" in text else "|"
    return [part.strip() for part in text.split(separator) if part.strip()]


def unique_records(
    file: str, numbered: list[tuple[int, CaseRecord]], what: str = "case id"
) -> tuple[list[CaseRecord], list[RowProblem]]:
    """Records with unique case keys (the first of each), and a problem for every repeat."""
    from studies.benchmarks.base import duplicate_problems

    problems = duplicate_problems(file, [(row, r.case_key) for row, r in numbered], what)
    repeated = {p.row for p in problems}
    return [r for row, r in numbered if row not in repeated], problems
