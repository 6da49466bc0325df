"""The one vocabulary of structured colonoscopy findings, and the size-class rule.

Every value a findings object may hold (segments, size classes, Paris / LST / NICE / JNET /
Kudo classes, histologies, resections, dysplasia grades) is declared here once. The
extractor, the finding-level scores, the surveillance table, the benchmark loaders, the
synthetic generator and the test worlds all read these tuples; none keeps its own list.

A findings object (the JSON schema is `metrics.clinical.extract.FINDINGS_SCHEMA`; the
extractor's rules are in its module docstring):
- `no_polyps`: true for a stated negation or a normal examination, false when lesions are
  listed, null when the text states nothing about polyps (silence is not a negation).
- `polyp_count`: the number of polyps the text states, or null (an uncounted "multiple").
- `lesions`: one object per lesion with `size_mm`, `size_class` and the `LESION_ATTRIBUTES`
  (a null where the text says nothing), the optional `dysplasia`, and `hedged` (its
  diagnosis is written as a hedge, "likely hyperplastic").
- `hedged_lesions`: lesions written only as hedges ("rule out adenoma", "possible polyp");
  neither findings nor negations, not counted. `hedged`: the report hedges about polyps
  (a hedged lesion, or a lesion's hedged diagnosis).
- `bbps_total`, `resection` (values of `RESECTIONS` used in this examination), and
  `surveillance_years` (the shorter end of a written range).

Size convention: `size_mm` in millimetres (a size in cm times 10); a written range counts
as its upper bound and dimensions as the largest, the size that decides management;
`size_class` is `size_class(size_mm)`: diminutive <= 5 mm, small 6-9 mm, large >= 10 mm.
Count convention: one lesion per lesion mention, n for a written count ("three 3 mm
polyps", "HP x2"), all sharing the attributes written with them.
"""

from __future__ import annotations

from collections.abc import Iterable

# Colon segments from proximal to distal; the order is used ("neighbouring segments").
LOCATIONS = (
    "cecum",
    "ascending",
    "hepatic_flexure",
    "transverse",
    "splenic_flexure",
    "descending",
    "sigmoid",
    "rectum",
)
SIZE_CLASSES = ("diminutive", "small", "large")
PARIS_BASE = ("0-Ip", "0-Isp", "0-Is", "0-IIa", "0-IIb", "0-IIc", "0-III")
LST_CLASSES = ("LST-G-H", "LST-G-NM", "LST-NG-FE", "LST-NG-PD", "LST-G", "LST-NG")
NICE_CLASSES = ("1", "2", "3")
JNET_CLASSES = ("1", "2A", "2B", "3")
KUDO_CLASSES = ("I", "II", "IIIS", "IIIL", "IV", "VI", "VN")
HISTOLOGIES = (
    "hyperplastic",
    "adenoma",
    "tubular_adenoma",
    "tubulovillous_adenoma",
    "villous_adenoma",
    "sessile_serrated_lesion",
    "traditional_serrated_adenoma",
    "carcinoma",
)
RESECTIONS = (
    "cold_snare",
    "hot_snare",
    "snare",
    "cold_forceps",
    "hot_forceps",
    "emr",
    "esd",
    "piecemeal",
    "biopsy",
)
DYSPLASIA = ("low_grade", "high_grade")
# The attributes of a lesion that are compared and scored.
LESION_ATTRIBUTES = ("location", "size_class", "paris", "lst", "nice", "jnet", "kudo", "histology")
# The keys of a lesion as benchmarks store it: the measured size, then the attributes.
LESION_FIELDS = ("size_mm", *LESION_ATTRIBUTES)

# Segments a reader writes with "colon" after them ("the sigmoid colon", but "the cecum").
_COLON_SEGMENTS = ("ascending", "transverse", "descending", "sigmoid")


def size_class(size_mm: float | None) -> str | None:
    """diminutive <= 5 mm, small 6-9 mm, large >= 10 mm (None for an unknown size)."""
    if size_mm is None:
        return None
    if size_mm <= 5:
        return "diminutive"
    if size_mm < 10:
        return "small"
    return "large"


def location_phrase(location: str) -> str:
    """A segment as a report names it: "sigmoid" -> "sigmoid colon", "hepatic_flexure" ->
    "hepatic flexure"."""
    if location not in LOCATIONS:
        raise ValueError(f"unknown location {location!r}; use one of {', '.join(LOCATIONS)}")
    words = location.replace("_", " ")
    return f"{words} colon" if location in _COLON_SEGMENTS else words


def subset(vocabulary: tuple[str, ...], values: Iterable[str]) -> tuple[str, ...]:
    """`values`, in their order, after checking each is in `vocabulary` (ValueError if not)."""
    chosen = tuple(values)
    unknown = [value for value in chosen if value not in vocabulary]
    if unknown:
        raise ValueError(f"{unknown} not in the vocabulary; use values of {list(vocabulary)}")
    return chosen
