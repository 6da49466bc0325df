"""Rule-based extraction of structured polyp findings from a free-text colonoscopy report.

The output is the project's one structured-findings format (see `FINDINGS_SCHEMA`), its
values those of `metrics.clinical.vocab`.
Rules, in short: a report is split into sentences, each sentence into one chunk per lesion
mention ("polyp", "adenoma", "LST", ...); attributes written in a chunk belong to that
lesion, and a sentence without a lesion mention adds its attributes to the previous lesion
(or, after "Pathology:", hands histologies to the lesions in order). Negated mentions
("no polyps", "no evidence of polyps or masses") are not lesions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from metrics.clinical.vocab import (
    DYSPLASIA,
    HISTOLOGIES,
    JNET_CLASSES,
    KUDO_CLASSES,
    LOCATIONS,
    LST_CLASSES,
    NICE_CLASSES,
    PARIS_BASE,
    SIZE_CLASSES,
    size_class,
)

FINDINGS_SCHEMA_VERSION = "1"
# A Paris class is a base class or a combination of them ("0-IIa+IIc").
_PARIS_PARTS = "|".join(base.removeprefix("0-") for base in PARIS_BASE)

# A JSON-schema description of the format; "dysplasia" is an optional lesion key (used by
# the surveillance table), every other key is always present in extractor output.
FINDINGS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Colonoscopy structured findings",
    "version": FINDINGS_SCHEMA_VERSION,
    "type": "object",
    "required": ["no_polyps", "polyp_count", "lesions", "bbps_total", "resection"],
    "properties": {
        "no_polyps": {"type": "boolean"},
        "polyp_count": {"type": ["integer", "null"], "minimum": 0},
        "lesions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "size_mm": {"type": ["number", "null"], "minimum": 0},
                    "size_class": {"enum": [*SIZE_CLASSES, None]},
                    "location": {"enum": [*LOCATIONS, None]},
                    "paris": {
                        "type": ["string", "null"],
                        "pattern": rf"^0-({_PARIS_PARTS})(\+({_PARIS_PARTS}))*$",
                    },
                    "lst": {"enum": [*LST_CLASSES, None]},
                    "nice": {"enum": [*NICE_CLASSES, None]},
                    "jnet": {"enum": [*JNET_CLASSES, None]},
                    "kudo": {"enum": [*KUDO_CLASSES, None]},
                    "histology": {"enum": [*HISTOLOGIES, None]},
                    "dysplasia": {"enum": [*DYSPLASIA, None]},
                },
            },
        },
        "bbps_total": {"type": ["integer", "null"], "minimum": 0, "maximum": 9},
        "resection": {"type": "array", "items": {"type": "string"}},
        "surveillance_years": {"type": ["number", "null"], "minimum": 0},
    },
}

NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "single": 1,
    "solitary": 1,
    "a single": 1,
    "a pair of": 2,
    "couple of": 2,
}
_NUM = (
    r"(?:\d+(?:\.\d+)?|"
    + "|".join(sorted((w for w in NUMBER_WORDS if " " not in w), key=len, reverse=True))
    + ")"
)
_UNIT = r"(mm|millimet(?:er|re)s?|cm|centimet(?:er|re)s?)"

_MENTION = re.compile(
    r"\b(?:laterally[\s-]spreading\s+(?:tumou?r|lesion)s?|polyps?|adenomas?|lesions?|mass(?:es)?|"
    r"tumou?rs?|lsts?|ssls?|ssa/ps?|ssas?|tsas?|adenocarcinomas?|carcinomas?|cancers?|"
    r"neoplasms?|growths?|(?-i:TAs?|TVAs?))\b",
    re.I,
)
_SEPARATOR = re.compile(r",|;|:|\s+and\s+|\s+plus\s+|\s+as well as\s+|\s+also\s+|\s+while\s+", re.I)
_INTRODUCER = re.compile(
    r"\b(?:a|an|another|one|second|third|fourth|fifth|additional|further|other|"
    + "|".join(w for w in NUMBER_WORDS if " " not in w)
    + r")\b|\d",
    re.I,
)
_NEG_PRE = re.compile(
    r"\b(?:no|not|without|negative for|free of|absence of|absent|denies|nor|neither|"
    r"rule[sd]? out|ruled out)\b",
    re.I,
)
_NEG_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:was|were|are|is)\s+(?:not|never)\s+(?:seen|found|identified|"
    r"detected|visuali[sz]ed|noted|present|observed)|^\s*(?:were|was)?\s*(?:absent|not present|"
    r"not seen|not identified)",
    re.I,
)
_NEG_BREAK = re.compile(r"\b(?:but|however|although|except|though|yet)\b", re.I)
_NORMAL = re.compile(
    r"\b(?:normal|unremarkable)\s+(?:colonoscopy|examination|exam|study|colon|"
    r"colonic mucosa|mucosa throughout)\b|\bcolonoscopy (?:was )?(?:normal|unremarkable)\b|"
    r"\bno (?:abnormalit(?:y|ies)|pathology) (?:was |were )?(?:seen|found|detected)",
    re.I,
)
_PATHOLOGY_SENTENCE = re.compile(
    r"^\s*(?:final\s+)?(?:patholog\w*|histolog\w*|histopatholog\w*|path)\b|"
    r"\b(?:patholog\w*|histolog\w*)\s+(?:showed|shows|revealed|reveals|confirmed|confirms|"
    r"demonstrated|report(?:ed)?)\b|\b(?:on|at|by|per)\s+(?:histolog|patholog)\w*|\bhistologically\b",
    re.I,
)

# (pattern, location) in the order they are tried; specific before general.
_LOCATION_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bhepatic\s+flexure\b|\bHF\b", re.I), "hepatic_flexure"),
    (re.compile(r"\bsplenic\s+flexure\b|\bSF\b", re.I), "splenic_flexure"),
    (re.compile(r"\brecto-?sigmoid\b|\bsigmoid\b|\bsig\.?\s+colon\b", re.I), "sigmoid"),
    (
        re.compile(
            r"\bc(?:a)?ec(?:um|al)\b|\bileo-?c(?:a)?ecal\b|\bappendiceal\s+orifice\b|\bcaecum\b",
            re.I,
        ),
        "cecum",
    ),
    (re.compile(r"\bascending\b|\basc\.?\s+colon\b", re.I), "ascending"),
    (re.compile(r"\btransverse\b|\btrans\.?\s+colon\b|\bT-colon\b", re.I), "transverse"),
    (re.compile(r"\bdescending\b|\bdesc\.?\s+colon\b", re.I), "descending"),
    (re.compile(r"\brect(?:um|al)\b", re.I), "rectum"),
]

_PARIS_TOKEN = r"(?:isp|ip|is|iia|iib|iic|iii)"
_PARIS_CODED = re.compile(
    r"\b0\s*[-–]\s*("
    + _PARIS_TOKEN
    + r")((?:\s*\+\s*(?:0\s*[-–]\s*)?(?:"
    + _PARIS_TOKEN
    + r"|[abc]))*)(?![a-z])",
    re.I,
)
_PARIS_NAMED = re.compile(
    r"\bparis(?:\s+classification)?(?:\s+(?:class|type))?(?:\s+(?:is|of))?\s*:?\s*(?:0\s*[-–]\s*)?("
    + _PARIS_TOKEN
    + r")((?:\s*\+\s*(?:"
    + _PARIS_TOKEN
    + r"|[abc]))*)(?![a-z])",
    re.I,
)
_PARIS_CANON = {
    "ip": "Ip",
    "isp": "Isp",
    "is": "Is",
    "iia": "IIa",
    "iib": "IIb",
    "iic": "IIc",
    "iii": "III",
}
_MORPHOLOGY: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:sub|semi)-?\s?pedunculated\b", re.I), "0-Isp"),
    (re.compile(r"\bpedunculated\b", re.I), "0-Ip"),
    (re.compile(r"\bsessile\b(?!\s+serrated)", re.I), "0-Is"),
    (re.compile(r"\b(?:slightly|flat)[\s-]+elevated\b", re.I), "0-IIa"),
    (re.compile(r"\bflat\b(?![\s-]+elevated)", re.I), "0-IIb"),
    (re.compile(r"\b(?<!pseudo-)(?<!pseudo)depressed\b", re.I), "0-IIc"),
    (re.compile(r"\bexcavated\b", re.I), "0-III"),
]

_LST_CODED = re.compile(r"\blst\s*[-–]?\s*(ng|g)(?:\s*[-–]?\s*(h|nm|fe|pd)\b)?", re.I)
_LST_NAMED = re.compile(r"\blaterally[\s-]spreading\b|\blsts?\b", re.I)

_ROMAN = {"i": "1", "ii": "2", "iii": "3"}
_NICE = re.compile(
    r"\bnice(?:\s+classification)?(?:\s+(?:type|class|category))?\s*:?\s*(iii|ii|i|[123])\b", re.I
)
_JNET = re.compile(
    r"\bjnet(?:\s+classification)?(?:\s+(?:type|class|category))?\s*:?\s*(iib|iia|iii|ii|i|2a|2b|[123])\b",
    re.I,
)
_KUDO = re.compile(
    r"\b(?:kudo(?:'s)?(?:\s+pit\s+pattern)?|pit\s+pattern)(?:\s+(?:type|class|classification))?"
    r"\s*:?\s*(iiis|iiil|iv|vi|vn|v_?i|v_?n|iii-?s|iii-?l|ii|i|3s|3l|[1245]|5i|5n)\b",
    re.I,
)
_KUDO_CANON = {
    "i": "I",
    "1": "I",
    "ii": "II",
    "2": "II",
    "iiis": "IIIS",
    "iii-s": "IIIS",
    "3s": "IIIS",
    "iiil": "IIIL",
    "iii-l": "IIIL",
    "3l": "IIIL",
    "iv": "IV",
    "4": "IV",
    "vi": "VI",
    "v_i": "VI",
    "5i": "VI",
    "vn": "VN",
    "v_n": "VN",
    "5n": "VN",
}

_HISTOLOGY: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\btubulo-?\s?villous\b|\bTVA\b", re.I), "tubulovillous_adenoma"),
    (re.compile(r"\bvillous\s+adenomas?\b", re.I), "villous_adenoma"),
    (re.compile(r"\btubular\s+adenomas?\b", re.I), "tubular_adenoma"),
    (
        re.compile(
            r"\bsessile\s+serrated\s+(?:lesion|adenoma|polyp)s?\b|\bSSA/?Ps?\b|\bSSLs?\b|\bSSAs?\b"
        ),
        "sessile_serrated_lesion",
    ),
    (re.compile(r"\bsessile\s+serrated\b", re.I), "sessile_serrated_lesion"),
    (
        re.compile(r"\btraditional\s+serrated\s+adenomas?\b|\bTSAs?\b", re.I),
        "traditional_serrated_adenoma",
    ),
    (re.compile(r"\bhyperplastic\b|\bHPs?\b", re.I), "hyperplastic"),
    (re.compile(r"\b(?:adeno)?carcinomas?\b|\bcancers?\b|\bmalignan(?:t|cy)\b", re.I), "carcinoma"),
    (re.compile(r"\badenomas?\b|\badenomatous\b", re.I), "adenoma"),
]
_TA_ABBREV = re.compile(r"\bTAs?\b")
_DYSPLASIA_HIGH = re.compile(r"\bhigh[\s-]grade\s+dysplasia\b|\bHGD\b", re.I)
_DYSPLASIA_LOW = re.compile(r"\blow[\s-]grade\s+dysplasia\b|\bLGD\b", re.I)

_RESECTION: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bcold[\s-]+snare\b|\bCSP\b", re.I), "cold_snare"),
    (re.compile(r"\bhot[\s-]+snare\b|\bHSP\b", re.I), "hot_snare"),
    (re.compile(r"\bcold\s+(?:biopsy\s+)?forceps\b|\bCFP\b", re.I), "cold_forceps"),
    (re.compile(r"\bhot\s+(?:biopsy\s+)?forceps\b", re.I), "hot_forceps"),
    (re.compile(r"\bEMR\b|\bendoscopic\s+mucosal\s+resection\b", re.I), "emr"),
    (re.compile(r"\bESD\b|\bendoscopic\s+submucosal\s+dissection\b", re.I), "esd"),
    (re.compile(r"\bpiece-?meal\b", re.I), "piecemeal"),
    (re.compile(r"(?<!cold )(?<!hot )\bsnare(?:d)?\b(?![\s-]+(?:cold|hot))", re.I), "snare"),
    (re.compile(r"\bbiops(?:y|ies|ied)\b(?!\s+forceps)", re.I), "biopsy"),
]

_BBPS = re.compile(
    r"\b(?:bbps|boston\s+bowel\s+prep(?:aration)?\s+scale(?:\s*\(bbps\))?)(?:\s+(?:total|score))*"
    r"(?:\s+(?:of|was|=|is))?\s*:?\s*"
    r"(?:(\d)\s*[-+/,]\s*(\d)\s*[-+/,]\s*(\d)(?:\s*[=(]\s*(?:total\s*)?(\d))?|(\d))",
    re.I,
)
_SURVEILLANCE = re.compile(
    r"\b(?:repeat|surveillance|follow[\s-]?up|recall|next|return|interval|rescope|re-?scope)"
    r"[^.;]{0,60}?\b(" + _NUM + r")(?:\s*(?:-|–|to)\s*(" + _NUM + r"))?\s*"
    r"(years?|yrs?|y|months?|mos?)\b",
    re.I,
)
_SIZE_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)\s*" + _UNIT + r"\b", re.I)
_SIZE_DIMS = re.compile(
    r"(\d+(?:\.\d+)?)\s*(?:" + _UNIT + r")?\s*[x×]\s*(\d+(?:\.\d+)?)\s*" + _UNIT + r"\b", re.I
)
_SIZE_ONE = re.compile(r"(\d+(?:\.\d+)?)\s*[-]?\s*" + _UNIT + r"\b", re.I)
_SIZE_WORD = re.compile(r"\b(diminutive|large|giant)\b", re.I)
_COUNT = re.compile(
    r"\b(a\s+pair\s+of|couple\s+of|a\s+single|"
    + _NUM
    + r")\b(?!\s*(?:[-–x×.]|to\b|mm|cm|millim|centim|%))",
    re.I,
)
_UNCOUNTED_PLURAL = re.compile(r"\b(?:multiple|several|numerous|many|few|various|some)\b", re.I)
_ALL_LESIONS = re.compile(r"\b(?:both|all|each)\b", re.I)


@dataclass
class _Lesion:
    size_mm: float | None = None
    size_class: str | None = None
    location: str | None = None
    paris: str | None = None
    lst: str | None = None
    nice: str | None = None
    jnet: str | None = None
    kudo: str | None = None
    histology: str | None = None
    dysplasia: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size_mm": _clean_number(self.size_mm),
            "size_class": self.size_class,
            "location": self.location,
            "paris": self.paris,
            "lst": self.lst,
            "nice": self.nice,
            "jnet": self.jnet,
            "kudo": self.kudo,
            "histology": self.histology,
            "dysplasia": self.dysplasia,
        }


def _clean_number(value: float | None) -> float | int | None:
    if value is None:
        return None
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded


def _to_number(token: str) -> float:
    token = token.strip().lower()
    if token in NUMBER_WORDS:
        return float(NUMBER_WORDS[token])
    return float(token)


def _to_mm(value: float, unit: str) -> float:
    return value * 10.0 if unit.lower().startswith(("cm", "centi")) else value


def _sentences(text: str) -> list[str]:
    # Decimal points ("1.2 cm") are followed by a digit, so they never split.
    parts = re.split(r"(?<=[.!?;])\s+|\n+|(?<=[a-z])\.(?=[A-Z])", text)
    return [p.strip() for p in parts if p and p.strip()]


def _normalise(text: str) -> str:
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u00d7", "x")
    # Abbreviations whose dot would otherwise end a sentence.
    text = re.sub(
        r"\b(asc|desc|sig|trans|approx|appr)\.\s+", lambda m: m.group(1) + " ", text, flags=re.I
    )
    text = re.sub(r"\bapprox(?:imately)?\b\.?", "approximately", text, flags=re.I)
    return text


def _is_negated(chunk: str, start: int, end: int) -> bool:
    before = chunk[:start]
    words = re.findall(r"[\w/-]+|[,;]", before)
    window = " ".join(words[-7:])
    if _NEG_PRE.search(window):
        cue = list(_NEG_PRE.finditer(window))[-1]
        tail = window[cue.end() :]
        if not _NEG_BREAK.search(tail) and "," not in tail and ";" not in tail:
            return True
    return bool(_NEG_POST.search(chunk[end : end + 60]))


def _count_of(pre: str, mention: str) -> int | None:
    """Explicit count written before a plural mention ("two polyps", "3 small adenomas")."""
    if not mention.lower().endswith("s") or mention.lower().endswith(("ss", "us")):
        return None
    words_before = pre[-60:]
    found = None
    for m in _COUNT.finditer(words_before):
        token = m.group(1).lower()
        token = re.sub(r"\s+", " ", token)
        if token in NUMBER_WORDS:
            found = NUMBER_WORDS[token]
        else:
            try:
                value = float(token)
            except ValueError:
                continue
            if value.is_integer() and 0 < value <= 100:
                found = int(value)
    return found


def _sizes(chunk: str) -> list[float]:
    sizes: list[tuple[int, float]] = []
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    for m in _SIZE_DIMS.finditer(chunk):
        unit = m.group(4)
        first_unit = m.group(2) or unit
        value = max(_to_mm(float(m.group(1)), first_unit), _to_mm(float(m.group(3)), unit))
        sizes.append((m.start(), value))
        taken.append(m.span())
    for m in _SIZE_RANGE.finditer(chunk):
        if free(*m.span()):
            # A range is reported by its upper bound (the size that decides management).
            sizes.append((m.start(), _to_mm(max(float(m.group(1)), float(m.group(2))), m.group(3))))
            taken.append(m.span())
    for m in _SIZE_ONE.finditer(chunk):
        if free(*m.span()):
            sizes.append((m.start(), _to_mm(float(m.group(1)), m.group(2))))
            taken.append(m.span())
    return [value for _, value in sorted(sizes)]


def _paris(chunk: str, allow_words: bool) -> str | None:
    for pattern in (_PARIS_CODED, _PARIS_NAMED):
        for m in pattern.finditer(chunk):
            first = m.group(1)
            if pattern is _PARIS_NAMED and first == "is":
                continue  # "Paris is ..." is a verb, not the class Is
            parts = [_PARIS_CANON[first.lower()]]
            for extra in re.findall(r"\+\s*(?:0\s*-\s*)?([a-z]+)", m.group(2) or "", re.I):
                extra = extra.lower()
                parts.append(
                    "II" + extra if extra in "abc" and len(extra) == 1 else _PARIS_CANON[extra]
                )
            return "0-" + "+".join(parts)
    if allow_words:
        found = [
            (m.start(), label) for pattern, label in _MORPHOLOGY for m in pattern.finditer(chunk)
        ]
        if found:
            return min(found)[1]
    return None


def _lst(chunk: str) -> str | None:
    m = _LST_CODED.search(chunk)
    if m:
        base = "LST-" + m.group(1).upper()
        return base + ("-" + m.group(2).upper() if m.group(2) else "")
    if not _LST_NAMED.search(chunk):
        return None
    lower = chunk.lower()
    if re.search(r"\bnon-?\s?granular\b", lower):
        if re.search(r"pseudo-?\s?depressed", lower):
            return "LST-NG-PD"
        if re.search(r"flat[\s-]+elevated", lower):
            return "LST-NG-FE"
        return "LST-NG"
    if re.search(r"\bgranular\b", lower):
        if re.search(r"homogen", lower):
            return "LST-G-H"
        if re.search(r"nodular[\s-]+mixed|mixed[\s-]+nodular", lower):
            return "LST-G-NM"
        return "LST-G"
    return None


def _nice(chunk: str) -> str | None:
    m = _NICE.search(chunk)
    if not m:
        return None
    token = m.group(1).lower()
    return _ROMAN.get(token, token)


def _jnet(chunk: str) -> str | None:
    m = _JNET.search(chunk)
    if not m:
        return None
    token = m.group(1).lower()
    mapping = {"i": "1", "ii": "2A", "iia": "2A", "iib": "2B", "iii": "3", "2a": "2A", "2b": "2B"}
    value = mapping.get(token, token)
    return value if value in JNET_CLASSES else None


def _kudo(chunk: str) -> str | None:
    m = _KUDO.search(chunk)
    if not m:
        return None
    return _KUDO_CANON.get(m.group(1).lower())


def _histologies(chunk: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for pattern, label in _HISTOLOGY:
        for m in pattern.finditer(chunk):
            if all(m.end() <= s or m.start() >= e for s, e in taken):
                found.append((m.start(), label))
                taken.append(m.span())
    for m in _TA_ABBREV.finditer(chunk):
        if all(m.end() <= s or m.start() >= e for s, e in taken):
            found.append((m.start(), "tubular_adenoma"))
    return sorted(found)


def _location(chunk: str) -> str | None:
    found = [
        (m.start(), label) for pattern, label in _LOCATION_PATTERNS for m in pattern.finditer(chunk)
    ]
    return min(found)[1] if found else None


def _dysplasia(chunk: str) -> str | None:
    if _DYSPLASIA_HIGH.search(chunk):
        if re.search(r"\bno\s+(?:evidence\s+of\s+)?high[\s-]grade", chunk, re.I):
            return "low_grade" if _DYSPLASIA_LOW.search(chunk) else None
        return "high_grade"
    if _DYSPLASIA_LOW.search(chunk):
        return "low_grade"
    return None


def _fill(lesion: _Lesion, chunk: str, *, only_missing: bool = False) -> None:
    """Write the attributes stated in `chunk` into `lesion`."""

    def put(name: str, value: Any) -> None:
        if value is None:
            return
        if only_missing and getattr(lesion, name) is not None:
            return
        setattr(lesion, name, value)

    sizes = _sizes(chunk)
    if sizes:
        put("size_mm", sizes[0])
    word = _SIZE_WORD.search(chunk)
    if lesion.size_mm is not None:
        lesion.size_class = size_class(lesion.size_mm)
    elif word:
        put("size_class", "diminutive" if word.group(1).lower() == "diminutive" else "large")
    put("location", _location(chunk))
    lst = _lst(chunk)
    put("lst", lst)
    put("paris", _paris(chunk, allow_words=lst is None and lesion.lst is None))
    put("nice", _nice(chunk))
    put("jnet", _jnet(chunk))
    put("kudo", _kudo(chunk))
    histologies = _histologies(chunk)
    if histologies:
        put("histology", histologies[0][1])
    put("dysplasia", _dysplasia(chunk))


def _mention_groups(sentence: str) -> list[tuple[int, int, int]]:
    """Lesion mentions of a sentence as (chunk start, mention start, mention end).

    Consecutive mentions with no separator and no new determiner between them ("polyps or
    masses", "polyp, tubular adenoma") describe the same lesion and share a chunk.
    """
    mentions = list(_MENTION.finditer(sentence))
    groups: list[tuple[int, int, int]] = []
    for m in mentions:
        if not groups:
            groups.append((0, m.start(), m.end()))
            continue
        prev_end = groups[-1][2]
        between = sentence[prev_end : m.start()]
        seps = list(_SEPARATOR.finditer(between))
        if seps:
            start, mstart, mend = groups[-1]
            head = _MENTION.match(sentence, mstart)
            announcing = head is not None and (
                _count_of(sentence[start:mstart], head.group(0)) is not None
            )
            # "2 polyps found: in the cecum, a 4 mm polyp": an announcing count keeps
            # only its own words; otherwise trailing attributes stay with the lesion before.
            cut = seps[0].end() if announcing else seps[-1].end()
            after = between[cut:]
            if _INTRODUCER.search(after) or _location(after) or _NEG_PRE.search(after):
                groups.append((prev_end + cut, m.start(), m.end()))
                continue
        # Same lesion: extend the previous mention.
        start, mstart, _ = groups[-1]
        groups[-1] = (start, mstart, m.end())
    return groups


_HEDGE = re.compile(
    r"\b(?:suspected|suspicious\s+for|likely|probable|probably|possible|possibly|consistent\s+with|"
    r"compatible\s+with|in\s+keeping\s+with|suggestive\s+of|resembling|appear(?:s|ed)?\s+to\s+be|"
    r"optical\s+diagnosis|endoscopic\s+(?:appearance|diagnosis)|favou?r(?:ing|s)?)\b",
    re.I,
)


def _qualifies_previous(sentence: str, groups: list[tuple[int, int, int]]) -> bool:
    """Does a sentence with a lesion word describe the previous lesion, not a new one?

    "NICE type I; suspected hyperplastic polyp", "Laterally spreading tumour, non-granular
    type": no article, count, size or site introduces a lesion, or an optical-diagnosis
    hedge names what the previous lesion probably is.
    """
    before = sentence[: groups[0][1]]
    if _NEG_PRE.search(before) or _sizes(sentence):
        return False
    if _HEDGE.search(before):
        return True
    return not (
        _INTRODUCER.search(before) or _UNCOUNTED_PLURAL.search(before) or _location(sentence)
    )


@dataclass
class _State:
    lesions: list[_Lesion] = field(default_factory=list)
    explicit_count: int | None = None
    uncounted: bool = False
    negated_polyps: bool = False
    announced: int = 0


def _handle_sentence(sentence: str, state: _State) -> None:
    if _PATHOLOGY_SENTENCE.search(sentence) and state.lesions:
        # Histology arriving after the description: hand it to the lesions in order.
        labels = [label for _, label in _histologies(sentence)]
        if labels:
            plural = re.search(r"\b\w+(?:omas|lesions|polyps|SSLs|TAs)\b", sentence)
            if len(labels) == 1:
                every = _ALL_LESIONS.search(sentence) or plural
                targets = state.lesions if every else state.lesions[-1:]
                for lesion in targets:
                    lesion.histology = labels[0]
            else:
                for lesion, label in zip(state.lesions, labels, strict=False):
                    lesion.histology = label
        dysplasia = _dysplasia(sentence)
        if dysplasia:
            state.lesions[-1].dysplasia = dysplasia
        return
    groups = _mention_groups(sentence)
    if groups and state.lesions and _qualifies_previous(sentence, groups):
        groups = []
    if not groups:
        if state.lesions:
            targets = state.lesions if _ALL_LESIONS.search(sentence) else state.lesions[-1:]
            for lesion in targets:
                _fill(lesion, sentence, only_missing=True)
        return
    for index, (start, mstart, mend) in enumerate(groups):
        end = groups[index + 1][0] if index + 1 < len(groups) else len(sentence)
        chunk = sentence[start:end]
        local_start, local_end = mstart - start, mend - start
        mention = sentence[mstart:mend]
        if _is_negated(chunk, local_start, local_end):
            state.negated_polyps = True
            continue
        first_mention = _MENTION.match(sentence, mstart)
        head = first_mention.group(0) if first_mention else mention
        count = _count_of(chunk[:local_start], head)
        sizes = _sizes(chunk)
        plural = head.lower().endswith("s")
        if count is None and plural and _UNCOUNTED_PLURAL.search(chunk[:local_start]):
            state.uncounted = True
        n_new = count if count is not None and count <= 20 else 1
        if count is not None:
            state.explicit_count = (state.explicit_count or 0) + count
            probe = _Lesion()
            _fill(probe, chunk)
            if probe.as_dict() == _Lesion().as_dict():
                # "Three polyps were found." announces lesions described next; lesions
                # never described are added empty at the end.
                state.announced = max(state.announced, count)
                continue
        for k in range(n_new):
            lesion = _Lesion()
            _fill(lesion, chunk)
            if n_new > 1 and len(sizes) == n_new:
                lesion.size_mm = sizes[k]
                lesion.size_class = size_class(sizes[k])
            state.lesions.append(lesion)


def _resections(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for pattern, label in _RESECTION:
        for m in pattern.finditer(text):
            before = " ".join(re.findall(r"\w+", text[: m.start()])[-3:]).lower()
            if re.search(r"\b(?:no|not|without)\b", before):
                continue
            found.append((m.start(), label))
    labels: list[str] = []
    for _, label in sorted(found):
        if label not in labels:
            labels.append(label)
    # A generic "snare" next to a specific cold/hot snare is the same act.
    if "snare" in labels and ({"cold_snare", "hot_snare"} & set(labels)):
        labels.remove("snare")
    return labels


def _bbps(text: str) -> int | None:
    m = _BBPS.search(text)
    if not m:
        return None
    if m.group(4):
        return int(m.group(4))
    if m.group(1):
        return int(m.group(1)) + int(m.group(2)) + int(m.group(3))
    value = int(m.group(5))
    return value if value <= 9 else None


def _surveillance(text: str) -> float | None:
    m = _SURVEILLANCE.search(text)
    if not m:
        return None
    # For a written range ("5-10 years") the shorter, more cautious end is kept.
    value = _to_number(m.group(1))
    unit = m.group(3).lower()
    years = value / 12.0 if unit.startswith("mo") else value
    return _clean_number(round(years, 2))


def extract_findings(text: str) -> dict[str, Any]:
    """Structured findings of one free-text colonoscopy report (see `FINDINGS_SCHEMA`)."""
    if not isinstance(text, str):
        raise TypeError(f"report text must be a string, got {type(text).__name__}")
    normalised = _normalise(text)
    state = _State()
    for sentence in _sentences(normalised):
        _handle_sentence(sentence, state)
    lesions = [lesion.as_dict() for lesion in state.lesions]
    if state.announced > len(lesions) and state.announced <= 20:
        lesions.extend(_Lesion().as_dict() for _ in range(state.announced - len(lesions)))
    normal = bool(_NORMAL.search(normalised))
    no_polyps = not lesions and (state.negated_polyps or normal)
    if lesions:
        if state.uncounted and state.explicit_count is None:
            count: int | None = None
        else:
            count = max(state.explicit_count or 0, len(lesions))
    else:
        count = 0 if no_polyps else None
    return {
        "no_polyps": no_polyps,
        "polyp_count": count,
        "lesions": lesions,
        "bbps_total": _bbps(normalised),
        "resection": _resections(normalised),
        "surveillance_years": _surveillance(normalised),
    }
