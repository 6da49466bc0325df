"""Rule-based extraction of structured polyp findings from a free-text colonoscopy report.

The output is the project's one structured-findings format (see `FINDINGS_SCHEMA`), its
values those of `metrics.clinical.vocab` (where the size and counting conventions below are
also written down for readers of the vocabulary).
Rules, in short: a report is split into sentences, each sentence into one chunk per lesion
mention ("polyp", "adenoma", "LST", "SSL", "TA", "HP", ...); attributes written in a chunk
belong to that lesion, and a sentence without a lesion mention adds its attributes to the
previous lesion (or, after "Pathology:", hands histologies to the lesions).

Assertion, not silence:
- `no_polyps` is true only on an explicit negation ("no polyps", "polyps: none", "no
  evidence of polyps or masses") or a normal examination ("normal colonoscopy",
  "colonoscopy otherwise unremarkable"), and only when no lesion is listed; false when a
  lesion is listed; null when the text states nothing about polyps (empty, gibberish, other
  findings such as diverticula or haemorrhoids, or only hedges).
- Hedges are neither findings nor negations. A hedged lesion word ("rule out adenoma",
  "possible polyp", "cannot exclude a flat lesion", "likely adenoma", "?polyp", "polyp not
  excluded") goes to `hedged_lesions` (each with `hedged: true`); it is not counted. A
  lesion that is there with a hedged diagnosis ("a 5 mm polyp, likely hyperplastic",
  "possibly an adenoma"; "suspected SSL, 10 mm, EMR", measured or removed) is a lesion with
  its histology and `hedged: true`; a pathology result later in the report clears the flag.
  The report's `hedged` is true when it holds either kind of hedge.
- A scar of an earlier resection ("post-EMR scar without recurrence", "polypectomy site, no
  residual polyp") is not a lesion and not a negation, and its EMR/ESD/polypectomy is not a
  resection of this examination; a residual lesion on a scar ("scar with a 3 mm residual
  adenoma") is a lesion.

Counting:
- Each lesion mention is one lesion. A count before a plural mention ("three 3 mm polyps",
  "2 polyps of 4-5 mm", "2 x 4mm polyps") or after it ("HP x2") makes that many lesions
  sharing the chunk's attributes; with as many sizes as lesions ("two polyps, 5 and 7 mm")
  each takes its size in order. A count shared out over sites ("five polyps: three in the
  rectum and two in the sigmoid") makes the lesions of each site.
- A count that only announces ("Three polyps were found.", "Polyps: 3.") adds no lesion of
  its own; the lesions described next are those lesions, and empty lesions fill up to the
  count.
- `polyp_count` is the larger of the written counts (summed) and the lesions listed; null
  when only an uncounted plural is written ("multiple polyps"), which lists one lesion.
- Numbered lists ("1. ... 2. ...", "1) ...", "(1)", "#1", "Polyp 1:") number the lesions;
  a pathology addendum by number ("Pathology: 1) tubular adenoma 2) hyperplastic") gives each
  numbered lesion its histology and dysplasia; without numbers in the description, number n
  is the n-th lesion. An unnumbered addendum hands histologies to the lesions in order (one
  plural histology to all of them).

Sizes: `size_mm` in millimetres (cm times 10; a decimal comma "1,2 cm" is a decimal point);
a range ("6 to 8 mm", "1-1.5 cm") is its upper bound, the size that decides management;
dimensions ("15 x 10 mm") are the largest; `size_class` follows `vocab.size_class`, or a size
word when no size is written ("diminutive"; "large", "giant"). Distances are not sizes ("at
25 cm", "8 cm from the anal verge", "3 cm distal to the lesion", 10 cm or more).

Sections and references: a sentence under "Indication:" / "History:", or about an earlier
examination ("previous adenoma removed in 2019"), adds nothing and is left out of resection,
BBPS and surveillance; an "Impression:" / "Summary:" / "Diagnosis:" restates lesions, so a
restated lesion merges into the one described. "The polyp ..." describes the lesion just
described (unless it names another site). A note with a site and a size but no lesion word
("rect 4mm Ip") is a lesion.

Abbreviations read: TA, TVA, VA, SSL, SSA/P, SSP, TSA, HP (histology); HGD, LGD (dysplasia);
AC, TC, DC, SC, HF, SF, IC, CE, RE and "asc", "desc", "trans(v)", "sigm", "rect", "caec"
(segments); "sess", "ped", "subped" (Paris); CSP, HSP, CFP, EMR, ESD (resection). British
spellings (caecum, tumour, oesophagus, haemorrhage, colour, polypectomised) read as American.
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
        # true: the text negates polyps ("no polyps", "normal colonoscopy"); false: it lists
        # lesions; null: it states nothing about polyps (empty, gibberish, other findings,
        # only hedges).
        "no_polyps": {"type": ["boolean", "null"]},
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
                    "hedged": {"type": "boolean"},
                },
            },
        },
        "hedged": {"type": "boolean"},
        "hedged_lesions": {"type": "array", "items": {"$ref": "#/properties/lesions/items"}},
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
    r"neoplasms?|growths?|(?-i:TAs?|TVAs?|VAs?|SSPs?|HPs?))\b",
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
    r"\b(?:no|not|without|negative for|free of|absence of|absent|denies|nor|neither)\b",
    re.I,
)
_HEDGE_WORDS = (
    r"possible|possibly|probable|probably|likely|suspected|suspicious\s+(?:for|of)|query|"
    r"questionable|equivocal|presumed|may\s+represent|might\s+be|could\s+be|suggestive\s+of|"
    r"appears?(?:\s+to\s+be)?|appearing|looks?\s+like|resembling|indeterminate"
)
# Cues that doubt the lesion is there at all ("rule out adenoma", "cannot exclude a polyp").
_EXISTENCE_HEDGE = (
    r"rules?\s+out|r/o|to\s+exclude|can\s*not\s+(?:be\s+)?(?:exclude[d]?|rule[d]?\s+out)|"
    r"could\s+not\s+(?:be\s+)?(?:exclude[d]?|rule[d]?\s+out)"
)
# A hedge just before a lesion word, a few describing words between: neither a finding nor
# a negation ("possible polyp", "?polyp", "likely adenoma", "cannot exclude a flat lesion").
_HEDGE_PRE = re.compile(
    r"(?:\b(?:" + _EXISTENCE_HEDGE + "|" + _HEDGE_WORDS + r")\b|\?)\s*"
    r"(?:(?:\d+(?:\.\d+)?\s*mm|[a-z][\w/-]*)\s+){0,3}$",
    re.I,
)
_EXISTENCE_HEDGE_CUE = re.compile(r"\b(?:" + _EXISTENCE_HEDGE + r")\b", re.I)
# A hedge just after the lesion word: "polyp?", "polyp not excluded".
_HEDGE_POST = re.compile(
    r"^\s*(?:\?|(?:(?:is|was|were|are)\s+)?(?:not\s+excluded|not\s+ruled\s+out|"
    r"cannot\s+be\s+(?:excluded|ruled\s+out)|could\s+not\s+be\s+(?:excluded|ruled\s+out)))",
    re.I,
)
# A hedge just before a diagnosis of a lesion that is there: "polyp, likely hyperplastic".
_DIAGNOSIS_HEDGE = re.compile(
    r"(?:\b(?:" + _HEDGE_WORDS + r"|favou?r(?:ing|s|ed)?)\b|\?)\s*(?:(?:an?|the)\s+)?$",
    re.I,
)
_NEG_POST = re.compile(
    r"^\W*(?:\w+\s+){0,2}?(?:was|were|are|is)\s+(?:not|never)\s+(?:seen|found|identified|"
    r"detected|visuali[sz]ed|noted|present|observed)|^\s*(?:were|was)?\s*(?:absent|not present|"
    r"not seen|not identified)|"
    # Templates: "Polyps: none", "Adenomas: nil".
    r"^\s*(?:[a-z]+\s*){0,2}:\s*(?:none|nil|zero|0(?![-\w]|\.\d))|"
    # "tumour-free colon"
    r"^-?free\b",
    re.I,
)
_NEG_BREAK = re.compile(r"\b(?:but|however|although|except|though|yet)\b", re.I)
_NORMAL = re.compile(
    r"\b(?:normal|unremarkable)\s+(?:colonoscopy|examination|exam|study|colon|"
    r"colonic mucosa|mucosa throughout)\b|"
    r"\bcolonoscopy (?:was )?(?:otherwise )?(?:normal|unremarkable)\b|"
    r"\b(?:otherwise|entirely|completely)\s+(?:normal|unremarkable)\b|"
    r"\b(?:colonoscopy|examination)\b[^.;]{0,80}?(?::|\bwas\b)\s*(?:normal|unremarkable)\b|"
    r"\bno (?:abnormalit(?:y|ies)|pathology) (?:was |were )?(?:seen|found|detected)",
    re.I,
)
_PATHOLOGY_SENTENCE = re.compile(
    r"^\s*(?:final\s+)?(?:patholog\w*|histolog\w*|histopatholog\w*|histo|path)\b|"
    r"\b(?:patholog\w*|histolog\w*)\s+(?:showed|shows|revealed|reveals|confirmed|confirms|"
    r"demonstrated|report(?:ed)?)\b|\b(?:on|at|by|per)\s+(?:histolog|patholog)\w*|\bhistologically\b",
    re.I,
)

# (pattern, location) in the order they are tried; specific before general.
_LOCATION_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bhepatic\s+flexure\b|\bHF\b", re.I), "hepatic_flexure"),
    (re.compile(r"\bsplenic\s+flexure\b|\bSF\b", re.I), "splenic_flexure"),
    (re.compile(r"\brecto-?sigmoid\b|\bsigmoid\b|\bsigm?\b(?!-)", re.I), "sigmoid"),
    (
        re.compile(
            r"\bc(?:a)?ec(?:um|al)\b|\bileo-?c(?:a)?ecal\b|\bappendiceal\s+orifice\b|"
            r"\bappendix\b|\bc(?:a)?ec\b|(?-i:\bI-?C\b)\s+valve\b",
            re.I,
        ),
        "cecum",
    ),
    (re.compile(r"\bascending\b|\basc\b", re.I), "ascending"),
    (re.compile(r"\btransverse\b|\btransv?\b(?!-)|\bT[\s-]?colon\b", re.I), "transverse"),
    (re.compile(r"\bdescending\b|\bdesc\b", re.I), "descending"),
    (re.compile(r"\brect(?:um|al)?\b(?!-)", re.I), "rectum"),
    # Segment abbreviations of telegraphic notes, upper case only ("TC 8mm polyp").
    (re.compile(r"\bAC\b"), "ascending"),
    (re.compile(r"\bTC\b"), "transverse"),
    (re.compile(r"\bDC\b"), "descending"),
    (re.compile(r"\bSC\b"), "sigmoid"),
    (re.compile(r"\b(?:IC|CE)\b"), "cecum"),
    (re.compile(r"\bRE\b"), "rectum"),
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
_PARIS_BARE = re.compile(
    r"(?<![\w-])(Isp|Ip|Is|IIa|IIb|IIc|III)((?:\s*\+\s*(?:Isp|Ip|Is|IIa|IIb|IIc|III))*)(?![\w-])"
)
_NOT_PARIS_BEFORE = re.compile(
    r"\b(?:nice|jnet|type|kudo|class|grade|stage|pattern|pit|bbps|sano|hiroshima)\W*$", re.I
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
    (re.compile(r"\b(?:sub|semi)-?\s?ped(?:unculated)?\b", re.I), "0-Isp"),
    (re.compile(r"(?<!-)\bped(?:unculated)?\b", re.I), "0-Ip"),
    (re.compile(r"\bsess(?:ile)?\b(?!\s+serrated)", re.I), "0-Is"),
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
    (re.compile(r"\btubulo-?\s?villous(?:\s+adenomas?)?\b|\bTVA\b", re.I), "tubulovillous_adenoma"),
    (re.compile(r"\bvillous\s+adenomas?\b|(?-i:\bVAs?\b)", re.I), "villous_adenoma"),
    (re.compile(r"\btubular\s+adenomas?\b", re.I), "tubular_adenoma"),
    (
        re.compile(
            r"\bsessile\s+serrated\s+(?:lesion|adenoma|polyp)s?\b|\bSSA/?Ps?\b|\bSSLs?\b|"
            r"\bSSAs?\b|\bSSPs?\b"
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
# "5 and 7 mm", "3, 6 and 11 mm": several sizes sharing the last unit.
_SIZE_LIST = re.compile(
    r"((?:\d+(?:\.\d+)?\s*(?:,|and|&)\s*)+)(\d+(?:\.\d+)?)\s*" + _UNIT + r"\b", re.I
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
    # The lesion's diagnosis is written as a hedge ("likely hyperplastic"), or, in
    # `hedged_lesions`, the lesion itself is ("possible polyp").
    hedged: bool = False
    # The number of the list item that described it ("1. ... 2. ..."), for the pathology
    # addendum by number.
    item: int | None = None

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
            "hedged": self.hedged,
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


# List item markers become a line "§N ..." of their own: "1. ...", "2) ...", "(3) ...", "#4",
# "Polyp 5:". A bare number is a marker only in sequence (1, then 2, ...), so "BBPS: 9." is not.
_ITEM_MARK = "\u00a7"
_ITEM_AT_START = re.compile(r"(^|[.:;!?]\s*|\n\s*)\(?(\d{1,2})[.)]\s+(?=[A-Za-z(#\d])")
_SECOND_ITEM = re.compile(r"(?:^|[.:;!?,]\s*|\n\s*|\s)\(?2[.)]\s+")
_ITEM_IN_LINE = re.compile(r"(?<=[\s,])\(?(\d{1,2})\)\s*(?=[A-Za-z])")
_ITEM_NAMED = re.compile(
    r"#\s*(\d{1,2})\b\s*[:.)-]?\s*|\b(polyp|lesion|specimen|site)\s*(?:no\.?\s*|#\s*)?(\d{1,2})\b"
    r"(?!\s*(?:mm|cm|millim|centim|x\s*\d|\.\d|[-/]\s*\d))\s*[:.)-]?\s*",
    re.I,
)
_NOT_AN_ITEM_BEFORE = re.compile(
    r"(?:\b(?:nice|jnet|type|class|kudo|paris|bbps|grade|category|score|scale|of|x)\s*|\([^)]*)$",
    re.I,
)
# Resections of an earlier examination, named by its scar ("post-EMR scar", "site of prior
# polypectomy"): not today's resection.
_PAST_RESECTION = re.compile(
    r"\b(?:post|prior|previous|earlier|old)[\s-]+(?:piecemeal\s+)?(?:EMR|ESD|polypectomy|"
    r"mucosectomy)\b|\b(?:EMR|ESD|polypectomy|mucosectomy)\s+(?:scar|site)\b",
    re.I,
)
_SCAR = re.compile(
    r"\bscar(?:s|ring)?\b|\b(?:polypectomy|resection|EMR|ESD|mucosectomy)\s+site\b|"
    r"\bsite\s+of\s+(?:the\s+)?(?:previous|prior|earlier)\b",
    re.I,
)
_NO_RECURRENCE = re.compile(
    r"\b(?:no|without|free\s+of|negative\s+for|nil)\b[^.;]{0,40}?\b(?:recurren\w*|residu\w*)|"
    r"\b(?:recurrence|residual\s+\w+)\s+(?:was\s+|were\s+)?(?:not\s+seen|absent)\b|"
    r"\bwell[\s-]healed\b",
    re.I,
)


def _mark_items(text: str) -> str:
    last = 0

    def in_sequence(number: int) -> bool:
        nonlocal last
        if number == 1 or number == last + 1:
            last = number
            return True
        return False

    def at_start(m: re.Match[str]) -> str:
        number = int(m.group(2))
        if number == 1 and not _SECOND_ITEM.search(text, m.end()):
            return m.group(0)  # "Polyps: 1." is a count, not a list of one
        if not in_sequence(number):
            return m.group(0)
        return f"{m.group(1)}\n{_ITEM_MARK}{number} "

    def in_line(m: re.Match[str]) -> str:
        number = int(m.group(1))
        if _NOT_AN_ITEM_BEFORE.search(text[max(0, m.start() - 40) : m.start()]):
            return m.group(0)
        if not in_sequence(number):
            return m.group(0)
        return f"\n{_ITEM_MARK}{number} "

    def named(m: re.Match[str]) -> str:
        if m.group(1):
            return f"\n{_ITEM_MARK}{int(m.group(1))} "
        return f"\n{_ITEM_MARK}{int(m.group(3))} {m.group(2)} "

    text = _ITEM_AT_START.sub(at_start, text)
    text = _ITEM_IN_LINE.sub(in_line, text)
    text = _ITEM_NAMED.sub(named, text)
    return _ADDENDUM.sub(_mark_addendum_numbers, text)


# A pathology addendum numbered with bare numbers ("Path: 1 TA; 2 HP", "1 - tubular adenoma,
# 2 - hyperplastic"): read as items when the numbers run 1, 2, ... (so "2 adenomas" is a count).
_ADDENDUM = re.compile(
    r"\b(?:patholog\w*|histolog\w*|histopatholog\w*|histo|path)\b(?:\s+report)?\s*:[^.\n]*",
    re.I,
)
_ADDENDUM_NUMBER = re.compile(r"(^\s*|[:;,]\s*)(\d{1,2})\s*(?:-|:)?\s+(?=[A-Za-z])")


def _mark_addendum_numbers(m: re.Match[str]) -> str:
    region = m.group(0)
    numbers = [int(n.group(2)) for n in _ADDENDUM_NUMBER.finditer(region, region.index(":"))]
    if len(numbers) < 2 or numbers != list(range(1, len(numbers) + 1)):
        return region
    head, body = region[: region.index(":") + 1], region[region.index(":") + 1 :]
    body = _ADDENDUM_NUMBER.sub(lambda n: f"{n.group(1)}\n{_ITEM_MARK}{n.group(2)} ", body)
    return head + body


def _normalise(text: str) -> str:
    text = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u00d7", "x")
    # Abbreviations whose dot would otherwise end a sentence.
    text = re.sub(
        r"\b(asc|desc|sig|trans|approx|appr)\.\s+", lambda m: m.group(1) + " ", text, flags=re.I
    )
    text = re.sub(r"\bapprox(?:imately)?\b\.?", "approximately", text, flags=re.I)
    # A decimal comma ("1,2 cm") is a decimal point; "4, 5 and 6 mm" (a space) is a list.
    text = re.sub(r"(\d),(\d)(?=\s*(?:mm|cm|millim|centim))", r"\1.\2", text, flags=re.I)
    text = text.replace(_ITEM_MARK, " ")
    return _mark_items(text)


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


# Distances along the colon, not sizes: "at 25 cm", "8 cm from the anal verge", "3 cm distal
# to the lesion", "sigmoid colon 25 cm:".
_DISTANCE = re.compile(
    r"\bat\s+\d+(?:\.\d+)?\s*cm\b|"
    r"\b\d+(?:\.\d+)?\s*cm\s+(?:from|proximal|distal|above|beyond|into|in\s+from)\b|"
    r"(?<=colon)\s+\d+(?:\.\d+)?\s*cm\s*(?=:)",
    re.I,
)


def _sizes(chunk: str) -> list[float]:
    sizes: list[tuple[int, float]] = []
    taken: list[tuple[int, int]] = [m.span() for m in _DISTANCE.finditer(chunk)]

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
    for m in _SIZE_LIST.finditer(chunk):
        if free(*m.span()):
            unit = m.group(3)
            for k, number in enumerate(re.findall(r"\d+(?:\.\d+)?", m.group(1))):
                sizes.append((m.start() + k, _to_mm(float(number), unit)))
            sizes.append((m.start(2), _to_mm(float(m.group(2)), unit)))
            taken.append(m.span())
    for m in _SIZE_ONE.finditer(chunk):
        if free(*m.span()):
            sizes.append((m.start(), _to_mm(float(m.group(1)), m.group(2))))
            taken.append(m.span())
    # Ten centimetres or more is a distance or an insertion depth, not a polyp's size.
    return [value for _, value in sorted(sizes) if value < 100]


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
    for m in _PARIS_BARE.finditer(chunk):
        if m.start() == 0 and m.group(1) == "Is":
            continue  # a sentence opening "Is ..." asks, it does not classify
        if _NOT_PARIS_BEFORE.search(chunk[: m.start()]):
            continue
        parts = [m.group(1), *re.findall(r"\+\s*(\w+)", m.group(2) or "")]
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
    if histologies and not (only_missing and lesion.histology is not None):
        position, label = histologies[0]
        lesion.histology = label
        # "adenoma vs hyperplastic" is a differential, a hedge too.
        differential = len(histologies) > 1 and re.search(
            r"\b(?:vs|versus)\b", chunk[position : histologies[1][0]], re.I
        )
        lesion.hedged = bool(_DIAGNOSIS_HEDGE.search(chunk[:position]) or differential)
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
            describes_before = _ALL_LESIONS.search(between[seps[-1].end() :])
            if not describes_before and (
                _INTRODUCER.search(after) or _location(after) or _NEG_PRE.search(after)
            ):
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


_DEFINITE = re.compile(r"\b(?:the|this|that|same|said)\s+(?:[a-z]+\s+)?$", re.I)
_ORDINAL = re.compile(
    r"\b(?:second|third|fourth|fifth|other|another|next|last|largest|smaller|larger)\b", re.I
)


def _qualifies_previous(
    sentence: str, groups: list[tuple[int, int, int]], previous: _Lesion
) -> bool:
    """Does a sentence with a lesion word describe the previous lesion, not a new one?

    "NICE type I; suspected hyperplastic polyp", "Laterally spreading tumour, non-granular
    type": no article, count, size or site introduces a lesion, or an optical-diagnosis
    hedge names what the previous lesion probably is (at the same site, if it names one).
    """
    before = sentence[: groups[0][1]]
    site = _location(sentence)
    if _NEG_PRE.search(before):
        return False
    definite = _DEFINITE.search(before)
    if definite and len(groups) == 1 and not _ORDINAL.search(definite.group(0)):
        # "The polyp measured 6 mm", "tattoo placed 3 cm distal to the lesion".
        return site is None or site == previous.location
    if _sizes(sentence):
        return False
    if _HEDGE.search(before) and _histologies(sentence):
        return site is None or site == previous.location
    return not (_INTRODUCER.search(before) or _UNCOUNTED_PLURAL.search(before) or site)


@dataclass
class _State:
    lesions: list[_Lesion] = field(default_factory=list)
    hedged_lesions: list[_Lesion] = field(default_factory=list)
    explicit_count: int | None = None
    uncounted: bool = False
    negated_polyps: bool = False
    announced: int = 0
    # The list item being read ("2. ..."), and whether a pathology addendum is being read.
    item: int | None = None
    in_pathology: bool = False
    # Inside an impression or summary, which names the lesions described before again; the
    # lesions it has already matched.
    in_summary: bool = False
    restated: list[int] = field(default_factory=list)
    # Sentences about earlier examinations, left out of everything read from the text.
    history: list[str] = field(default_factory=list)


# Section headers: a history or indication names earlier lesions, not this examination's; a
# summary restates the findings.
_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z /()]{1,40}?)\s*:")
_HISTORY_HEADER = re.compile(
    r"^(?:indications?|reasons?(?:\s+for\s+\w+)?|(?:past\s+|clinical\s+|medical\s+)?history|"
    r"clinical\s+(?:details|information|indications?)|hx|pmh|background|referral(?:\s+\w+)?)$",
    re.I,
)
_SUMMARY_HEADER = re.compile(
    r"^(?:impressions?|summary|conclusions?|diagnos[ie]s|assessment|"
    r"(?:endoscopic|final|post-?procedure)\s+diagnos[ie]s)$",
    re.I,
)
# A sentence about an earlier examination ("previous 12 mm adenoma removed in 2019").
_HISTORY = re.compile(
    r"\b(?:history\s+of|h/o|previous(?:ly)?\s+(?:removed|resected)|(?:last|prior|previous|index)\s+"
    r"(?:colonoscopy|examination|procedure)|(?:in|since)\s+(?:19|20)\d\d|\w+\s+years?\s+ago)\b",
    re.I,
)
_TODAY = re.compile(r"\b(?:today|this\s+(?:examination|procedure|colonoscopy))\b", re.I)
_ADENOMAS = ("adenoma", "tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma")


def _same_lesion(a: _Lesion, b: _Lesion) -> bool:
    """Could `a` and `b` be one lesion written twice (no attribute disagrees)?"""
    for name in ("location", "size_class", "paris", "lst", "nice", "jnet", "kudo"):
        x, y = getattr(a, name), getattr(b, name)
        if x is not None and y is not None and x != y:
            return False
    x, y = a.histology, b.histology
    if x is not None and y is not None and x != y:
        return "adenoma" in (x, y) and x in _ADENOMAS and y in _ADENOMAS
    return True


def _count_written(state: _State, count: int) -> None:
    # A summary's count restates the lesions already counted.
    if not (state.in_summary and state.lesions):
        state.explicit_count = (state.explicit_count or 0) + count


def _add_lesion(state: _State, lesion: _Lesion) -> None:
    """A new lesion, or, in a summary, the lesion it restates (which gains what it adds)."""
    if state.in_summary:
        for index, known in enumerate(state.lesions):
            if index in state.restated or not _same_lesion(known, lesion):
                continue
            state.restated.append(index)
            for name in (
                "size_mm",
                "size_class",
                "location",
                "paris",
                "lst",
                "nice",
                "jnet",
                "kudo",
                "dysplasia",
            ):
                if getattr(known, name) is None:
                    setattr(known, name, getattr(lesion, name))
            if known.histology is None or (
                known.histology == "adenoma" and lesion.histology in _ADENOMAS
            ):
                if lesion.histology is not None:
                    known.histology, known.hedged = lesion.histology, lesion.hedged
            return
    state.lesions.append(lesion)


_ITEM_LINE = re.compile("^" + _ITEM_MARK + r"(\d{1,2})\s*")
# "2 x 4mm polyps": a count times a size before a plural mention, not a 2 x 4 mm polyp.
_COUNT_TIMES_SIZE = re.compile(
    r"\b(\d{1,2})\s*x\s*(?=\d+(?:\.\d+)?\s*(?:mm|cm)\b[^,;:]{0,30}$)", re.I
)
# "Five polyps: three in the rectum (2-3 mm) and two in the sigmoid colon": the count shared
# out over sites.
_SHARE = re.compile(
    r"(?:^|,|;|:|\band\b)\s*(" + _NUM + r")\s+(?=(?:\w+\s+){0,2}?(?:in|at|from)\b)", re.I
)
_COUNT_AFTER = re.compile(r"^\s*x\s*(\d{1,2})\b(?!\s*(?:mm|cm|millim|centim|\.\d))", re.I)
# A template's count: "Polyps: 3".
_COUNT_FIELD = re.compile(r"^\s*:\s*(\d{1,2})(?![-\w]|\.\d|\s*(?:mm|cm|millim|centim|x))", re.I)


def _lesions_of_item(state: _State, number: int) -> list[_Lesion]:
    tagged = [lesion for lesion in state.lesions if lesion.item == number]
    if tagged:
        return tagged
    # A numbered addendum to lesions described without numbers: the n-th lesion.
    return state.lesions[number - 1 : number] if 0 < number <= len(state.lesions) else []


def _handle_pathology(sentence: str, state: _State) -> None:
    """Histology arriving after the description: by item number, else to the lesions in order."""
    labels = [label for _, label in _histologies(sentence)]
    dysplasia = _dysplasia(sentence)
    if state.item is not None:
        for lesion in _lesions_of_item(state, state.item):
            if labels:
                lesion.histology = labels[0]
                lesion.hedged = False
            if dysplasia:
                lesion.dysplasia = dysplasia
        return
    if labels:
        plural = re.search(r"\b\w*(?:omas|lesions|polyps|SSLs|TAs|HPs|SSPs)\b", sentence)
        if len(labels) == 1:
            every = _ALL_LESIONS.search(sentence) or plural
            targets = state.lesions if every else state.lesions[-1:]
            for lesion in targets:
                lesion.histology = labels[0]
                lesion.hedged = False
        else:
            for lesion, label in zip(state.lesions, labels, strict=False):
                lesion.histology = label
                lesion.hedged = False
    if dysplasia:
        state.lesions[-1].dysplasia = dysplasia


def _is_scar_only(sentence: str) -> bool:
    """A scar of an earlier resection without a lesion on it ("post-EMR scar, no recurrence")."""
    if not _SCAR.search(sentence):
        return False
    return bool(_NO_RECURRENCE.search(sentence)) or not _MENTION.search(sentence)


def _hedge_of(chunk: str, start: int, end: int) -> str | None:
    """How a mention is hedged: "existence" (rule out, cannot exclude), "word" (possible,
    likely, ?) or None."""
    before, after = chunk[:start], chunk[end:]
    if _HEDGE_POST.search(after):
        return "existence"
    m = _HEDGE_PRE.search(before)
    if not m:
        return None
    return "existence" if _EXISTENCE_HEDGE_CUE.search(m.group(0)) else "word"


def _share_out(after: str, count: int, state: _State) -> bool:
    """Lesions of a count shared out over sites after the mention ("Five polyps: three in the
    rectum (2-3 mm) and two in the sigmoid colon (4 mm)"); False when it is not written so."""
    parts = list(_SHARE.finditer(after))
    if len(parts) < 2:
        return False
    numbers = [_to_number(m.group(1)) for m in parts]
    if not all(n.is_integer() for n in numbers) or sum(numbers) != count:
        return False
    _count_written(state, count)
    for index, m in enumerate(parts):
        end = parts[index + 1].start() if index + 1 < len(parts) else len(after)
        part = after[m.end() : end]
        for _ in range(int(numbers[index])):
            lesion = _Lesion(item=state.item)
            _fill(lesion, part)
            _add_lesion(state, lesion)
    return True


# Distances and markings, whose centimetres are not a lesion's size.
_NOT_A_LESION_NOTE = re.compile(
    r"\b(?:tattoo\w*|verge|anus|anal|insertion|intubat\w*|withdrawal|distal\s+to|proximal\s+to|"
    r"scope|diverticul\w*|haemorrhoid\w*|hemorrhoid\w*|angiodysplas\w*|ulcer\w*|stricture|"
    r"erythema\w*|inflam\w*|colitis|proctitis|mucosa\w*|vessels?|bleed\w*|lipoma\w*|minutes?|"
    r"mins?)\b",
    re.I,
)


def _is_unnamed_lesion(sentence: str, state: _State) -> bool:
    """A note that names no lesion word but describes one by site and size ("rect 4mm Ip",
    "T colon 6mm IIa, NICE 2, CSP"): a new lesion when no described lesion is waiting
    for these attributes."""
    if not (_sizes(sentence) and _location(sentence)) or _NOT_A_LESION_NOTE.search(sentence):
        return False
    if _NEG_PRE.search(sentence):
        return False
    if not state.lesions:
        return True
    previous = state.lesions[-1]
    return previous.size_mm is not None and previous.location is not None


def _handle_sentence(sentence: str, state: _State) -> None:
    marked = _ITEM_LINE.match(sentence)
    if marked:
        state.item = int(marked.group(1))
        sentence = sentence[marked.end() :]
    elif not state.in_pathology:
        state.item = None
    header = _HEADER.match(sentence)
    if header and not marked:
        name = header.group(1).strip()
        if _HISTORY_HEADER.match(name):
            state.history.append(sentence)
            return
        summary = bool(_SUMMARY_HEADER.match(name))
        if summary and not state.in_summary:
            state.restated = []
        state.in_summary = summary
    if _HISTORY.search(sentence) and not _TODAY.search(sentence):
        state.history.append(sentence)
        return
    if _is_scar_only(sentence):
        return
    if _PATHOLOGY_SENTENCE.search(sentence) and state.lesions:
        state.in_pathology = True
        if not marked:
            state.item = None
        _handle_pathology(sentence, state)
        return
    if state.in_pathology:
        if marked and not _sizes(sentence):
            _handle_pathology(sentence, state)
            return
        state.in_pathology = False
        if not marked:
            state.item = None
    groups = _mention_groups(sentence)
    if groups and state.lesions and _qualifies_previous(sentence, groups, state.lesions[-1]):
        groups = []
    if not groups:
        if marked and _sizes(sentence) or _is_unnamed_lesion(sentence, state):
            # A numbered finding written without a lesion word ("2. Rectum, 3 mm, sessile").
            lesion = _Lesion(item=state.item)
            _fill(lesion, sentence)
            _add_lesion(state, lesion)
        elif state.lesions:
            targets = state.lesions if _ALL_LESIONS.search(sentence) else state.lesions[-1:]
            for lesion in targets:
                _fill(lesion, sentence, only_missing=True)
        return
    for index, (start, mstart, mend) in enumerate(groups):
        end = groups[index + 1][0] if index + 1 < len(groups) else len(sentence)
        chunk = sentence[start:end]
        local_start, local_end = mstart - start, mend - start
        mention = sentence[mstart:mend]
        hedge = _hedge_of(chunk, local_start, local_end)
        if hedge is not None:
            # A hedged diagnosis of a lesion that was measured or removed ("suspected SSL,
            # 10 mm, EMR") is a lesion; any other hedged mention is neither finding nor
            # negation.
            diagnosis = _histologies(chunk[:local_end])
            concrete = _sizes(chunk) or _resections(chunk)
            if hedge == "word" and diagnosis and index > 0 and not concrete:
                # "A 6 mm polyp in the sigmoid, possibly an adenoma": the diagnosis of the
                # lesion just described, not a lesion of its own.
                if not _location(chunk) and state.lesions:
                    state.lesions[-1].histology = diagnosis[0][1]
                    state.lesions[-1].hedged = True
                    continue
            if not (hedge == "word" and diagnosis and concrete):
                lesion = _Lesion(hedged=True)
                _fill(lesion, chunk)
                lesion.hedged = True
                state.hedged_lesions.append(lesion)
                continue
        elif _is_negated(chunk, local_start, local_end):
            state.negated_polyps = True
            continue
        first_mention = _MENTION.match(sentence, mstart)
        head = first_mention.group(0) if first_mention else mention
        plural = head.lower().endswith("s")
        times = _COUNT_TIMES_SIZE.search(chunk[:local_start]) if plural else None
        if times:
            chunk = chunk[: times.start()] + chunk[times.end() :]
            shift = times.end() - times.start()
            local_start, local_end = local_start - shift, local_end - shift
            count = int(times.group(1)) if 1 < int(times.group(1)) <= 20 else None
        else:
            count = _count_of(chunk[:local_start], head)
        if count is not None and _share_out(chunk[local_end:], count, state):
            continue
        if count is None:
            after = _COUNT_AFTER.match(chunk[local_end:])
            field_count = _COUNT_FIELD.match(chunk[local_end:]) if plural else None
            if field_count and 0 < int(field_count.group(1)) <= 20:
                count = int(field_count.group(1))
                chunk = chunk[:local_end]  # the count alone: it announces what follows
            elif after and 1 < int(after.group(1)) <= 20:
                count = int(after.group(1))
        sizes = _sizes(chunk)
        if count is None and plural and _UNCOUNTED_PLURAL.search(chunk[:local_start]):
            if not (state.in_summary and state.lesions):
                state.uncounted = True
        n_new = count if count is not None and count <= 20 else 1
        if count is not None:
            probe = _Lesion()
            _fill(probe, chunk)
            if probe.as_dict() == _Lesion().as_dict():
                # "Three polyps were found." announces lesions described next (or, in an
                # impression, before); lesions never described are added empty at the end.
                state.announced = max(state.announced, count)
                continue
            _count_written(state, count)
        for k in range(n_new):
            lesion = _Lesion(item=state.item)
            _fill(lesion, chunk)
            if n_new > 1 and len(sizes) == n_new:
                lesion.size_mm = sizes[k]
                lesion.size_class = size_class(sizes[k])
            _add_lesion(state, lesion)


_RESECTION_NEGATION = {"no", "not", "without", "nor"}
# Words between a negation and a resection that end the negation ("no bleeding after hot
# snare polypectomy").
_RESECTION_NEGATION_BREAK = {"after", "following", "post", "with", "by", "using", "at"}


def _resections(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    text = _PAST_RESECTION.sub("scar", text)
    for pattern, label in _RESECTION:
        for m in pattern.finditer(text):
            before = [word.lower() for word in re.findall(r"\w+", text[: m.start()])[-2:]]
            if before and (
                before[-1] in _RESECTION_NEGATION
                or (
                    len(before) == 2
                    and before[0] in _RESECTION_NEGATION
                    and before[1] not in _RESECTION_NEGATION_BREAK
                )
            ):
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
    examination = normalised
    for sentence in state.history:
        examination = examination.replace(sentence, " ")
    lesions = [lesion.as_dict() for lesion in state.lesions]
    if state.announced > len(lesions) and state.announced <= 20:
        lesions.extend(_Lesion().as_dict() for _ in range(state.announced - len(lesions)))
    normal = bool(_NORMAL.search(normalised))
    no_polyps: bool | None
    if lesions:
        no_polyps = False
    elif state.negated_polyps or normal:
        no_polyps = True
    else:
        # Silence is not a negation: nothing, gibberish, other findings or only hedges.
        no_polyps = None
    if lesions:
        if state.uncounted and state.explicit_count is None and not state.announced:
            count: int | None = None
        else:
            count = max(state.explicit_count or 0, state.announced, len(lesions))
    else:
        count = 0 if no_polyps else None
    return {
        "no_polyps": no_polyps,
        "polyp_count": count,
        "lesions": lesions,
        "bbps_total": _bbps(examination),
        "resection": _resections(examination),
        "surveillance_years": _surveillance(examination),
        "hedged": bool(state.hedged_lesions) or any(lesion.hedged for lesion in state.lesions),
        "hedged_lesions": [lesion.as_dict() for lesion in state.hedged_lesions],
    }
