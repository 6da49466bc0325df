"""The judgments table: its columns, loading from files, checks and simulation.

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
    synthetic = False
    if "synthetic" in frame.columns:
        synthetic = frame["synthetic"].astype(str).str.strip().str.lower().isin(_TRUE).any()
    prepared = prepare_judgments(frame, source=str(path.name))
    prepared.attrs["synthetic"] = bool(synthetic)
    prepared.attrs["source"] = str(path)
    return prepared


def is_synthetic(frame: pd.DataFrame) -> bool:
    return bool(frame.attrs.get("synthetic", False))


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


def simulate_judgments(
    strengths: dict[str, float],
    *,
    n_cases: int = 40,
    raters: int = 4,
    raters_per_item: int = 2,
    tie_nu: float = 0.0,
    both_bad_rate: float = 0.0,
    position_bias: float = 0.0,
    rater_noise: float = 0.0,
    gold_per_rater: int = 0,
    duplicates_per_rater: int = 0,
    likert: bool = True,
    criteria: tuple[str, ...] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Synthetic judgments from known Bradley-Terry strengths (log scale), labelled synthetic.

    Likert scores are drawn for each of `criteria` (default: the default form's criteria).
    Every case is read for every pair of systems by `raters_per_item` raters. Ties follow
    Davidson's model with tie parameter `tie_nu` (0: no ties). `position_bias` adds to the
    log-odds of the left report; `rater_noise` is each rater's random shift of the log-odds.
    """
    rng = np.random.default_rng(seed)
    keys = criteria or tuple(c["key"] for c in DEFAULT_FORM["criteria"])
    systems = sorted(strengths)
    rater_names = [f"rater{i + 1:02d}" for i in range(raters)]
    rater_shift = dict(zip(rater_names, rng.normal(0.0, rater_noise, raters), strict=True))
    case_names = [f"case{i + 1:03d}" for i in range(n_cases)]
    case_effect = rng.normal(0.0, 0.4, n_cases)
    quality = {s: strengths[s] for s in systems}
    # One report per (system, case): its length in words.
    lengths = {
        (system, case_index): int(rng.integers(30, 120))
        for system in systems
        for case_index in range(n_cases)
    }
    records: list[dict[str, Any]] = []

    def judge(rater: str, case_index: int, a: str, b: str, left: str) -> dict[str, Any]:
        d = quality[a] - quality[b] + rater_shift[rater]
        d += position_bias if left == "a" else -position_bias
        half = np.exp(d / 2.0)
        denominator = half + 1.0 / half + tie_nu
        p_a, p_tie = half / denominator, tie_nu / denominator
        u = rng.random()
        winner = "a" if u < p_a else ("tie" if u < p_a + p_tie else "b")
        if winner == "tie" and rng.random() < both_bad_rate:
            winner = "both_bad"
        record: dict[str, Any] = {
            "rater": rater,
            "case": case_names[case_index],
            "system_a": a,
            "system_b": b,
            "winner": winner,
            "left": left,
            "time_on_task_s": float(rng.lognormal(np.log(45.0), 0.5)),
            "len_a": lengths[(a, case_index)],
            "len_b": lengths[(b, case_index)],
        }
        if likert:
            for side, system in (("a", a), ("b", b)):
                base = 3.0 + 0.8 * quality[system] + case_effect[case_index]
                for criterion in keys:
                    score = base + rng.normal(0.0, 0.8) + rater_shift[rater] * 0.5
                    record[f"likert_{side}_{criterion}"] = int(np.clip(np.rint(score), 1, 5))
        return record

    for case_index in range(n_cases):
        for i, a in enumerate(systems):
            for b in systems[i + 1 :]:
                chosen = rng.choice(rater_names, size=min(raters_per_item, raters), replace=False)
                for rater in chosen:
                    left = "a" if rng.random() < 0.5 else "b"
                    record = judge(str(rater), case_index, a, b, left)
                    record["item"] = f"{case_names[case_index]}|{a}|{b}"
                    records.append(record)
    for rater in rater_names:
        for g in range(gold_per_rater):
            case_index = int(rng.integers(n_cases))
            a, b = systems[0], systems[-1]
            left = "a" if rng.random() < 0.5 else "b"
            record = judge(rater, case_index, a, b, left)
            # A gold item has an obvious answer (here: the stronger report); careful raters
            # find it nine times out of ten.
            answer = "a" if quality[a] >= quality[b] else "b"
            wrong = "b" if answer == "a" else "a"
            record["winner"] = answer if rng.random() < 0.9 else wrong
            record.update(is_gold=True, item=f"gold{g}", gold_answer=answer)
            records.append(record)
        own = [i for i, r in enumerate(records) if r["rater"] == rater and not r.get("is_gold")]
        for index in rng.choice(own, size=min(duplicates_per_rater, len(own)), replace=False):
            original = records[int(index)]
            again = judge(
                rater,
                case_names.index(original["case"]),
                original["system_a"],
                original["system_b"],
                "b" if original["left"] == "a" else "a",
            )
            again.update(is_duplicate=True, item=original["item"])
            records.append(again)
    frame = pd.DataFrame.from_records(records)
    prepared = prepare_judgments(frame, source="simulated judgments")
    prepared.attrs["synthetic"] = True
    prepared.attrs["source"] = f"simulated (seed {seed})"
    return prepared
