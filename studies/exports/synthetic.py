"""The synthetic label: which part of the data is synthetic, as exports, tables and pages say it.

Two things can be synthetic, and a paper must not mix them up: the cases (a synthetic
benchmark: procedurally drawn images and reports, not patients) and the judgments (simulated
readers, not real ones). A label is one of `SYNTHETIC_KINDS`, or "" for real data. Exports
carry it in the column `synthetic` (`SYNTHETIC_COLUMN`), and re-analysis reads it back with
`parse_synthetic`, so a study's own export keeps its label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

CASES = "cases"
JUDGMENTS = "judgments"
BOTH = "cases+judgments"
# A file whose column says only "true" (written before the kind was recorded).
UNSTATED = "unstated"
SYNTHETIC_KINDS: tuple[str, ...] = (CASES, JUDGMENTS, BOTH, UNSTATED)
SYNTHETIC_COLUMN = "synthetic"

_LINES = {
    CASES: "SYNTHETIC DATA: synthetic cases (procedurally drawn, not patients), "
    "judged by the study's readers.",
    JUDGMENTS: "SYNTHETIC DATA: simulated judgments, not real readers.",
    BOTH: "SYNTHETIC DATA: synthetic cases (not patients) and simulated judgments "
    "(not real readers).",
    UNSTATED: "SYNTHETIC DATA: synthetic cases or simulated judgments (the source does not "
    "say which), not patients or real readers.",
}
_SHORT = {
    CASES: "synthetic cases",
    JUDGMENTS: "simulated judgments",
    BOTH: "synthetic cases, simulated judgments",
    UNSTATED: "synthetic",
}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", "", "nan", "none"}


def synthetic_kind(*, cases: bool, judgments: bool) -> str:
    """The label of data whose cases and/or judgments are synthetic ("" for neither)."""
    if cases and judgments:
        return BOTH
    return CASES if cases else JUDGMENTS if judgments else ""


def combine(kinds: Iterable[str]) -> str:
    """One label for data that mixes rows of these labels (e.g. cases of two benchmarks)."""
    found = {kind for kind in kinds if kind}
    if not found:
        return ""
    if found == {UNSTATED}:
        return UNSTATED
    cases = bool(found & {CASES, BOTH})
    judgments = bool(found & {JUDGMENTS, BOTH})
    return synthetic_kind(cases=cases, judgments=judgments) or UNSTATED


class SyntheticLabelError(ValueError):
    """A `synthetic` cell that names no kind; the message says which values are allowed."""


def parse_synthetic(value: Any) -> str:
    """The label a `synthetic` cell states: a kind, "" (real) or, for a bare true, UNSTATED."""
    if value is None or value is False:
        return ""
    if value is True:
        return UNSTATED
    if isinstance(value, float) and value != value:  # NaN: an empty CSV cell
        return ""
    text = str(value).strip().lower()
    if text in SYNTHETIC_KINDS:
        return text
    if text in _TRUE:
        return UNSTATED
    if text in _FALSE:
        return ""
    raise SyntheticLabelError(
        f"{value!r} is not a synthetic label; use one of {', '.join(SYNTHETIC_KINDS)}, "
        "true, or leave it empty for real data"
    )


def synthetic_line(kind: str) -> str:
    """The footer line of tables and exports made from data with this label ("" if real)."""
    return _LINES.get(kind, "") if kind else ""


def synthetic_short(kind: str) -> str:
    """A few words for captions and badges ("" if real)."""
    return _SHORT.get(kind, "") if kind else ""
