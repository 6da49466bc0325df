"""A seeded generator of SYNTHETIC colonoscopy-like data: images, short clips, reports.

Nothing here is patient data. Each case draws a ground truth first (zero to three polyps
with size in mm, location, Paris class, NICE/JNET/Kudo class, histology, resection), then
renders a picture from it (mucosa texture, vessels, haustral folds, vignetting, specular
light, the polyps as shaded height fields) and writes a reference report from it in varied
clinical phrasing. The structured findings hold exactly what the report states, so they are
what a perfect reader of the report would extract. The surveillance interval a report
recommends is the USMSTF 2020 table's (`metrics.clinical.surveillance`) for those findings;
a suspected cancer gets a referral and no interval, as the guideline leaves it to cancer
management.

Output (all relative to `root`): images/*.png, videos/*.mp4, manifest.jsonl (one case a
line, every row marked synthetic), generation.json (the parameters), README.txt.
Generation is deterministic: the same parameters give byte-identical files.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from metrics.clinical.surveillance import surveillance_interval
from metrics.clinical.vocab import LOCATIONS, SIZE_CLASSES, size_class
from studies.benchmarks.findings import make_findings

GENERATOR = "studies.demo.synthetic"
# 2: intervals from the one USMSTF table (a carcinoma is referred, not given 1 year), and a
# piecemeal resection is always stated.
GENERATOR_VERSION = 2
MANIFEST = "manifest.jsonl"
PARAMS_FILE = "generation.json"

_ROMAN = {"1": "I", "2": "II", "3": "III"}
_NUMBER_WORDS = {1: "one", 2: "two", 3: "three"}
_LOCATION_PHRASES = {
    "cecum": ["cecum", "caecum"],
    "ascending": ["ascending colon", "proximal ascending colon"],
    "hepatic_flexure": ["hepatic flexure"],
    "transverse": ["transverse colon", "mid transverse colon"],
    "splenic_flexure": ["splenic flexure"],
    "descending": ["descending colon"],
    "sigmoid": ["sigmoid colon", "sigmoid"],
    "rectum": ["rectum", "distal rectum"],
}
_MORPHOLOGY_WORDS = {
    "0-Ip": ["pedunculated"],
    "0-Isp": ["subpedunculated"],
    "0-Is": ["sessile"],
    "0-IIa": ["flat elevated", "slightly elevated"],
    "0-IIb": ["flat"],
    "0-IIc": ["depressed"],
    "0-IIa+IIc": ["flat elevated lesion with a central depression,"],
}
_HISTOLOGY_PHRASES = {
    "hyperplastic": ["hyperplastic polyp"],
    "adenoma": ["adenoma", "adenomatous polyp"],
    "tubular_adenoma": ["tubular adenoma"],
    "tubulovillous_adenoma": ["tubulovillous adenoma"],
    "villous_adenoma": ["villous adenoma"],
    "sessile_serrated_lesion": ["sessile serrated lesion"],
    "traditional_serrated_adenoma": ["traditional serrated adenoma"],
    "carcinoma": ["early invasive carcinoma", "adenocarcinoma"],
}
_RESECTION_PHRASES = {
    "cold_forceps": ["Removed with cold forceps.", "Cold forceps polypectomy, complete."],
    "cold_snare": ["Removed by cold snare.", "Cold snare polypectomy, en bloc."],
    "hot_snare": ["Resected with hot snare after placing an endoloop.", "Hot snare resection."],
    "emr": ["Lifted with saline and removed by EMR.", "Endoscopic mucosal resection (EMR)."],
    "biopsy": ["Biopsies taken; not resected.", "Biopsied and tattooed; not removed."],
}


@dataclass
class Lesion:
    """The ground truth of one drawn polyp."""

    size_mm: int
    location: str
    paris: str
    histology: str
    nice: str
    jnet: str
    kudo: str
    lst: str | None
    resection: str
    piecemeal: bool = False


@dataclass
class CaseTruth:
    lesions: list[Lesion]
    bbps_total: int
    bbps_segments: tuple[int, int, int]
    # None where the table gives no interval (a carcinoma: referral instead).
    surveillance_years: float | None
    surveillance_rule: str
    mentioned: dict[str, bool] = field(default_factory=dict)


# --- ground truth -------------------------------------------------------------------


def _choice(rng: np.random.Generator, options: list[Any], weights: list[float] | None = None):
    if weights is None:
        return options[int(rng.integers(len(options)))]
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _draw_lesion(rng: np.random.Generator) -> Lesion:
    size_band = _choice(rng, list(SIZE_CLASSES), [0.5, 0.3, 0.2])
    size = {
        "diminutive": int(rng.integers(2, 6)),
        "small": int(rng.integers(6, 10)),
        "large": int(_choice(rng, [10, 12, 14, 15, 18, 20, 25, 30])),
    }[size_band]
    # Weights per segment, cecum to rectum (the order of LOCATIONS).
    location = _choice(rng, list(LOCATIONS), [0.1, 0.16, 0.06, 0.16, 0.05, 0.1, 0.24, 0.13])
    if size < 10:
        paris = _choice(rng, ["0-Is", "0-IIa", "0-Isp", "0-Ip", "0-IIb"], [45, 30, 10, 10, 5])
    else:
        paris = _choice(
            rng,
            ["0-Ip", "0-Isp", "0-Is", "0-IIa", "0-IIa+IIc", "0-IIc"],
            [25, 15, 25, 25, 5, 5],
        )
    right = location in ("cecum", "ascending", "hepatic_flexure", "transverse")
    distal_small = size < 6 and location in ("sigmoid", "rectum")
    if paris in ("0-IIa+IIc", "0-IIc") and size >= 10:
        histology = _choice(rng, ["carcinoma", "tubulovillous_adenoma"], [0.5, 0.5])
    elif distal_small:
        histology = _choice(rng, ["hyperplastic", "tubular_adenoma"], [0.55, 0.45])
    elif right and paris in ("0-IIa", "0-IIb", "0-Is"):
        histology = _choice(
            rng, ["sessile_serrated_lesion", "tubular_adenoma", "hyperplastic"], [0.45, 0.45, 0.1]
        )
    elif size >= 10:
        histology = _choice(
            rng,
            ["tubular_adenoma", "tubulovillous_adenoma", "villous_adenoma", "adenoma"]
            + ["traditional_serrated_adenoma"],
            [0.45, 0.3, 0.05, 0.1, 0.1],
        )
    else:
        histology = _choice(rng, ["tubular_adenoma", "adenoma", "hyperplastic"], [0.6, 0.15, 0.25])
    serrated = histology in ("hyperplastic", "sessile_serrated_lesion")
    if histology == "carcinoma":
        nice, jnet, kudo = "3", _choice(rng, ["2B", "3"]), _choice(rng, ["VI", "VN"])
    elif serrated:
        nice, jnet, kudo = "1", "1", "II"
    elif histology in ("tubulovillous_adenoma", "villous_adenoma"):
        nice, jnet, kudo = "2", _choice(rng, ["2A", "2B"], [0.6, 0.4]), "IV"
    else:
        nice, jnet, kudo = "2", "2A", _choice(rng, ["IIIL", "IV"], [0.8, 0.2])
    lst = None
    if size >= 10 and paris == "0-IIa":
        lst = _choice(rng, ["LST-G-H", "LST-G-NM", "LST-NG-FE", "LST-NG-PD"], [35, 25, 30, 10])
    if histology == "carcinoma":
        resection = "biopsy"
    elif size <= 3:
        resection = _choice(rng, ["cold_forceps", "cold_snare"], [0.6, 0.4])
    elif size < 10:
        resection = "cold_snare"
    elif paris in ("0-Ip", "0-Isp"):
        resection = "hot_snare"
    else:
        resection = "emr"
    piecemeal = resection == "emr" and size >= 20
    return Lesion(size, location, paris, histology, nice, jnet, kudo, lst, resection, piecemeal)


def draw_truth(rng: np.random.Generator) -> CaseTruth:
    n_lesions = int(_choice(rng, [0, 1, 2, 3], [0.25, 0.4, 0.2, 0.15]))
    lesions = [_draw_lesion(rng) for _ in range(n_lesions)]
    segments = tuple(int(_choice(rng, [1, 2, 3], [0.1, 0.35, 0.55])) for _ in range(3))
    mentioned = {
        "bbps": bool(rng.random() < 0.8),
        "nice": bool(rng.random() < 0.85),
        "jnet": bool(rng.random() < 0.45),
        "kudo": bool(rng.random() < 0.35),
        "resection": bool(rng.random() < 0.85),
    }
    return case_truth(lesions, segments, mentioned)  # type: ignore[arg-type]


def case_truth(
    lesions: list[Lesion], segments: tuple[int, int, int], mentioned: dict[str, bool]
) -> CaseTruth:
    """A case's ground truth, with the interval the USMSTF table gives for what its report
    states (`truth_findings`)."""
    truth = CaseTruth(
        lesions=lesions,
        bbps_total=sum(segments),
        bbps_segments=segments,
        surveillance_years=None,
        surveillance_rule="",
        mentioned=dict(mentioned),
    )
    recommendation = surveillance_interval(truth_findings(truth))
    truth.surveillance_years = recommendation.years
    truth.surveillance_rule = recommendation.summary
    return truth


# --- the report ---------------------------------------------------------------------


def _size_text(rng: np.random.Generator, size_mm: int) -> str:
    style = rng.random()
    if size_mm >= 10 and style < 0.5:
        cm = size_mm / 10
        text = f"{cm:g} cm"
    elif size_mm < 10 and style < 0.12:
        text = f"{size_mm / 10:g} cm"
    elif style < 0.75:
        text = f"{size_mm} mm"
    else:
        text = f"{size_mm}mm"
    if rng.random() < 0.25:
        text = _choice(rng, ["approximately ", "about "]) + text
    return text


def _a(word: str) -> str:
    """The indefinite article a speaker would use before `word` ("an 8 mm", "a 1.2 cm")."""
    spoken_vowel = word[0] in "aeiou8" or word.startswith(("11 ", "11mm", "18"))
    return "An" if spoken_vowel else "A"


def _paris_text(rng: np.random.Generator, paris: str) -> str:
    short = paris.removeprefix("0-")
    return _choice(rng, [f"Paris {paris}", f"Paris {short}", f"Paris classification {paris}"])


def _lesion_sentences(
    rng: np.random.Generator, lesion: Lesion, index: int, total: int, truth: CaseTruth
) -> str:
    size = _size_text(rng, lesion.size_mm)
    morph = _choice(rng, _MORPHOLOGY_WORDS[lesion.paris])
    loc = _choice(rng, _LOCATION_PHRASES[lesion.location])
    paris = _paris_text(rng, lesion.paris)
    noun = "lesion" if lesion.lst or lesion.paris.startswith("0-II") else "polyp"
    if lesion.paris == "0-IIa+IIc":
        morph, noun = "flat elevated", "lesion with a central depression"
    templates = [
        f"{_a(size)} {size} {morph} {noun} ({paris}) was found in the {loc}.",
        f"In the {loc}, there was {_a(size).lower()} {size} {morph} {noun}, {paris}.",
        f"{_a(morph)} {morph} {noun} measuring {size} was seen in the {loc} ({paris}).",
    ]
    if total > 1:
        ordinal = ["First", "Second", "Third"][index]
        templates.append(f"{ordinal}: {size} {morph} {noun} in the {loc}, {paris}.")
    parts = [_choice(rng, templates)]
    if lesion.lst:
        granular = "granular" if lesion.lst.startswith("LST-G") else "non-granular"
        parts.append(f"Laterally spreading tumour, {granular} type ({lesion.lst}).")
    classes = []
    if truth.mentioned["nice"]:
        nice = lesion.nice if rng.random() < 0.5 else _ROMAN[lesion.nice]
        classes.append(f"NICE type {nice}")
    if truth.mentioned["jnet"]:
        classes.append(f"JNET {lesion.jnet}")
    if truth.mentioned["kudo"]:
        classes.append(f"Kudo pit pattern {lesion.kudo}")
    histology = _choice(rng, _HISTOLOGY_PHRASES[lesion.histology])
    lead = _choice(rng, ["suspected", "likely", "consistent with", "optical diagnosis:"])
    if classes:
        parts.append(f"{', '.join(classes)}; {lead} {histology}.")
    else:
        parts.append(f"Endoscopic appearance {lead.replace(':', '')} {histology}.")
    if truth.mentioned["resection"]:
        sentence = _choice(rng, _RESECTION_PHRASES[lesion.resection])
        if lesion.piecemeal:
            sentence = "Removed by piecemeal EMR."
        parts.append(sentence)
    elif lesion.piecemeal:
        # A piecemeal resection sets a 6-month interval, so a report always states it.
        parts.append("Removed by piecemeal EMR.")
    return " ".join(parts)


def _recommendation(rng: np.random.Generator, truth: CaseTruth) -> str:
    years = truth.surveillance_years
    if years is None:
        when = ""
    elif years == 0.5:
        when = "in 6 months"
    else:
        when = f"in {years:g} years" if years != 1 else "in 1 year"
    if not truth.lesions:
        return _choice(
            rng,
            [
                f"Recommendation: repeat screening colonoscopy {when}.",
                f"Next colonoscopy {when}.",
                f"Return for screening colonoscopy {when}.",
            ],
        )
    pending = " pending histology" if rng.random() < 0.5 else ""
    if any(lesion.histology == "carcinoma" for lesion in truth.lesions):
        # A suspected cancer is outside the surveillance table: referral, no interval.
        return "Referral to colorectal surgery for cancer management; no surveillance interval."
    return _choice(
        rng,
        [
            f"Recommendation: surveillance colonoscopy {when}{pending}.",
            f"Repeat colonoscopy {when}{pending}.",
            f"Follow-up colonoscopy recommended {when}.",
        ],
    )


def write_report(rng: np.random.Generator, truth: CaseTruth) -> str:
    parts = [
        _choice(
            rng,
            [
                "Colonoscopy to the cecum; complete examination.",
                "Complete colonoscopy with good views on withdrawal.",
                "Total colonoscopy performed; ileum not intubated.",
            ],
        )
    ]
    if truth.mentioned["bbps"]:
        a, b, c = truth.bbps_segments
        parts.append(
            _choice(
                rng,
                [
                    f"Boston Bowel Preparation Scale {truth.bbps_total} ({a}-{b}-{c}).",
                    f"Bowel preparation adequate, BBPS {truth.bbps_total}.",
                    f"BBPS total {truth.bbps_total}.",
                ],
            )
        )
    n = len(truth.lesions)
    if n == 0:
        parts.append(
            _choice(
                rng,
                [
                    "No polyps were seen.",
                    "Normal colonoscopy: no polyps or masses.",
                    "No evidence of polyps, masses or inflammation.",
                ],
            )
        )
    else:
        if n > 1 and rng.random() < 0.6:
            parts.append(
                _choice(
                    rng,
                    [f"{_NUMBER_WORDS[n].capitalize()} polyps were found.", f"{n} polyps found:"],
                )
            )
        for index, lesion in enumerate(truth.lesions):
            parts.append(_lesion_sentences(rng, lesion, index, n, truth))
    parts.append(_recommendation(rng, truth))
    return " ".join(parts)


def truth_findings(truth: CaseTruth) -> dict[str, Any]:
    """The findings the report states, in the clinical-finding schema."""
    lesions = []
    for lesion in truth.lesions:
        lesions.append(
            {
                "size_mm": lesion.size_mm,
                "size_class": size_class(lesion.size_mm),
                "location": lesion.location,
                "paris": lesion.paris,
                "lst": lesion.lst,
                "nice": lesion.nice if truth.mentioned["nice"] else None,
                "jnet": lesion.jnet if truth.mentioned["jnet"] else None,
                "kudo": lesion.kudo if truth.mentioned["kudo"] else None,
                "histology": lesion.histology,
            }
        )
    resection: list[str] = []
    for lesion in truth.lesions:
        if lesion.piecemeal:
            stated = ["piecemeal", lesion.resection]  # "Removed by piecemeal EMR."
        else:
            stated = [lesion.resection] if truth.mentioned["resection"] else []
        resection += [label for label in stated if label not in resection]
    return make_findings(
        lesions,
        bbps_total=truth.bbps_total if truth.mentioned["bbps"] else None,
        resection=resection,
        surveillance_years=truth.surveillance_years,
    )


# --- rendering ----------------------------------------------------------------------


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise in [0, 1]: a small random grid upsampled bicubically."""
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    image = Image.fromarray(grid, mode="L").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


@dataclass
class _Placed:
    lesion: Lesion
    x: float
    y: float
    radius: float


def _place_lesions(
    rng: np.random.Generator, lesions: list[Lesion], size: int, lumen: tuple[float, float]
) -> list[_Placed]:
    placed: list[_Placed] = []
    for lesion in lesions:
        radius = size * (0.03 + 0.0055 * min(lesion.size_mm, 30))
        for _attempt in range(40):
            angle = rng.uniform(0, 2 * math.pi)
            dist = rng.uniform(0.22, 0.36) * size
            x = lumen[0] + math.cos(angle) * dist
            y = lumen[1] + math.sin(angle) * dist
            inside = radius < x < size - radius and radius < y < size - radius
            apart = all(math.hypot(x - p.x, y - p.y) > radius + p.radius + 4 for p in placed)
            if inside and apart:
                break
        placed.append(_Placed(lesion, x, y, radius))
    return placed


def render_scene(
    rng: np.random.Generator, lesions: list[Lesion], size: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """An unlit-by-camera colon view (float RGB in [0, 1]) and the polyps' boxes."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    lumen = (size * rng.uniform(0.4, 0.6), size * rng.uniform(0.4, 0.6))
    dx, dy = xx - lumen[0], yy - lumen[1]
    r = np.sqrt(dx * dx + dy * dy) / size + 1e-3
    theta = np.arctan2(dy, dx)

    # Haustral folds: rings denser toward the lumen (perspective), wobbling with the angle.
    wobble = 0.18 * np.sin(3 * theta + rng.uniform(0, 6.3)) + 0.1 * np.sin(
        5 * theta + rng.uniform(0, 6.3)
    )
    phase = np.log(r) * rng.uniform(2.6, 3.4) + wobble + rng.uniform(0, 6.3)
    phase = phase + 0.8 * _noise(rng, size, 5)
    ridge = np.maximum(np.sin(2.0 * phase), 0) ** 3
    height = 0.045 * size * ridge * _smoothstep(0.04, 0.25, r)

    placed = _place_lesions(rng, lesions, size, lumen)
    hue = rng.uniform(-0.05, 0.05)
    mucosa = np.array([0.86 + hue, 0.47 + hue / 2, 0.40], dtype=np.float32)
    texture = (
        0.55 * _noise(rng, size, 6) + 0.3 * _noise(rng, size, 24) + 0.15 * _noise(rng, size, 80)
    )
    albedo = mucosa[None, None, :] * (0.82 + 0.3 * texture[..., None])
    # Vessels: thin dark-red lines where a noise field crosses its middle value.
    vessels = np.abs(_noise(rng, size, 14) - 0.5) < 0.012 + 0.01 * _noise(rng, size, 9)
    albedo[vessels] *= np.array([0.86, 0.66, 0.7], dtype=np.float32)

    boxes = []
    for item in placed:
        height, albedo = _draw_polyp(rng, item, xx, yy, height, albedo, lumen)
        boxes.append(
            {
                "box": [
                    round(max(0.0, item.x - item.radius * 1.2) / size, 4),
                    round(max(0.0, item.y - item.radius * 1.2) / size, 4),
                    round(min(size, item.x + item.radius * 1.2) / size, 4),
                    round(min(size, item.y + item.radius * 1.2) / size, 4),
                ],
                "size_mm": item.lesion.size_mm,
                "paris": item.lesion.paris,
            }
        )

    # Light from the scope tip: diffuse + sharp specular on slopes facing the light.
    gy, gx = np.gradient(height)
    normal = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    # The light sits off the view axis, so only slopes (polyp domes, fold crests) glint.
    light_angle = rng.uniform(0, 2 * math.pi)
    light = np.array([0.6 * math.cos(light_angle), 0.6 * math.sin(light_angle), 1.0], np.float32)
    light /= np.linalg.norm(light)
    half = light + np.array([0, 0, 1], np.float32)
    half /= np.linalg.norm(half)
    diffuse = np.clip(normal @ light, 0, 1)
    specular = np.clip(normal @ half, 0, 1) ** 400
    depth = 0.12 + 0.88 * _smoothstep(0.02, 0.42, r)  # the far lumen is dark
    colour = albedo * (0.25 + 0.75 * diffuse)[..., None] * depth[..., None]
    colour += (0.9 * specular * _smoothstep(0.05, 0.2, r))[..., None]
    return np.clip(colour, 0, 1), boxes


def _draw_polyp(
    rng: np.random.Generator,
    item: _Placed,
    xx: np.ndarray,
    yy: np.ndarray,
    height: np.ndarray,
    albedo: np.ndarray,
    lumen: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    lesion, radius = item.lesion, item.radius
    tint = {
        "hyperplastic": np.array([0.92, 0.56, 0.5]),
        "sessile_serrated_lesion": np.array([0.9, 0.62, 0.52]),
        "carcinoma": np.array([0.7, 0.3, 0.28]),
    }.get(lesion.histology, np.array([0.9, 0.42, 0.38]))
    tint = tint.astype(np.float32)
    cx, cy = item.x, item.y
    if lesion.paris in ("0-Ip", "0-Isp"):
        # The head leans toward the lumen, on a stalk (short for subpedunculated).
        toward = np.array([lumen[0] - cx, lumen[1] - cy])
        toward /= np.linalg.norm(toward) + 1e-6
        reach = 1.1 if lesion.paris == "0-Ip" else 0.45
        hx, hy = cx + toward[0] * radius * reach, cy + toward[1] * radius * reach
        # Stalk: distance from the segment base -> head.
        seg = np.array([hx - cx, hy - cy])
        t = np.clip(((xx - cx) * seg[0] + (yy - cy) * seg[1]) / (seg @ seg + 1e-6), 0, 1)
        dist = np.hypot(xx - (cx + t * seg[0]), yy - (cy + t * seg[1]))
        stalk_r = radius * (0.32 if lesion.paris == "0-Ip" else 0.6)
        stalk = np.sqrt(np.clip(1 - (dist / stalk_r) ** 2, 0, 1)) * stalk_r * 0.8
        head_r = radius * 0.8
        d = np.hypot(xx - hx, yy - hy)
        head = np.sqrt(np.clip(1 - (d / head_r) ** 2, 0, 1)) * head_r * 1.3 + stalk_r
        bump = np.maximum(stalk, np.where(d < head_r, head, 0))
        mask = np.clip(bump / (stalk_r * 0.3), 0, 1)
    else:
        angle = np.arctan2(yy - cy, xx - cx)
        edge = radius * (
            1
            + 0.12 * np.sin(3 * angle + rng.uniform(0, 6.3))
            + 0.08 * np.sin(5 * angle + rng.uniform(0, 6.3))
        )
        d = np.hypot(xx - cx, yy - cy) / edge
        inside = np.clip(1 - d * d, 0, 1)
        if lesion.paris == "0-Is":
            bump = np.sqrt(inside) * radius * 0.9
        elif lesion.paris == "0-IIb":
            bump = _smoothstep(0.0, 0.3, inside) * radius * 0.04
        elif lesion.paris in ("0-IIc", "0-IIa+IIc"):
            rim = _smoothstep(0.0, 0.25, inside) * radius * 0.25
            pit = (
                _smoothstep(0.45, 1.0, inside) * radius * (0.35 if "IIa" in lesion.paris else 0.45)
            )
            bump = rim - pit
        else:  # 0-IIa: a low plateau
            bump = _smoothstep(0.0, 0.35, inside) * radius * 0.22
        mask = _smoothstep(0.0, 0.15, inside)
    surface = 0.85 + 0.3 * _noise(rng, xx.shape[0], max(8, int(xx.shape[0] / radius * 3)))
    polyp_albedo = tint[None, None, :] * surface[..., None]
    albedo = albedo * (1 - mask[..., None]) + polyp_albedo * mask[..., None]
    return height + bump, albedo.astype(np.float32)


def _camera(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vignetting, the round field of view of the scope, sensor noise -> uint8."""
    size = colour.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
    vignette = 1 - 0.55 * np.clip(d, 0, 1.5) ** 2.4
    field_of_view = 1 - _smoothstep(1.08, 1.14, d)
    out = colour * (vignette * field_of_view)[..., None]
    out += rng.normal(0, 0.012, out.shape).astype(np.float32)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_image(
    rng: np.random.Generator, lesions: list[Lesion], size: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    colour, boxes = render_scene(rng, lesions, size)
    return _camera(colour, rng), boxes


def render_clip(
    rng: np.random.Generator, lesions: list[Lesion], size: int, frames: int
) -> list[np.ndarray]:
    """A camera drifting (and slowly advancing) over one scene."""
    big = int(size * 1.4)
    colour, _boxes = render_scene(rng, lesions, big)
    scene = Image.fromarray((colour * 255 + 0.5).astype(np.uint8))
    start = np.array([rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)]) * big
    drift = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1)]) * big * 0.18
    wobble = rng.uniform(0, 6.3)
    out = []
    for index in range(frames):
        t = index / max(1, frames - 1)
        centre = (
            start + drift * t + np.array([math.sin(wobble + 5 * t), math.cos(wobble + 4 * t)]) * 3
        )
        window = size * (1.0 - 0.25 * t)  # moving in: the view narrows
        half = window / 2
        cx = float(np.clip(centre[0], half, big - half))
        cy = float(np.clip(centre[1], half, big - half))
        crop = scene.crop((cx - half, cy - half, cx + half, cy + half)).resize(
            (size, size), Image.Resampling.BILINEAR
        )
        out.append(_camera(np.asarray(crop, dtype=np.float32) / 255.0, rng))
    return out


def video_codec() -> str:
    """libx264 where PyAV's FFmpeg has it, else mpeg4 (always built in)."""
    import av

    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for a missing codec
        return "mpeg4"


def write_mp4(path: Path, frames: list[np.ndarray], fps: int, codec: str) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width = frames[0].shape[1]
        stream.height = frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        # One thread and fixed settings keep the bytes identical run to run.
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": "veryfast"}
        else:
            stream.bit_rate = 800_000
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _split_for(index: int, total: int) -> str:
    """About 70 / 15 / 15 by position; test gets at least one case once there are two."""
    n_test = max(1, round(0.15 * total)) if total >= 2 else 0
    n_val = round(0.15 * total) if total >= 5 else 0
    if index < total - n_test - n_val:
        return "train"
    return "val" if index < total - n_test else "test"


def _case_rng(seed: int, kind: int, index: int) -> np.random.Generator:
    # One stream per case: changing n_images never changes the other cases.
    return np.random.default_rng([seed, kind, index])


def generate_synthetic_colon(
    root: Path,
    n_images: int = 48,
    n_videos: int = 6,
    seed: int = 0,
    image_size: int = 224,
    video_frames: int = 16,
    fps: int = 8,
) -> Path:
    """Write the synthetic benchmark into `root` and return the manifest path."""
    if n_images < 0 or n_videos < 0:
        raise ValueError("n_images and n_videos must be >= 0")
    if image_size < 64 or image_size % 2:
        raise ValueError("image_size must be an even number of pixels >= 64")
    if n_videos and (video_frames < 2 or fps < 1):
        raise ValueError("video_frames must be >= 2 and fps >= 1")
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    codec = video_codec() if n_videos else None
    params = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_images": n_images,
        "n_videos": n_videos,
        "image_size": image_size,
        "video_frames": video_frames,
        "fps": fps,
        "video_codec": codec,
        "synthetic": True,
    }
    rows: list[dict[str, Any]] = []
    for index in range(n_images):
        rng = _case_rng(seed, 0, index)
        truth = draw_truth(rng)
        pixels, boxes = render_image(rng, truth.lesions, image_size)
        case_id = f"synth-img-{index:04d}"
        relative = f"images/{case_id}.png"
        Image.fromarray(pixels).save(root / relative, format="PNG", optimize=False)
        rows.append(_row(case_id, _split_for(index, n_images), "image", [relative], truth, rng))
        rows[-1]["lesion_boxes"] = boxes
    if n_videos:
        (root / "videos").mkdir(exist_ok=True)
    for index in range(n_videos):
        rng = _case_rng(seed, 1, index)
        truth = draw_truth(rng)
        frames = render_clip(rng, truth.lesions, image_size, video_frames)
        case_id = f"synth-vid-{index:03d}"
        relative = f"videos/{case_id}.mp4"
        write_mp4(root / relative, frames, fps, codec or "mpeg4")
        row = _row(case_id, _split_for(index, n_videos), "video", [relative], truth, rng)
        row.update({"frames": video_frames, "fps": fps})
        rows.append(row)
    for row in rows:
        row["seed"] = seed
    manifest = root / MANIFEST
    with open(manifest, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
    (root / PARAMS_FILE).write_text(json.dumps(params, indent=2, sort_keys=True) + "\n")
    (root / "README.txt").write_text(
        "SYNTHETIC DATA. Procedurally drawn colonoscopy-like images and clips with reports\n"
        "written from a random ground truth; no patient data, not for clinical use.\n"
        f"Made by {GENERATOR} v{GENERATOR_VERSION} with seed {seed}; see {PARAMS_FILE}.\n"
    )
    return manifest


def _row(
    case_id: str,
    split: str,
    modality: str,
    media: list[str],
    truth: CaseTruth,
    rng: np.random.Generator,
) -> dict[str, Any]:
    report = write_report(rng, truth)
    row: dict[str, Any] = {
        "case_id": case_id,
        "split": split,
        "modality": modality,
        "report": report,
        "findings": truth_findings(truth),
        "truth": [asdict(lesion) for lesion in truth.lesions],
        "surveillance_rule": truth.surveillance_rule,
        "synthetic": True,
    }
    row["images" if modality == "image" else "video"] = media if modality == "image" else media[0]
    return row
