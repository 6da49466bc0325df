"""The rating form of a reader study: preferences and anchored 1-5 Likert criteria.

The criterion keys are part of the judgments contract read by `studies.reader_stats`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

# On-screen choice -> label. "left" is "Report A", "right" is "Report B".
PREFERENCES: dict[str, str] = {
    "left": "Report A is better",
    "right": "Report B is better",
    "tie": "Tie (equally good)",
    "both_bad": "Both unacceptable",
}
WINNERS = ("a", "b", "tie", "both_bad")
SIDES = ("left", "right")

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

DEFAULT_GUIDELINES = """\
You will see one colonoscopy case at a time (images or a short video) and two reports,
"Report A" and "Report B", written for it. Their authors are hidden and their sides are
random.

1. Look at the images first, then read both reports in full.
2. Choose the better report, "tie" when they are equally good, or "both unacceptable" when
   neither could be used (then say why in the comment).
3. Rate each report from 1 to 5 on accuracy, completeness and clinical safety; hover over a
   scale to see what each score means.
4. Judge the clinical content, not the style or the length.

Keyboard: 1 = A better, 2 = B better, 3 = tie, 4 = both unacceptable, Enter = submit.
This is research software, not a medical device: do not use these reports for patient care.
"""


class FormError(ValueError):
    """A rating form definition or an answer that does not fit the form."""


def default_form() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_FORM)


def criteria_keys(form: dict[str, Any]) -> list[str]:
    return [c["key"] for c in form.get("criteria", [])]


def check_form(form: dict[str, Any]) -> dict[str, Any]:
    """A validated copy of a form definition (FormError naming the field otherwise)."""
    criteria = form.get("criteria")
    if not isinstance(criteria, list) or not criteria:
        raise FormError("form.criteria: give at least one criterion")
    seen: set[str] = set()
    for number, criterion in enumerate(criteria, start=1):
        key = criterion.get("key", "")
        if not re.fullmatch(r"[a-z_]{2,40}", key or ""):
            raise FormError(f"form.criteria[{number}].key: use 2-40 letters a-z or '_'")
        if key in seen:
            raise FormError(f"form.criteria[{number}].key: {key!r} appears twice")
        seen.add(key)
        anchors = criterion.get("anchors", {})
        if sorted(anchors) != ["1", "2", "3", "4", "5"]:
            raise FormError(f"form.criteria[{number}].anchors: describe each score 1 to 5")
    return copy.deepcopy(form)


def anchors_text(criterion: dict[str, Any]) -> str:
    """The anchors as one tooltip: '1 - ...' lines."""
    return "\n\n".join(f"**{score}** - {criterion['anchors'][score]}" for score in "12345")


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
                    raise FormError(f"{label}: rate {criterion['label']} (1-5)")
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
                raise FormError(f"{label}: {criterion['label']} must be a whole number 1-5")
            clean[side][criterion["key"]] = value
    return clean
