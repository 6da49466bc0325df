"""Structured colonoscopy findings as benchmarks store them (the schema of metrics.clinical).

Loaders meet many spellings of the same finding ("Sigmoid colon", "Is", "TA", "SSA/P");
these functions map them onto the one vocabulary (`metrics.clinical.vocab`, imported here
under its own names) and raise ValueError, with the word and what is allowed, when a value
cannot be mapped, so a loader can name the bad row.
"""

from __future__ import annotations

import math
import re
from typing import Any

from metrics.clinical.vocab import (
    DYSPLASIA,
    HISTOLOGIES,
    JNET_CLASSES,
    KUDO_CLASSES,
    LESION_FIELDS,
    LOCATIONS,
    LST_CLASSES,
    NICE_CLASSES,
    PARIS_BASE,
    location_phrase,
    size_class,
)

_LOCATION_WORDS = {
    "cecum": "cecum",
    "caecum": "cecum",
    "cecal": "cecum",
    "caecal": "cecum",
    "ileocecal valve": "cecum",
    "appendiceal orifice": "cecum",
    "ascending": "ascending",
    "ascending colon": "ascending",
    "right colon": "ascending",
    "hepatic flexure": "hepatic_flexure",
    "hepatic_flexure": "hepatic_flexure",
    "transverse": "transverse",
    "transverse colon": "transverse",
    "trasnverse": "transverse",
    "splenic flexure": "splenic_flexure",
    "splenic_flexure": "splenic_flexure",
    "descending": "descending",
    "descending colon": "descending",
    "left colon": "descending",
    "sigmoid": "sigmoid",
    "sigmoid colon": "sigmoid",
    # REAL-colon-derived labels (SurgViVQA) write the sigmoid as "sigma".
    "sigma": "sigmoid",
    "rectosigmoid": "sigmoid",
    "rectosigmoid junction": "sigmoid",
    "rectum": "rectum",
    "rectal": "rectum",
}
_HISTOLOGY_WORDS = {
    "hyperplastic": "hyperplastic",
    "hyperplastic polyp": "hyperplastic",
    "hp": "hyperplastic",
    "adenoma": "adenoma",
    "adenomatous": "adenoma",
    "adenomatous polyp": "adenoma",
    "tubular adenoma": "tubular_adenoma",
    "tubular_adenoma": "tubular_adenoma",
    "ta": "tubular_adenoma",
    "tubulovillous adenoma": "tubulovillous_adenoma",
    "tubulovillous_adenoma": "tubulovillous_adenoma",
    "tva": "tubulovillous_adenoma",
    "villous adenoma": "villous_adenoma",
    "villous_adenoma": "villous_adenoma",
    "va": "villous_adenoma",
    "sessile serrated lesion": "sessile_serrated_lesion",
    "sessile_serrated_lesion": "sessile_serrated_lesion",
    "sessile serrated adenoma": "sessile_serrated_lesion",
    "sessile serrated adenoma/polyp": "sessile_serrated_lesion",
    "sessile serrated polyp": "sessile_serrated_lesion",
    "ssl": "sessile_serrated_lesion",
    "ssa": "sessile_serrated_lesion",
    "ssa/p": "sessile_serrated_lesion",
    "ssp": "sessile_serrated_lesion",
    "ad": "adenoma",
    "traditional serrated adenoma": "traditional_serrated_adenoma",
    "traditional_serrated_adenoma": "traditional_serrated_adenoma",
    "tsa": "traditional_serrated_adenoma",
    "carcinoma": "carcinoma",
    "adenocarcinoma": "carcinoma",
    "cancer": "carcinoma",
    "invasive carcinoma": "carcinoma",
    # SUN-SEG: "Invasive cancer (T1b)" (the T stage in brackets is not a histology).
    "invasive cancer": "carcinoma",
}
_GRADE = re.compile(r"^(low|high)[- ]grade\s+")
_ROMAN = {"i": "1", "ii": "2", "iii": "3"}
_MISSING = {"", "na", "n/a", "nan", "none", "null", "-", "unknown"}


def is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip().lower() in _MISSING


def _fail(field: str, value: object, allowed: tuple[str, ...]) -> ValueError:
    return ValueError(f"unknown {field} {value!r}; use one of {', '.join(allowed)}")


def normalise_size_mm(value: object) -> int | float | None:
    """A size in mm from 8, "8", "8 mm", "1.2 cm", "8-10 mm" (the upper bound) or "15mm-"
    (SUN-SEG's "15 mm or more": the stated bound)."""
    if is_missing(value):
        return None
    if isinstance(value, int | float):
        size = float(value)
    else:
        text = str(value).strip().lower().replace(",", ".")
        match = re.fullmatch(
            r"(?:<|>|~|approx\.?\s*)?(\d+(?:\.\d+)?)(?:\s*(?:-|to)\s*(\d+(?:\.\d+)?))?"
            r"\s*(mm|cm)?\s*(?:-|\+|or more)?",
            text,
        )
        if not match:
            raise ValueError(f"size {value!r} is not a number of mm (e.g. 8, '8 mm', '1.2 cm')")
        size = float(match.group(2) or match.group(1))
        if match.group(3) == "cm":
            size *= 10
    if size <= 0 or size > 200:
        raise ValueError(f"size {value!r} mm is outside 0-200 mm")
    return int(size) if float(size).is_integer() else round(size, 1)


def normalise_location(value: object) -> str | None:
    if is_missing(value):
        return None
    key = re.sub(r"\s+", " ", str(value).strip().lower().replace("-", " "))
    if key in _LOCATION_WORDS:
        return _LOCATION_WORDS[key]
    key = key.removesuffix(" colon").strip()
    if key in _LOCATION_WORDS:
        return _LOCATION_WORDS[key]
    raise _fail("location", value, LOCATIONS)


def normalise_paris(value: object) -> str | None:
    """'0-Is', 'Is', '0-IIa+IIc', 'IIa + IIc' and 'pedunculated'-style words."""
    if is_missing(value):
        return None
    # "IIa(LST-NG)": the bracket is the LST type, read separately by normalise_lst.
    text = re.sub(r"\s*\(.*?\)\s*", "", str(value)).strip()
    words = {
        "pedunculated": "0-Ip",
        "subpedunculated": "0-Isp",
        "semipedunculated": "0-Isp",
        "sessile": "0-Is",
        "flat elevated": "0-IIa",
        "slightly elevated": "0-IIa",
        "flat": "0-IIb",
        "depressed": "0-IIc",
        "excavated": "0-III",
    }
    if text.lower() in words:
        return words[text.lower()]
    parts = [p.strip() for p in re.split(r"\s*\+\s*", re.sub(r"^(paris\s*)?0\s*-?\s*", "", text))]
    canonical = {p.removeprefix("0-").lower(): p.removeprefix("0-") for p in PARIS_BASE}
    out = []
    for part in parts:
        key = part.replace(" ", "").lower()
        if key not in canonical:
            raise _fail("Paris class", value, PARIS_BASE)
        out.append(canonical[key])
    return "0-" + "+".join(out)


def normalise_nice(value: object) -> str | None:
    if is_missing(value):
        return None
    key = re.sub(r"^(nice\s*)?(type\s*)?", "", str(value).strip().lower()).strip()
    key = key.removesuffix(".0")
    key = _ROMAN.get(key, key)
    if key in NICE_CLASSES:
        return key
    raise _fail("NICE class", value, NICE_CLASSES)


def normalise_jnet(value: object) -> str | None:
    if is_missing(value):
        return None
    key = re.sub(r"^(jnet\s*)?(type\s*)?", "", str(value).strip().lower()).strip().upper()
    key = key.replace(" ", "").removesuffix(".0")
    for roman, arabic in (("III", "3"), ("II", "2"), ("I", "1")):
        if key.startswith(roman):
            key = arabic + key[len(roman) :]
            break
    if key in JNET_CLASSES:
        return key
    raise _fail("JNET class", value, JNET_CLASSES)


def normalise_kudo(value: object) -> str | None:
    if is_missing(value):
        return None
    key = re.sub(r"^(kudo\s*)?(pit\s*pattern\s*)?(type\s*)?", "", str(value).strip().lower())
    key = key.replace(" ", "").replace("-", "").upper()
    key = {"1": "I", "2": "II", "3S": "IIIS", "3L": "IIIL", "4": "IV", "5I": "VI", "5N": "VN"}.get(
        key, key
    )
    if key in KUDO_CLASSES:
        return key
    raise _fail("Kudo pit pattern", value, KUDO_CLASSES)


def normalise_lst(value: object) -> str | None:
    if is_missing(value):
        return None
    key = str(value).strip().upper().replace(" ", "-").replace("_", "-")
    key = key if key.startswith("LST-") else "LST-" + key
    if key in LST_CLASSES:
        return key
    raise _fail("LST type", value, LST_CLASSES)


def _histology_key(value: object) -> str:
    key = re.sub(r"\s+", " ", str(value).strip().lower().replace("_", " "))
    return re.sub(r"\s*\(.*?\)\s*", "", key).strip()


def histology_grade(value: object) -> str | None:
    """The dysplasia grade a histology names ("High-grade adenoma" -> "high_grade"), or None."""
    if is_missing(value):
        return None
    match = _GRADE.match(_histology_key(value))
    return f"{match.group(1)}_grade" if match else None


def normalise_dysplasia(value: object) -> str | None:
    """A DYSPLASIA value from "high-grade", "HGD", "high grade dysplasia", "low_grade" ..."""
    if is_missing(value):
        return None
    key = re.sub(r"[\s_-]+", " ", str(value).strip().lower()).removesuffix(" dysplasia")
    key = {"hgd": "high grade", "lgd": "low grade", "high": "high grade", "low": "low grade"}.get(
        key, key
    )
    key = key.replace(" ", "_")
    if key in DYSPLASIA:
        return key
    raise _fail("dysplasia grade", value, DYSPLASIA)


def normalise_histology(value: object) -> str | None:
    if is_missing(value):
        return None
    # The dysplasia grade is not part of the class ("low-grade adenoma" is an adenoma);
    # make_lesion keeps it as the lesion's dysplasia (histology_grade).
    key = _GRADE.sub("", _histology_key(value))
    if key in _HISTOLOGY_WORDS:
        return _HISTOLOGY_WORDS[key]
    key = key.removesuffix("s")
    if key in _HISTOLOGY_WORDS:
        return _HISTOLOGY_WORDS[key]
    raise _fail("histology", value, HISTOLOGIES)


_NORMALISERS = {
    "size_mm": normalise_size_mm,
    "location": normalise_location,
    "paris": normalise_paris,
    "lst": normalise_lst,
    "nice": normalise_nice,
    "jnet": normalise_jnet,
    "kudo": normalise_kudo,
    "histology": normalise_histology,
    "dysplasia": normalise_dysplasia,
}


def make_lesion(**values: object) -> dict[str, Any]:
    """A lesion in the findings schema from loosely spelled values (ValueError on bad ones).

    A dysplasia grade, given as `dysplasia` or inside the histology ("High-grade adenoma"),
    is kept as the lesion's optional `dysplasia` key: it changes the surveillance interval.
    """
    lesion: dict[str, Any] = {name: None for name in LESION_FIELDS}
    for name, value in values.items():
        if name not in _NORMALISERS:
            continue
        try:
            lesion[name] = _NORMALISERS[name](value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from exc
    if lesion.get("dysplasia") is None:
        lesion.pop("dysplasia", None)
        grade = histology_grade(values.get("histology"))
        if grade is not None:
            lesion["dysplasia"] = grade
    lesion["size_class"] = size_class(lesion["size_mm"])
    return lesion


def make_findings(
    lesions: list[dict[str, Any]],
    *,
    no_polyps: bool | None = None,
    polyp_count: int | None = None,
    bbps_total: int | None = None,
    resection: list[str] | None = None,
    surveillance_years: float | None = None,
) -> dict[str, Any]:
    """A findings object; no_polyps and polyp_count follow from the lesions when not given."""
    if no_polyps is None:
        no_polyps = not lesions
    if polyp_count is None:
        polyp_count = 0 if no_polyps else len(lesions)
    return {
        "no_polyps": bool(no_polyps),
        "polyp_count": polyp_count,
        "lesions": lesions,
        "bbps_total": bbps_total,
        "resection": list(resection or []),
        "surveillance_years": surveillance_years,
    }


def findings_summary(findings: dict[str, Any]) -> str:
    """A plain sentence per lesion, used as the reference text where a dataset has no
    free-text report but has structured findings (video datasets)."""
    lesions = findings.get("lesions") or []
    if findings.get("no_polyps") or not lesions:
        return "No polyps."
    count = len(lesions)
    parts = [f"{count} polyp{'s' if count > 1 else ''}."]
    for lesion in lesions:
        words = []
        if lesion.get("size_mm") is not None:
            words.append(f"{lesion['size_mm']:g} mm")
        if lesion.get("paris"):
            words.append(f"Paris {lesion['paris']}")
        if lesion.get("lst"):
            words.append(lesion["lst"])
        text = "Polyp" if not words else " ".join(words) + " polyp"
        if lesion.get("location"):
            text += f" in the {location_phrase(lesion['location'])}"
        if lesion.get("histology"):
            text += f", {lesion['histology'].replace('_', ' ')}"
        if lesion.get("dysplasia"):
            text += f" with {lesion['dysplasia'].replace('_', '-')} dysplasia"
        parts.append(text[0].upper() + text[1:] + ".")
    return " ".join(parts)
