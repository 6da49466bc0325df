"""The rating form of a reader study and the judgment vocabulary: the one home of both.

A criterion is one declared object (`Criterion`: key, label, question, an anchor text per
point of the scale, and whether it is the harm criterion). A study's frozen form is the
only list of its criteria: the rating page, the judgment export, the reader statistics
(through the `likert_a_<key>` / `likert_b_<key>` columns), the preference policy and the
load bench all read it. Adding a criterion to a study is a form file, not code.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.notice import RESEARCH_NOTICE

# On-screen choice -> label. "left" is "Report A", "right" is "Report B".
PREFERENCES: dict[str, str] = {
    "left": "Report A is better",
    "right": "Report B is better",
    "tie": "Tie (equally good)",
    "both_bad": "Both unacceptable",
}
# A judgment's outcome mapped to the systems of its item.
WINNERS: tuple[str, ...] = ("a", "b", "tie", "both_bad")
SIDES = ("left", "right")
# Every criterion is rated on this scale (the reader statistics check it).
SCALE: tuple[int, ...] = (1, 2, 3, 4, 5)
_KEY = re.compile(r"[a-z_]{2,40}")
_LIKERT_COLUMN = re.compile(r"likert_(a|b)_([a-z_]{2,40})")


@dataclass(frozen=True)
class Criterion:
    """One rating criterion, in the manner of argilla's `RatingQuestion`."""

    key: str
    label: str
    question: str
    anchors: dict[str, str]  # "1".."5" -> what that score means
    # The criterion the harm (safety) non-inferiority analysis reads; at most one per form.
    harm: bool = False

    @property
    def scale(self) -> tuple[int, ...]:
        return SCALE

    def column(self, side: str) -> str:
        """The judgments-table column of this criterion for system side 'a' or 'b'."""
        return likert_column(side, self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "question": self.question,
            "anchors": dict(self.anchors),
            "harm": self.harm,
        }


def likert_column(side: str, key: str) -> str:
    return f"likert_{side}_{key}"


def likert_columns(keys: list[str] | tuple[str, ...]) -> list[str]:
    """`likert_a_<key>`, `likert_b_<key>` for each key, in order."""
    return [likert_column(side, key) for key in keys for side in ("a", "b")]


def criteria_in_columns(columns: Any) -> list[str]:
    """Criterion keys found in `likert_a_<key>` / `likert_b_<key>` columns, in column order."""
    keys: list[str] = []
    for column in columns:
        match = _LIKERT_COLUMN.fullmatch(str(column))
        if match and match.group(2) not in keys:
            keys.append(match.group(2))
    return keys


DEFAULT_FORM: dict[str, Any] = {
    "require_likert": True,
    "comment_required_for": ["both_bad"],
    "criteria": [
        {
            "key": "accuracy",
            "label": "Accuracy",
            "question": "Are the stated findings correct for this case?",
            "anchors": {
                "1": "Mostly wrong: major findings absent from the images or misdescribed",
                "2": "Several errors, at least one that matters clinically",
                "3": "Broadly correct with minor errors (size, location, morphology)",
                "4": "Correct apart from a trivial imprecision",
                "5": "Fully correct: every statement matches the images",
            },
        },
        {
            "key": "completeness",
            "label": "Completeness",
            "question": "Does it report everything a colonoscopist would need?",
            "anchors": {
                "1": "Misses most relevant findings (polyps, size, location, morphology)",
                "2": "Misses a relevant finding or several key attributes",
                "3": "Covers the main finding; some attributes missing",
                "4": "Nearly complete; one minor attribute missing",
                "5": "Complete: all findings with size, location, morphology, advice",
            },
        },
        {
            "key": "safety",
            "label": "Clinical safety",
            "harm": True,
            "question": "Could acting on this report harm the patient?",
            "anchors": {
                "1": "Likely harm: e.g. a missed or invented lesion changing management",
                "2": "Possible harm: misleading advice or classification",
                "3": "Unlikely harm, but a clinician would need to correct it",
                "4": "No plausible harm; small wording issues only",
                "5": "Safe: could be signed as written",
            },
        },
    ],
}

_GUIDELINES = """\
You will see one colonoscopy case at a time (images or a short video) and two reports,
"Report A" and "Report B", written for it. Their authors are hidden and their sides are
random.

1. Look at the images first, then read both reports in full.
2. Choose the better report, "tie" when they are equally good, or "both unacceptable" when
   neither could be used (then say why in the comment).
3. Rate each report from {low} to {high} on {criteria}; what each score
   means is written under the ratings for the highlighted one.
4. Judge the clinical content, not the style or the length.
5. A case you cannot assess (unreadable images, a broken clip): flag it with the reason.

Keyboard: {low}-{high} rate the highlighted row and move to the next (Report A, then Report B),
arrow keys choose a row; A = A better, B = B better, T = tie, X = both unacceptable;
Enter = submit (Ctrl+Enter in the comment box); C = comment; G = these guidelines;
F = cannot assess; P = change an earlier answer.
{notice} Do not use these reports for patient care.
"""


def default_guidelines(form: dict[str, Any] | None = None) -> str:
    """The standard rater guidelines, naming the criteria of `form` (default: DEFAULT_FORM)."""
    labels = [c.get("label") or c["key"] for c in (form or DEFAULT_FORM)["criteria"]]
    labels = [label[0].lower() + label[1:] for label in labels]
    named = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
    return _GUIDELINES.format(low=SCALE[0], high=SCALE[-1], criteria=named, notice=RESEARCH_NOTICE)


DEFAULT_GUIDELINES = default_guidelines()


class FormError(ValueError):
    """A rating form definition or an answer that does not fit the form."""


def default_form() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_FORM)


def _default_harm(key: str) -> bool:
    return any(c["key"] == key and c.get("harm", False) for c in DEFAULT_FORM["criteria"])


def criteria(form: dict[str, Any] | None) -> list[Criterion]:
    """The criteria a (checked) form declares, in form order."""
    out = []
    for entry in (form or DEFAULT_FORM).get("criteria", []):
        # Without `harm` (e.g. a form frozen before criteria carried it) a criterion takes the
        # default form's declaration of the same key.
        harm = entry["harm"] if "harm" in entry else _default_harm(entry["key"])
        out.append(
            Criterion(
                key=entry["key"],
                label=entry.get("label") or entry["key"],
                question=entry.get("question", ""),
                anchors={str(k): v for k, v in entry.get("anchors", {}).items()},
                harm=bool(harm),
            )
        )
    return out


def criteria_keys(form: dict[str, Any]) -> list[str]:
    return [c["key"] for c in form.get("criteria", [])]


def harm_criterion(form: dict[str, Any] | None) -> str | None:
    """The key of the form's harm criterion, or None when it declares none."""
    return next((c.key for c in criteria(form) if c.harm), None)


_FORM_FIELDS = {"criteria", "require_likert", "comment_required_for"}
_CRITERION_FIELDS = {"key", "label", "question", "anchors", "harm"}


def check_form(form: dict[str, Any]) -> dict[str, Any]:
    """A validated copy of a form definition (FormError naming the field otherwise)."""
    if not isinstance(form, dict):
        raise FormError("form: give a table with 'criteria'")
    unknown = sorted(set(form) - _FORM_FIELDS)
    if unknown:
        raise FormError(f"form.{unknown[0]}: unknown field (use {', '.join(sorted(_FORM_FIELDS))})")
    criteria_ = form.get("criteria")
    if not isinstance(criteria_, list) or not criteria_:
        raise FormError("form.criteria: give at least one criterion")
    if not isinstance(form.get("require_likert", True), bool):
        raise FormError("form.require_likert: use true or false")
    required_for = form.get("comment_required_for", ["both_bad"])
    if not isinstance(required_for, list) or set(map(str, required_for)) - set(PREFERENCES):
        raise FormError(
            f"form.comment_required_for: a list of choices from {', '.join(PREFERENCES)}"
        )
    seen: set[str] = set()
    harm: list[str] = []
    points = [str(p) for p in SCALE]
    for number, criterion in enumerate(criteria_, start=1):
        where = f"form.criteria[{number}]"
        if not isinstance(criterion, dict):
            raise FormError(f"{where}: give a table with key, label, question and anchors")
        unknown = sorted(set(criterion) - _CRITERION_FIELDS)
        if unknown:
            raise FormError(
                f"{where}.{unknown[0]}: unknown field (use {', '.join(sorted(_CRITERION_FIELDS))})"
            )
        key = criterion.get("key", "")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise FormError(f"{where}.key: use 2-40 letters a-z or '_'")
        if key in seen:
            raise FormError(f"{where}.key: {key!r} appears twice")
        seen.add(key)
        for text_field in ("label", "question"):
            if not isinstance(criterion.get(text_field, ""), str):
                raise FormError(f"{where}.{text_field}: give a text")
        anchors = criterion.get("anchors", {})
        if not isinstance(anchors, dict) or sorted(map(str, anchors)) != points:
            raise FormError(f"{where}.anchors: describe each score {SCALE[0]} to {SCALE[-1]}")
        if not all(isinstance(text, str) and text.strip() for text in anchors.values()):
            raise FormError(f"{where}.anchors: give a text for every score")
        if not isinstance(criterion.get("harm", False), bool):
            raise FormError(f"{where}.harm: use true or false")
        if criterion.get("harm", False):
            harm.append(key)
    if len(harm) > 1:
        raise FormError(
            f"form.criteria: only one criterion may be the harm criterion ({', '.join(harm)})"
        )
    clean = copy.deepcopy(form)
    for criterion in clean["criteria"]:
        criterion["anchors"] = {str(k): v for k, v in criterion["anchors"].items()}
        criterion.setdefault("label", criterion["key"].replace("_", " ").capitalize())
    return clean


def _check_suffix(suffix: str, source: str) -> str:
    if suffix.lower() not in (".toml", ".json"):
        raise FormError(f"{source}: a form file is .toml or .json, not '{suffix or source}'")
    return suffix.lower()


def load_form_file(path: str | Path) -> dict[str, Any]:
    """A checked form from a TOML or JSON file (FormError naming the file and field)."""
    path = Path(path)
    _check_suffix(path.suffix, str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormError(f"{path}: cannot read the form file ({exc})") from exc
    return parse_form(text, path.suffix, source=str(path))


def parse_form(text: str, suffix: str, *, source: str = "form file") -> dict[str, Any]:
    """A checked form from TOML (`suffix` .toml) or JSON (.json) text; a file may also hold
    it under a top-level `form` table. FormError naming the source and the field."""
    suffix = _check_suffix(suffix, source)
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise FormError(f"{source}: not valid {suffix[1:].upper()} ({exc})") from exc
    if isinstance(data, dict) and isinstance(data.get("form"), dict):
        data = data["form"]
    try:
        return check_form(data)
    except FormError as exc:
        raise FormError(f"{source}: {exc}") from exc


def anchors_text(criterion: Criterion | dict[str, Any]) -> str:
    """The anchors as one tooltip: '1 - ...' lines."""
    anchors = criterion.anchors if isinstance(criterion, Criterion) else criterion["anchors"]
    return "\n\n".join(f"**{score}** - {anchors[str(score)]}" for score in SCALE)


def check_likert(form: dict[str, Any], likert: dict[str, Any] | None) -> dict[str, dict[str, int]]:
    """`{"left": {criterion: 1-5}, "right": {...}}` checked against the form."""
    likert = likert or {}
    unknown = set(likert) - set(SIDES)
    if unknown:
        raise FormError(f"Likert ratings: unknown side {sorted(unknown)[0]!r} (left or right)")
    keys = criteria_keys(form)
    required = bool(form.get("require_likert", True))
    clean: dict[str, dict[str, int]] = {}
    for side, label in (("left", "Report A"), ("right", "Report B")):
        values = likert.get(side) or {}
        extra = set(values) - set(keys)
        if extra:
            raise FormError(f"{label}: unknown criterion {sorted(extra)[0]!r}")
        clean[side] = {}
        for criterion in form["criteria"]:
            value = values.get(criterion["key"])
            if value is None:
                if required:
                    raise FormError(f"{label}: rate {criterion['label']} ({SCALE[0]}-{SCALE[-1]})")
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value not in SCALE:
                raise FormError(
                    f"{label}: {criterion['label']} must be a whole number {SCALE[0]}-{SCALE[-1]}"
                )
            clean[side][criterion["key"]] = value
    return clean
