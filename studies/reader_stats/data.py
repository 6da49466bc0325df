"""The judgments table: its columns, loading from files and checks.

Every analysis in this package takes one pandas DataFrame with the columns below (the
contract with the collection side). Rows are put in canonical orientation
(system_a < system_b) once, here, so that the analyses never need to flip anything.
Likert criteria are discovered from the `likert_a_<key>` / `likert_b_<key>` columns, not
from a constant; their labels and the harm criterion come from the study's rating form
(`attrs["form"]`, set by `studies.readers.judgments.study_judgments`), or from the default
form's declarations for a file. This module never reads the store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studies.exports.synthetic import (
    JUDGMENTS,
    SYNTHETIC_COLUMN,
    SYNTHETIC_KINDS,
    SyntheticLabelError,
    combine,
    parse_synthetic,
)
from studies.readers.form import (
    DEFAULT_FORM,
    SCALE,
    WINNERS,
    Criterion,
    criteria,
    criteria_in_columns,
    likert_columns,
)

REQUIRED_COLUMNS: tuple[str, ...] = ("rater", "case", "system_a", "system_b", "winner")
# Besides these, any number of `likert_a_<key>` / `likert_b_<key>` pairs (1-5 or empty).
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "left",
    "time_on_task_s",
    "is_gold",
    "gold_answer",
    "is_duplicate",
    "item",
    "submitted_at",
    "len_a",
    "len_b",
)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class JudgmentsError(ValueError):
    """Judgments that cannot be analysed; the message names the rows and columns to fix."""


def _rows_text(rows: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _as_bool(series: pd.Series, column: str, source: str, problems: list[str]) -> pd.Series:
    def convert(value: Any) -> bool | None:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return False
        if isinstance(value, bool | np.bool_):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or text == "nan":
            return False
        return None

    converted = series.map(convert)
    bad = [int(i) + 1 for i in np.flatnonzero(converted.isna().to_numpy())]
    if bad:
        problems.append(f"{source}: column '{column}' {_rows_text(bad)}: expected true or false")
    return converted.fillna(False).astype(bool)


def prepare_judgments(frame: pd.DataFrame, *, source: str = "judgments") -> pd.DataFrame:
    """Check `frame` against the judgments contract and return a clean, oriented copy.

    Raises JudgmentsError listing every problem (column, rows) at once; rows are numbered
    from 1 in the order given.
    """
    frame = frame.reset_index(drop=True)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise JudgmentsError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (required: {', '.join(REQUIRED_COLUMNS)})"
        )
    if frame.empty:
        raise JudgmentsError(f"{source}: no judgments")
    problems: list[str] = []
    out = pd.DataFrame(index=frame.index)
    for column in ("rater", "case", "system_a", "system_b"):
        values = frame[column]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        if empty.any():
            rows = [int(i) + 1 for i in np.flatnonzero(empty.to_numpy())]
            problems.append(f"{source}: column '{column}' is empty in {_rows_text(rows)}")
        out[column] = values.astype(object).where(~empty, "").map(lambda v: str(v).strip())
    same = out["system_a"] == out["system_b"]
    if same.any():
        rows = [int(i) + 1 for i in np.flatnonzero(same.to_numpy())]
        problems.append(f"{source}: system_a equals system_b in {_rows_text(rows)}")
    winner = (
        frame["winner"]
        .astype(object)
        .map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    )
    winner = winner.str.strip().str.lower().str.replace(" ", "_").str.replace("-", "_")
    bad = ~winner.isin(WINNERS)
    if bad.any():
        rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
        examples = ", ".join(sorted({repr(frame["winner"].iloc[r - 1]) for r in rows[:5]}))
        problems.append(
            f"{source}: column 'winner' in {_rows_text(rows)} has {examples}; "
            f"expected one of {', '.join(WINNERS)}"
        )
    out["winner"] = winner

    if "left" in frame.columns:
        left = (
            frame["left"]
            .astype(object)
            .map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        )
        # Exports may name the left report's system instead of its side.
        named_a = left.notna() & (left == out["system_a"])
        named_b = left.notna() & (left == out["system_b"]) & ~named_a
        left = left.str.strip().str.lower().where(~named_a, "a").where(~named_b, "b")
        bad = left.notna() & ~left.isin(["a", "b"])
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            problems.append(
                f"{source}: column 'left' in {_rows_text(rows)}: expected a, b or the name "
                "of system_a or system_b"
            )
        out["left"] = left.where(left.isin(["a", "b"]), None)
    else:
        out["left"] = None

    for column in likert_columns(criteria_in_columns(frame.columns)):
        if column not in frame.columns:
            out[column] = np.nan
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        given = frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        bad = given & (
            values.isna() | (values < SCALE[0]) | (values > SCALE[-1]) | (values % 1 != 0)
        )
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            problems.append(
                f"{source}: column '{column}' in {_rows_text(rows)}: expected a whole number "
                f"{SCALE[0]}-{SCALE[-1]}"
            )
        out[column] = values.where(~bad).astype(float)

    for column in ("time_on_task_s", "len_a", "len_b"):
        if column not in frame.columns:
            out[column] = np.nan
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        given = frame[column].notna() & (frame[column].astype(str).str.strip() != "")
        bad = given & (values.isna() | (values < 0))
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            problems.append(
                f"{source}: column '{column}' in {_rows_text(rows)}: expected a number >= 0"
            )
        out[column] = values.where(~bad).astype(float)

    for column in ("is_gold", "is_duplicate"):
        if column in frame.columns:
            out[column] = _as_bool(frame[column], column, source, problems)
        else:
            out[column] = False
    if "is_gold" not in frame.columns and "item_kind" in frame.columns:
        # The study export names the item kind instead.
        out["is_gold"] = frame["item_kind"].astype(str).str.strip().str.lower() == "gold"
    superseded = pd.Series(False, index=frame.index)
    if "superseded" in frame.columns:
        superseded = _as_bool(frame["superseded"], "superseded", source, problems)

    if "gold_answer" in frame.columns:
        gold = (
            frame["gold_answer"]
            .astype(object)
            .map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        )
        gold = gold.str.strip().str.lower()
        bad = gold.notna() & (gold != "") & ~gold.isin(WINNERS)
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            problems.append(
                f"{source}: column 'gold_answer' in {_rows_text(rows)}: "
                f"expected one of {', '.join(WINNERS)}"
            )
        out["gold_answer"] = gold.where(gold.isin(WINNERS), None)
    else:
        out["gold_answer"] = None
    if problems:
        raise JudgmentsError("\n".join(problems))

    if "item" in frame.columns and frame["item"].notna().all():
        out["item"] = frame["item"].astype(str)
    else:
        pair = np.where(
            out["system_a"] < out["system_b"],
            out["system_a"] + "|" + out["system_b"],
            out["system_b"] + "|" + out["system_a"],
        )
        derived = out["case"] + "|" + pd.Series(pair, index=out.index)
        if "item" in frame.columns:
            out["item"] = frame["item"].astype(object).where(frame["item"].notna(), derived)
            out["item"] = out["item"].astype(str)
        else:
            out["item"] = derived
    if "submitted_at" in frame.columns:
        out["submitted_at"] = pd.to_datetime(frame["submitted_at"], errors="coerce", utc=True)
    else:
        out["submitted_at"] = pd.NaT
    if "judgment_id" in frame.columns:
        out["judgment_id"] = frame["judgment_id"]
    # A corrected judgment is replaced by its correction: only current answers count.
    out = out[~superseded.to_numpy()].reset_index(drop=True)
    if out.empty:
        raise JudgmentsError(f"{source}: no current judgments (all are superseded)")
    return orient(out)


def orient(frame: pd.DataFrame) -> pd.DataFrame:
    """Swap sides where system_a > system_b so every comparison has one orientation."""
    frame = frame.copy()
    flip = (frame["system_a"] > frame["system_b"]).to_numpy()
    if not flip.any():
        return frame
    first = frame["system_a"].to_numpy(dtype=object)
    second = frame["system_b"].to_numpy(dtype=object)
    frame["system_a"] = np.where(flip, second, first)
    frame["system_b"] = np.where(flip, first, second)
    for column in ("winner", "left", "gold_answer"):
        if column in frame.columns:
            values = frame[column].to_numpy(dtype=object)
            swapped = values.copy()
            swapped[flip & (values == "a")] = "b"
            swapped[flip & (values == "b")] = "a"
            frame[column] = swapped
    pairs = [(f"likert_a_{c}", f"likert_b_{c}") for c in criteria_of(frame)]
    pairs.append(("len_a", "len_b"))
    for first, second in pairs:
        if first in frame.columns and second in frame.columns:
            values_first = frame[first].to_numpy(copy=True)
            values_second = frame[second].to_numpy(copy=True)
            frame[first] = np.where(flip, values_second, values_first)
            frame[second] = np.where(flip, values_first, values_second)
    return frame


def load_judgments_file(path: str | Path) -> pd.DataFrame:
    """Read judgments from a .csv or .jsonl file and check them (JudgmentsError if bad)."""
    path = Path(path)
    if not path.exists():
        raise JudgmentsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=True, comment="#")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise JudgmentsError(f"{path}: not a readable CSV file ({exc})") from exc
    elif suffix in (".jsonl", ".ndjson"):
        records: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise JudgmentsError(f"{path}: line {number} is not JSON ({exc.msg})") from exc
                if not isinstance(record, dict):
                    raise JudgmentsError(f"{path}: line {number} is not a JSON object")
                records.append(record)
        frame = pd.DataFrame.from_records(records)
    else:
        raise JudgmentsError(f"{path}: expected a .csv or .jsonl file, not '{suffix or path.name}'")
    kind = _file_synthetic_kind(frame, str(path.name))
    prepared = prepare_judgments(frame, source=str(path.name))
    set_synthetic(prepared, kind)
    prepared.attrs["source"] = str(path)
    return prepared


def _file_synthetic_kind(frame: pd.DataFrame, source: str) -> str:
    """The label a file's `synthetic` column states (a study export writes it on every row)."""
    if SYNTHETIC_COLUMN not in frame.columns:
        return ""
    kinds: list[str] = []
    bad: list[int] = []
    for number, value in enumerate(frame[SYNTHETIC_COLUMN], start=1):
        try:
            kinds.append(parse_synthetic(value))
        except SyntheticLabelError:
            bad.append(number)
    if bad:
        raise JudgmentsError(
            f"{source}: column '{SYNTHETIC_COLUMN}' in {_rows_text(bad)}: expected one of "
            f"{', '.join(SYNTHETIC_KINDS)}, true, or empty for real data"
        )
    return combine(kinds)


def set_synthetic(frame: pd.DataFrame, kind: str) -> None:
    """Label a judgments table: `kind` is a `studies.exports.synthetic` kind, "" for real."""
    frame.attrs["synthetic"] = bool(kind)
    frame.attrs["synthetic_kind"] = kind


def is_synthetic(frame: pd.DataFrame) -> bool:
    """Whether any part of the table (its cases or its judgments) is synthetic."""
    return bool(frame.attrs.get("synthetic", False))


def synthetic_kind_of(frame: pd.DataFrame) -> str:
    """The table's synthetic label ("" for real data).

    A table marked synthetic without a kind comes from the simulators: its judgments are
    simulated.
    """
    kind = frame.attrs.get("synthetic_kind") or ""
    if kind:
        return str(kind)
    return JUDGMENTS if is_synthetic(frame) else ""


def criteria_of(judgments: pd.DataFrame) -> list[str]:
    """The Likert criteria a judgments table holds, discovered from its columns."""
    return criteria_in_columns(judgments.columns)


def declared_criteria(judgments: pd.DataFrame) -> list[Criterion]:
    """The criteria of the table's columns as declared by its form (`attrs["form"]`).

    Without a form (a judgments file) a key takes the default form's declaration; a key no
    form declares is a plain criterion named after its key.
    """
    declared = {c.key: c for c in criteria(judgments.attrs.get("form") or DEFAULT_FORM)}
    return [
        declared.get(key) or Criterion(key, key.replace("_", " ").capitalize(), "", {})
        for key in criteria_of(judgments)
    ]


def harm_criterion_of(judgments: pd.DataFrame) -> str | None:
    """The key of the declared harm criterion among the table's criteria, or None."""
    return next((c.key for c in declared_criteria(judgments) if c.harm), None)
