"""The metamorphic suite of the clinical metric: seeded pairs of colonoscopy reports.

Each pair is an original report written from a drawn case (its ground-truth findings) and an
edit of it. A meaning-preserving edit writes the same findings another way (paraphrase,
sentence order, synonyms, abbreviations, British spelling, units); a meaning-changing edit
writes different findings in the same way (negation, size class across 10 mm, a distant
segment, a histology of another group, a dropped or an added lesion) and is labelled with
the error class it should produce. Both texts are scored against the case's ground truth:
a preserving edit may move the per-case clinical score by at most `PRESERVING_LIMIT`; a
changing edit must lower it by at least `CHANGING_DROP` and name its error class.
Read by `tests/metrics/test_clinical_metamorphic.py` (a sample) and `bench/metamorphic.py`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from metrics.clinical import ERROR_KINDS, score_findings
from metrics.clinical.vocab import LESION_FIELDS, LOCATIONS, location_phrase, size_class

SEED = 20261201
PRESERVING_LIMIT = 0.02
CHANGING_DROP = 0.2
# Scores are ratios of small counts: a drop of exactly 0.2 (1 -> 4/5) is 'at least 0.2', not a
# miss by a rounding error.
_EXACT = 1e-9
PRESERVING_KINDS = (
    "paraphrase",
    "sentence_order",
    "synonyms",
    "abbreviations",
    "british_spelling",
    "units",
)
# The error class each meaning-changing edit should produce (names of scoring.ERROR_KINDS).
EXPECTED_ERROR = {
    "negation": "negation_error",
    "size_class": "wrong_size_class",
    "segment": "wrong_location",
    "histology": "wrong_histology",
    "dropped_lesion": "missed_lesion",
    "added_lesion": "hallucinated_lesion",
}
CHANGING_KINDS = tuple(EXPECTED_ERROR)
KINDS = (*PRESERVING_KINDS, *CHANGING_KINDS)
TEMPLATES = 4  # three sentence templates and the numbered list

# Histologies as pathology reports name them, their abbreviation, and their group: a
# histology edit always moves to another group (an adenoma is never "changed" to a subtype).
_HISTOLOGY_WORDS = {
    "tubular_adenoma": ("tubular adenoma", "TA", "adenoma"),
    "tubulovillous_adenoma": ("tubulovillous adenoma", "TVA", "adenoma"),
    "hyperplastic": ("hyperplastic polyp", "HP", "hyperplastic"),
    "sessile_serrated_lesion": ("sessile serrated lesion", "SSL", "serrated"),
    "carcinoma": ("adenocarcinoma", "adenocarcinoma", "carcinoma"),
}
_SEGMENT_ABBREVIATIONS = {
    "ascending": "AC",
    "hepatic_flexure": "HF",
    "transverse": "TC",
    "splenic_flexure": "SF",
    "descending": "DC",
    "sigmoid": "SC",
}
_RESECTION_WORDS = {
    "cold_snare": ("cold snare", "CSP", "cold snare polypectomy"),
    "hot_snare": ("hot snare", "HSP", "hot snare polypectomy"),
}
_MORPHOLOGY_WORDS = {"0-Is": ("sessile", "Paris 0-Is"), "0-Ip": ("pedunculated", "Paris 0-Ip")}
_INDICATIONS = (
    "Indication: iron deficiency anemia.",
    "Indication: positive FIT.",
    "Indication: surveillance after polypectomy.",
    "Indication: change in bowel habit.",
)
_OTHER_FINDINGS = ("Small internal hemorrhoids.", "Sigmoid diverticulosis.", None)
_COUNT_WORDS = {2: "Two", 3: "Three", 4: "Four"}
_PLURALS = {
    "tubular adenoma": "tubular adenomas",
    "tubulovillous adenoma": "tubulovillous adenomas",
    "hyperplastic polyp": "hyperplastic polyps",
    "sessile serrated lesion": "sessile serrated lesions",
}
_BRITISH = {"cecum": "caecum", "anemia": "anaemia", "hemorrhoids": "haemorrhoids"}


@dataclass(frozen=True)
class Lesion:
    location: str
    size_mm: int
    histology: str
    paris: str | None
    resection: str

    def findings(self) -> dict[str, Any]:
        lesion: dict[str, Any] = dict.fromkeys(LESION_FIELDS)
        lesion.update(
            size_mm=self.size_mm,
            size_class=size_class(self.size_mm),
            location=self.location,
            paris=self.paris,
            histology=self.histology,
        )
        return lesion


@dataclass(frozen=True)
class Case:
    """What a report says: its lesions (none: a normal examination) and the framing sentences."""

    lesions: tuple[Lesion, ...]
    indication: str
    other: str | None
    bbps: int

    def findings(self) -> dict[str, Any]:
        return {
            "no_polyps": not self.lesions,
            "polyp_count": len(self.lesions),
            "lesions": [lesion.findings() for lesion in self.lesions],
            "bbps_total": self.bbps,
            "resection": sorted({lesion.resection for lesion in self.lesions}),
            "surveillance_years": None,
        }


@dataclass(frozen=True)
class Style:
    """How a report is written; a meaning-preserving edit changes exactly one of these."""

    template: int = 0  # paraphrase: the lesion sentence template (the last: a numbered list)
    grouped: bool = False  # paraphrase: identical lesions as one counted group ("two 4 mm polyps")
    order: int = 0  # sentence order: 0 as drawn, 1 lesions reversed with the framing moved
    synonyms: bool = False
    abbreviations: bool = False
    british: bool = False
    centimetres: bool = False


@dataclass(frozen=True)
class ReportPair:
    """One metamorphic pair; `expected_error` is None for a meaning-preserving edit."""

    pair_id: str
    kind: str
    preserving: bool
    expected_error: str | None
    reference: dict[str, Any]
    original: str
    edited: str
    seed: int


@dataclass(frozen=True)
class PairOutcome:
    pair: ReportPair
    original_score: float
    edited_score: float
    error_kinds: tuple[str, ...] = field(default_factory=tuple)
    # the added error classes the scores call clinically significant
    significant_kinds: tuple[str, ...] = field(default_factory=tuple)

    @property
    def delta(self) -> float:
        """Edited minus original per-case clinical score (negative: the edit lowered it)."""
        return self.edited_score - self.original_score

    @property
    def class_checked(self) -> bool:
        """Whether the scores know the expected error class (otherwise only the drop counts)."""
        return self.pair.expected_error in ERROR_KINDS

    @property
    def names_error(self) -> bool:
        return not self.class_checked or self.pair.expected_error in self.error_kinds

    @property
    def within_threshold(self) -> bool:
        if self.pair.preserving:
            return abs(self.delta) <= PRESERVING_LIMIT + _EXACT
        return self.delta <= -CHANGING_DROP + _EXACT and self.names_error


def _size(size_mm: int, style: Style) -> str:
    if style.centimetres:
        return f"{size_mm / 10:g} cm"
    return f"{size_mm} mm"


def _location(location: str, style: Style) -> str:
    if style.abbreviations and location in _SEGMENT_ABBREVIATIONS:
        return _SEGMENT_ABBREVIATIONS[location]
    return location_phrase(location)


def _noun(style: Style) -> str:
    # In a findings section "lesion" names the same polyp.
    return "lesion" if style.synonyms else "polyp"


def _lesion_sentence(lesion: Lesion, style: Style) -> str:
    size = _size(lesion.size_mm, style)
    where = _location(lesion.location, style)
    name, abbreviation, _ = _HISTOLOGY_WORDS[lesion.histology]
    histology = abbreviation if style.abbreviations else name
    plain, abbreviated, long = _RESECTION_WORDS[lesion.resection]
    resection = abbreviated if style.abbreviations else long if style.synonyms else plain
    morphology = ""
    if lesion.paris is not None:
        morphology = _MORPHOLOGY_WORDS[lesion.paris][1 if style.synonyms else 0] + " "
    removed = "resected by" if style.synonyms else "removed with"
    pathology = "Pathology" if style.synonyms else "Histology"
    if style.template == 0:
        return (
            f"A {size} {morphology}{_noun(style)} in the {where} was {removed} {resection}. "
            f"{pathology}: {histology}."
        )
    if style.template == 1:
        return (
            f"In the {where} there was a {size} {morphology}{_noun(style)}, {removed} {resection}; "
            f"{pathology.lower()} showed {histology}."
        )
    return (
        f"{where[0].upper()}{where[1:]}: {size} {morphology}{_noun(style)}, {resection}. "
        f"{pathology}: {histology}."
    )


def _numbered_list(lesions: tuple[Lesion, ...], style: Style) -> list[str]:
    """A numbered polyp list with the pathology addendum by number."""
    items = []
    addendum = []
    for n, lesion in enumerate(lesions, start=1):
        where = _location(lesion.location, style)
        plain, abbreviated, long = _RESECTION_WORDS[lesion.resection]
        resection = abbreviated if style.abbreviations else long if style.synonyms else plain
        morphology = ""
        if lesion.paris is not None:
            morphology = _MORPHOLOGY_WORDS[lesion.paris][1 if style.synonyms else 0] + " "
        items.append(
            f"{n}. {where[0].upper()}{where[1:]}: {_size(lesion.size_mm, style)} "
            f"{morphology}{_noun(style)}, {resection}."
        )
        name, abbreviation, _ = _HISTOLOGY_WORDS[lesion.histology]
        addendum.append(f"{n}. {abbreviation if style.abbreviations else name}.")
    pathology = "Pathology" if style.synonyms else "Histology"
    return [*items, f"{pathology}: {' '.join(addendum)}"]


def _group_sentence(lesion: Lesion, n: int, style: Style) -> str:
    """`n` identical lesions as one counted group: "Three 4 mm sessile polyps in ..."."""
    name, abbreviation, _ = _HISTOLOGY_WORDS[lesion.histology]
    histology = abbreviation if style.abbreviations else _PLURALS.get(name, name)
    plain, abbreviated, long = _RESECTION_WORDS[lesion.resection]
    resection = abbreviated if style.abbreviations else long if style.synonyms else plain
    morphology = ""
    if lesion.paris is not None:
        morphology = _MORPHOLOGY_WORDS[lesion.paris][1 if style.synonyms else 0] + " "
    removed = "resected by" if style.synonyms else "removed with"
    pathology = "Pathology" if style.synonyms else "Histology"
    return (
        f"{_COUNT_WORDS[n]} {_size(lesion.size_mm, style)} {morphology}{_noun(style)}s in the "
        f"{_location(lesion.location, style)} were {removed} {resection}. "
        f"{pathology}: all {histology}."
    )


def _normal_sentence(style: Style) -> str:
    return ("No polyps were found.", "No polyps were seen in the colon.", "Colon: no polyps.")[
        style.template % 3
    ]


def render(case: Case, style: Style) -> str:
    """The report text of `case` written in `style`."""
    if not case.lesions:
        findings = [_normal_sentence(style)]
    elif style.template == TEMPLATES - 1:
        findings = _numbered_list(case.lesions, style)
    elif style.grouped:
        findings = [
            _lesion_sentence(lesion, style) if n == 1 else _group_sentence(lesion, n, style)
            for lesion, n in Counter(case.lesions).items()
        ]
    else:
        findings = [_lesion_sentence(lesion, style) for lesion in case.lesions]
    prep = f"Bowel preparation was {'adequate' if case.bbps >= 6 else 'poor'} (BBPS {case.bbps})."
    reach = "The cecum was reached." if not style.synonyms else "Cecal intubation was achieved."
    framing = [case.indication, reach, prep]
    if style.order == 0:
        sentences = [*framing, *findings]
    elif len(findings) > 1 and style.template == TEMPLATES - 1:
        # A pathology addendum refers back to the list, so it stays after it.
        sentences = [prep, *findings, case.indication, reach]
    else:
        sentences = [prep, *reversed(findings), case.indication, reach]
    if case.other:
        sentences.append(case.other)
    text = " ".join(sentences)
    if style.british:
        for american, british in _BRITISH.items():
            text = text.replace(american, british)
    return text


def _draw_lesion(rng: random.Random, taken: set[str]) -> Lesion:
    location = rng.choice([loc for loc in LOCATIONS if loc not in taken] or list(LOCATIONS))
    size_mm = rng.choice((2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 18, 22, 25))
    weights = {
        "tubular_adenoma": 5,
        "hyperplastic": 2,
        "sessile_serrated_lesion": 2,
        "tubulovillous_adenoma": 1 if size_mm >= 8 else 0,
        "carcinoma": 1 if size_mm >= 15 else 0,
    }
    histology = rng.choices(list(weights), weights=list(weights.values()))[0]
    paris = rng.choice((None, "0-Is", "0-Ip" if size_mm >= 10 else "0-Is"))
    resection = "hot_snare" if size_mm >= 10 else "cold_snare"
    return Lesion(location, size_mm, histology, paris, resection)


def draw_case(rng: random.Random, *, lesions: int | None = None) -> Case:
    n = lesions if lesions is not None else rng.choice((0, 1, 1, 1, 2, 2, 3))
    drawn: list[Lesion] = []
    for _ in range(n):
        drawn.append(_draw_lesion(rng, {lesion.location for lesion in drawn}))
    if drawn and drawn[0].size_mm < 10 and drawn[0].histology != "carcinoma" and rng.random() < 0.3:
        # A counted group: identical diminutive or small lesions in one segment.
        drawn[1:1] = [drawn[0]] * rng.choice((1, 2))
    return Case(
        tuple(drawn), rng.choice(_INDICATIONS), rng.choice(_OTHER_FINDINGS), rng.randint(6, 9)
    )


def _draw_style(rng: random.Random) -> Style:
    # Originals are written plainly in one of the templates; edits then vary one trait.
    return Style(template=rng.randrange(TEMPLATES))


def _preserving_edit(kind: str, case: Case, style: Style, rng: random.Random) -> Style:
    if kind == "paraphrase":
        if len(set(case.lesions)) < len(case.lesions) and style.template != TEMPLATES - 1:
            return replace(style, grouped=not style.grouped)
        return replace(
            style, template=rng.choice([t for t in range(TEMPLATES) if t != style.template])
        )
    if kind == "sentence_order":
        return replace(style, order=1 - style.order)
    if kind == "synonyms":
        return replace(style, synonyms=True)
    if kind == "abbreviations":
        return replace(style, abbreviations=True)
    if kind == "british_spelling":
        return replace(style, british=True)
    if kind == "units":
        return replace(style, centimetres=True)
    raise ValueError(f"unknown meaning-preserving edit {kind!r}; use one of {PRESERVING_KINDS}")


def _changing_edit(kind: str, case: Case, rng: random.Random) -> Case | None:
    """The case with one meaning changed, or None when `case` cannot take this edit."""
    lesions = list(case.lesions)
    if kind == "added_lesion":
        added = _draw_lesion(rng, {lesion.location for lesion in lesions})
        return replace(case, lesions=(*lesions, added))
    if not lesions:
        return None
    i = rng.randrange(len(lesions))
    lesion = lesions[i]
    if kind == "negation":
        return replace(case, lesions=())
    if kind == "dropped_lesion":
        return (
            replace(case, lesions=tuple(lesions[:i] + lesions[i + 1 :]))
            if len(lesions) > 1
            else None
        )
    if kind == "size_class":
        # Across 10 mm: the size class that changes management and the interval.
        size_mm = rng.choice((12, 15, 20)) if lesion.size_mm < 10 else rng.choice((3, 5, 7))
        paris = "0-Is" if size_mm < 10 and lesion.paris == "0-Ip" else lesion.paris
        lesions[i] = replace(lesion, size_mm=size_mm, paris=paris)
    elif kind == "segment":
        here = LOCATIONS.index(lesion.location)
        others = {les.location for les in lesions}
        far = [loc for j, loc in enumerate(LOCATIONS) if abs(j - here) > 2 and loc not in others]
        if not far:
            return None
        lesions[i] = replace(lesion, location=rng.choice(far))
    elif kind == "histology":
        group = _HISTOLOGY_WORDS[lesion.histology][2]
        other = [h for h, words in _HISTOLOGY_WORDS.items() if words[2] not in (group, "carcinoma")]
        lesions[i] = replace(lesion, histology=rng.choice(other))
    else:
        raise ValueError(f"unknown meaning-changing edit {kind!r}; use one of {CHANGING_KINDS}")
    return replace(case, lesions=tuple(lesions))


def make_pair(kind: str, seed: int, index: int) -> ReportPair:
    """One pair of edit `kind`, drawn from its own seed (the same pair for the same seed)."""
    rng = random.Random(seed)
    for _ in range(200):
        case = draw_case(rng)
        style = _draw_style(rng)
        original = render(case, style)
        if kind in PRESERVING_KINDS:
            edited = render(case, _preserving_edit(kind, case, style, rng))
        else:
            changed = _changing_edit(kind, case, rng)
            if changed is None:
                continue
            edited = render(changed, style)
        if edited != original:
            return ReportPair(
                pair_id=f"{kind}-{index:03d}",
                kind=kind,
                preserving=kind in PRESERVING_KINDS,
                expected_error=EXPECTED_ERROR.get(kind),
                reference=case.findings(),
                original=original,
                edited=edited,
                seed=seed,
            )
    raise RuntimeError(f"no {kind} pair drawn from seed {seed}")


def generate_pairs(per_kind: int = 20, seed: int = SEED) -> list[ReportPair]:
    """`per_kind` pairs of every edit kind (12 kinds: 240 pairs by default), seeded."""
    rng = random.Random(seed)
    return [
        make_pair(kind, rng.randrange(2**32), index) for kind in KINDS for index in range(per_kind)
    ]


def measure(pair: ReportPair) -> PairOutcome:
    """Both texts scored against the case's ground truth by the clinical metric."""
    original = score_findings(pair.original, pair.reference)
    edited = score_findings(pair.edited, pair.reference)
    # The error classes the edit added (an extraction slip both texts share is not the edit's).
    added = Counter(e.kind for e in edited.errors) - Counter(e.kind for e in original.errors)
    significant = Counter(e.kind for e in edited.errors if e.significant) - Counter(
        e.kind for e in original.errors if e.significant
    )
    return PairOutcome(
        pair, original.score, edited.score, tuple(sorted(added)), tuple(sorted(significant))
    )


def summary(outcomes: list[PairOutcome]) -> list[dict[str, Any]]:
    """Per edit kind: n, mean |delta|, mean delta, share within its threshold."""
    rows = []
    for kind in KINDS:
        of_kind = [o for o in outcomes if o.pair.kind == kind]
        if not of_kind:
            continue
        n = len(of_kind)
        rows.append(
            {
                "kind": kind,
                "preserving": kind in PRESERVING_KINDS,
                "expected_error": EXPECTED_ERROR.get(kind),
                "class_checked": all(o.class_checked for o in of_kind),
                "n": n,
                "mean_abs_delta": sum(abs(o.delta) for o in of_kind) / n,
                "mean_delta": sum(o.delta for o in of_kind) / n,
                "within": sum(o.within_threshold for o in of_kind) / n,
                "significant": sum(o.pair.expected_error in o.significant_kinds for o in of_kind)
                / n,
            }
        )
    return rows


def markdown_table(outcomes: list[PairOutcome]) -> list[str]:
    """The per-kind summary as Markdown table lines."""
    lines = [
        "| edit | meaning | expected error class | n | mean abs delta | mean delta "
        "| within threshold | expected class significant |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in summary(outcomes):
        if row["preserving"]:
            meaning, expected = "preserved", "none"
        else:
            meaning = "changed"
            expected = f"`{row['expected_error']}`" + (
                "" if row["class_checked"] else " (not checked)"
            )
        lines.append(
            f"| {row['kind']} | {meaning} | {expected} | {row['n']} | "
            f"{row['mean_abs_delta']:.3f} | {row['mean_delta']:+.3f} | {row['within']:.0%} | "
            + ("" if row["preserving"] else f"{row['significant']:.0%}")
            + " |"
        )
    return lines
