"""Hand-written report sentences and the structured findings they must yield."""

from __future__ import annotations

from typing import Any

import pytest

from metrics.clinical import FINDINGS_SCHEMA_VERSION, extract_findings

LESION_KEYS = (
    "size_mm",
    "size_class",
    "location",
    "paris",
    "lst",
    "nice",
    "jnet",
    "kudo",
    "histology",
    "dysplasia",
    "hedged",
)


def L(**attrs: Any) -> dict[str, Any]:  # noqa: N802 - short name keeps the table readable
    attrs.setdefault("hedged", False)
    return {key: attrs.get(key) for key in LESION_KEYS}


def H(**attrs: Any) -> dict[str, Any]:  # noqa: N802
    """A hedged mention ("rule out adenoma", "possible polyp"): neither finding nor negation."""
    return L(hedged=True, **attrs)


def expected(
    *lesions: dict[str, Any],
    no_polyps: bool | None | str = "auto",
    count: int | None | str = "auto",
    bbps: int | None = None,
    resection: list[str] | None = None,
    years: float | None = None,
    hedges: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    if no_polyps == "auto":
        # A text that lists no lesion and negates none states nothing about polyps.
        no_polyps = False if lesions else None
    if count == "auto":
        count = len(lesions) if lesions else (0 if no_polyps else None)
    return {
        "no_polyps": no_polyps,
        "polyp_count": count,
        "lesions": list(lesions),
        "bbps_total": bbps,
        "resection": resection or [],
        "surveillance_years": years,
        # Any hedge about polyps: a hedged mention, or a lesion's hedged diagnosis.
        "hedged": bool(hedges) or any(lesion["hedged"] for lesion in lesions),
        "hedged_lesions": list(hedges),
    }


CASES: list[tuple[str, dict[str, Any]]] = [
    # --- negations and normal examinations
    ("No polyps.", expected(no_polyps=True)),
    ("No evidence of polyps or masses.", expected(no_polyps=True)),
    ("Normal colonoscopy.", expected(no_polyps=True)),
    ("Normal colonoscopy to the cecum; BBPS 9.", expected(no_polyps=True, bbps=9)),
    ("The colon was examined to the caecum. No polyps were seen.", expected(no_polyps=True)),
    ("Polyps were not identified.", expected(no_polyps=True)),
    (
        "Colonoscopy was unremarkable. Repeat colonoscopy in 10 years.",
        expected(no_polyps=True, years=10),
    ),
    ("Without any polyps or lesions throughout the colon.", expected(no_polyps=True)),
    (
        "Negative for polyps. Boston Bowel Preparation Scale 3-3-3.",
        expected(no_polyps=True, bbps=9),
    ),
    (
        "No polyps in the rectum. A 4 mm sessile polyp in the cecum.",
        expected(L(size_mm=4, size_class="diminutive", location="cecum", paris="0-Is")),
    ),
    (
        "A 6 mm polyp in the sigmoid colon. No other polyps.",
        expected(L(size_mm=6, size_class="small", location="sigmoid")),
    ),
    ("No masses, no polyps, normal mucosa.", expected(no_polyps=True)),
    # --- single lesions, sizes in mm and cm
    (
        "A 5 mm sessile polyp was found in the ascending colon.",
        expected(L(size_mm=5, size_class="diminutive", location="ascending", paris="0-Is")),
    ),
    (
        "1.2 cm pedunculated polyp in the sigmoid.",
        expected(L(size_mm=12, size_class="large", location="sigmoid", paris="0-Ip")),
    ),
    (
        "There is a 0.8 cm polyp at the hepatic flexure.",
        expected(L(size_mm=8, size_class="small", location="hepatic_flexure")),
    ),
    (
        "Single 3mm polyp, rectum, cold forceps.",
        expected(
            L(size_mm=3, size_class="diminutive", location="rectum"), resection=["cold_forceps"]
        ),
    ),
    (
        "A 10 mm subpedunculated polyp in the transverse colon was removed by hot snare.",
        expected(
            L(size_mm=10, size_class="large", location="transverse", paris="0-Isp"),
            resection=["hot_snare"],
        ),
    ),
    (
        "An 8-10 mm flat elevated lesion at the splenic flexure.",
        expected(L(size_mm=10, size_class="large", location="splenic_flexure", paris="0-IIa")),
    ),
    (
        "Descending colon: 7 mm polyp, semi-pedunculated.",
        expected(L(size_mm=7, size_class="small", location="descending", paris="0-Isp")),
    ),
    (
        "A 2 cm polyp in the caecum.",
        expected(L(size_mm=20, size_class="large", location="cecum")),
    ),
    (
        "A 15 x 10 mm sessile polyp in the rectum.",
        expected(L(size_mm=15, size_class="large", location="rectum", paris="0-Is")),
    ),
    (
        "A diminutive polyp was seen in the sigmoid colon.",
        expected(L(size_class="diminutive", location="sigmoid")),
    ),
    (
        "A large pedunculated polyp in the descending colon.",
        expected(L(size_class="large", location="descending", paris="0-Ip")),
    ),
    (
        "Asc. colon: 9 mm slightly elevated polyp.",
        expected(L(size_mm=9, size_class="small", location="ascending", paris="0-IIa")),
    ),
    (
        "Rectal polyp measuring approximately 4 mm.",
        expected(L(size_mm=4, size_class="diminutive", location="rectum")),
    ),
    (
        "A polyp of 1.5cm at the ileocecal valve.",
        expected(L(size_mm=15, size_class="large", location="cecum")),
    ),
    (
        "Sessile polyp 6 millimeters in the transverse colon.",
        expected(L(size_mm=6, size_class="small", location="transverse", paris="0-Is")),
    ),
    # --- several lesions
    (
        "A 5 mm sessile polyp in the cecum and a 12 mm pedunculated polyp in the sigmoid colon.",
        expected(
            L(size_mm=5, size_class="diminutive", location="cecum", paris="0-Is"),
            L(size_mm=12, size_class="large", location="sigmoid", paris="0-Ip"),
        ),
    ),
    (
        "Two 4 mm polyps in the rectum, removed with cold snare.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum"),
            L(size_mm=4, size_class="diminutive", location="rectum"),
            resection=["cold_snare"],
        ),
    ),
    (
        "Three polyps (3 mm, 6 mm and 11 mm) in the transverse colon.",
        expected(
            L(size_mm=3, size_class="diminutive", location="transverse"),
            L(size_mm=6, size_class="small", location="transverse"),
            L(size_mm=11, size_class="large", location="transverse"),
        ),
    ),
    (
        "3 diminutive polyps in the sigmoid.",
        expected(*[L(size_class="diminutive", location="sigmoid")] * 3),
    ),
    (
        "Cecum: 4 mm sessile polyp. Sigmoid: 7 mm pedunculated polyp.",
        expected(
            L(size_mm=4, size_class="diminutive", location="cecum", paris="0-Is"),
            L(size_mm=7, size_class="small", location="sigmoid", paris="0-Ip"),
        ),
    ),
    (
        "A 3 mm polyp in the rectum, a 5 mm polyp in the descending colon and another 8 mm "
        "polyp in the transverse colon.",
        expected(
            L(size_mm=3, size_class="diminutive", location="rectum"),
            L(size_mm=5, size_class="diminutive", location="descending"),
            L(size_mm=8, size_class="small", location="transverse"),
        ),
    ),
    (
        "Five polyps were removed from the colon.",
        expected(*[L()] * 5),
    ),
    (
        "Multiple small polyps in the rectosigmoid.",
        expected(L(location="sigmoid"), count=None),
    ),
    (
        "Twelve adenomas throughout the colon were removed.",
        expected(*[L(histology="adenoma")] * 12),
    ),
    (
        "A pair of 2-3 mm polyps in the cecum.",
        expected(*[L(size_mm=3, size_class="diminutive", location="cecum")] * 2),
    ),
    # --- Paris, LST and optical classifications
    (
        "Paris 0-IIa+IIc lesion, 15x10 mm, at the hepatic flexure.",
        expected(L(size_mm=15, size_class="large", location="hepatic_flexure", paris="0-IIa+IIc")),
    ),
    (
        "A 6 mm polyp, Paris Is, in the ascending colon.",
        expected(L(size_mm=6, size_class="small", location="ascending", paris="0-Is")),
    ),
    (
        "Paris classification 0-Ip polyp of 14 mm in the sigmoid.",
        expected(L(size_mm=14, size_class="large", location="sigmoid", paris="0-Ip")),
    ),
    (
        "A depressed lesion (0-IIc), 8 mm, in the transverse colon.",
        expected(L(size_mm=8, size_class="small", location="transverse", paris="0-IIc")),
    ),
    (
        "A 4 mm flat polyp in the descending colon.",
        expected(L(size_mm=4, size_class="diminutive", location="descending", paris="0-IIb")),
    ),
    (
        "An excavated lesion in the rectum.",
        expected(L(location="rectum", paris="0-III")),
    ),
    (
        "1.2 cm LST-G-H in the ascending colon, removed by EMR.",
        expected(
            L(size_mm=12, size_class="large", location="ascending", lst="LST-G-H"),
            resection=["emr"],
        ),
    ),
    (
        "A 25 mm laterally spreading tumor, non-granular pseudo-depressed type, in the cecum.",
        expected(L(size_mm=25, size_class="large", location="cecum", lst="LST-NG-PD")),
    ),
    (
        "A 30 mm granular nodular mixed laterally spreading lesion in the rectum, removed by ESD.",
        expected(
            L(size_mm=30, size_class="large", location="rectum", lst="LST-G-NM"), resection=["esd"]
        ),
    ),
    (
        "LST-NG-FE of 20 mm at the splenic flexure; piecemeal EMR.",
        expected(
            L(size_mm=20, size_class="large", location="splenic_flexure", lst="LST-NG-FE"),
            resection=["piecemeal", "emr"],
        ),
    ),
    (
        "A 6 mm polyp in the sigmoid, NICE type II.",
        expected(L(size_mm=6, size_class="small", location="sigmoid", nice="2")),
    ),
    (
        "A 4 mm rectal polyp, NICE 1, left in situ.",
        expected(L(size_mm=4, size_class="diminutive", location="rectum", nice="1")),
    ),
    (
        "A 12 mm polyp in the transverse colon, JNET type 2B, Kudo pit pattern VI.",
        expected(L(size_mm=12, size_class="large", location="transverse", jnet="2B", kudo="VI")),
    ),
    (
        "Cecal polyp 7 mm, JNET IIA, Kudo IIIL.",
        expected(L(size_mm=7, size_class="small", location="cecum", jnet="2A", kudo="IIIL")),
    ),
    (
        "A 9 mm polyp with pit pattern type IV in the descending colon, NICE III.",
        expected(L(size_mm=9, size_class="small", location="descending", kudo="IV", nice="3")),
    ),
    (
        "A 5 mm polyp, Kudo type II, NICE type I, in the rectum.",
        expected(L(size_mm=5, size_class="diminutive", location="rectum", kudo="II", nice="1")),
    ),
    # --- histology
    (
        "A 4 mm tubular adenoma in the ascending colon.",
        expected(
            L(size_mm=4, size_class="diminutive", location="ascending", histology="tubular_adenoma")
        ),
    ),
    (
        "A 15 mm tubulovillous adenoma with high-grade dysplasia in the sigmoid.",
        expected(
            L(
                size_mm=15,
                size_class="large",
                location="sigmoid",
                histology="tubulovillous_adenoma",
                dysplasia="high_grade",
            )
        ),
    ),
    (
        "An 8 mm sessile serrated lesion in the transverse colon.",
        expected(
            L(
                size_mm=8,
                size_class="small",
                location="transverse",
                histology="sessile_serrated_lesion",
            )
        ),
    ),
    (
        "Two 3 mm hyperplastic polyps in the rectum.",
        expected(
            *[L(size_mm=3, size_class="diminutive", location="rectum", histology="hyperplastic")]
            * 2
        ),
    ),
    (
        "A 6 mm polyp in the cecum. Pathology: sessile serrated adenoma.",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="cecum",
                histology="sessile_serrated_lesion",
            )
        ),
    ),
    (
        "Two 4 mm polyps in the rectum. Pathology: tubular adenomas.",
        expected(
            *[L(size_mm=4, size_class="diminutive", location="rectum", histology="tubular_adenoma")]
            * 2
        ),
    ),
    (
        "A 7 mm polyp in the cecum and a 5 mm polyp in the sigmoid. Histology showed a tubular "
        "adenoma and a hyperplastic polyp.",
        expected(
            L(size_mm=7, size_class="small", location="cecum", histology="tubular_adenoma"),
            L(size_mm=5, size_class="diminutive", location="sigmoid", histology="hyperplastic"),
        ),
    ),
    (
        "A 3 cm ulcerated mass in the rectum, biopsied; suspicious for adenocarcinoma.",
        expected(
            # The mass is seen; only its diagnosis is hedged.
            L(
                size_mm=30,
                size_class="large",
                location="rectum",
                histology="carcinoma",
                hedged=True,
            ),
            resection=["biopsy"],
        ),
    ),
    (
        "A 12 mm traditional serrated adenoma in the sigmoid colon.",
        expected(
            L(
                size_mm=12,
                size_class="large",
                location="sigmoid",
                histology="traditional_serrated_adenoma",
            )
        ),
    ),
    (
        "Villous adenoma, 25 mm, rectum.",
        expected(L(size_mm=25, size_class="large", location="rectum", histology="villous_adenoma")),
    ),
    (
        "Asc colon 6 mm SSA/P, cold snare.",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="ascending",
                histology="sessile_serrated_lesion",
            ),
            resection=["cold_snare"],
        ),
    ),
    (
        "5 mm TA in the transverse colon, CSP.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="transverse",
                histology="tubular_adenoma",
            ),
            resection=["cold_snare"],
        ),
    ),
    # --- preparation, resection and surveillance statements
    (
        "BBPS 2-3-3. A 4 mm polyp in the rectum was removed with cold snare. Repeat colonoscopy "
        "in 7-10 years.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum"),
            bbps=8,
            resection=["cold_snare"],
            years=7,
        ),
    ),
    (
        "No polyps. Boston bowel preparation scale total of 6. Next colonoscopy in ten years.",
        expected(no_polyps=True, bbps=6, years=10),
    ),
    (
        "A 25 mm LST-G in the cecum was removed piecemeal by EMR. Surveillance colonoscopy in "
        "6 months.",
        expected(
            L(size_mm=25, size_class="large", location="cecum", lst="LST-G"),
            resection=["piecemeal", "emr"],
            years=0.5,
        ),
    ),
    (
        "A 5 mm polyp in the sigmoid was biopsied. Follow-up in 3 yrs.",
        expected(
            L(size_mm=5, size_class="diminutive", location="sigmoid"),
            resection=["biopsy"],
            years=3,
        ),
    ),
    (
        "A 6 mm polyp in the descending colon, no biopsy taken.",
        expected(L(size_mm=6, size_class="small", location="descending")),
    ),
    (
        "A 7 mm sessile polyp in the transverse colon was removed with a snare.",
        expected(
            L(size_mm=7, size_class="small", location="transverse", paris="0-Is"),
            resection=["snare"],
        ),
    ),
    (
        "Hot snare polypectomy of a 14 mm pedunculated polyp in the sigmoid; recall in 3 years.",
        expected(
            L(size_mm=14, size_class="large", location="sigmoid", paris="0-Ip"),
            resection=["hot_snare"],
            years=3,
        ),
    ),
]


CASES += [
    # --- announced counts, hedged optical diagnoses, LST sentences after the lesion
    (
        "Three polyps were found. A 6 mm sessile polyp in the rectum. A 4 mm polyp in the "
        "cecum. An 8 mm polyp in the sigmoid.",
        expected(
            L(size_mm=6, size_class="small", location="rectum", paris="0-Is"),
            L(size_mm=4, size_class="diminutive", location="cecum"),
            L(size_mm=8, size_class="small", location="sigmoid"),
        ),
    ),
    (
        "2 polyps found: In the rectum, there was a 3 mm polyp. Second: 7 mm polyp in the sigmoid.",
        expected(
            L(size_mm=3, size_class="diminutive", location="rectum"),
            L(size_mm=7, size_class="small", location="sigmoid"),
        ),
    ),
    (
        "A 5 mm polyp in the rectum. NICE type I; suspected hyperplastic polyp.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="rectum",
                nice="1",
                histology="hyperplastic",
                hedged=True,
            )
        ),
    ),
    (
        "A 14 mm flat elevated lesion in the ascending colon. Laterally spreading tumour, "
        "non-granular type (LST-NG-PD). JNET 2B; optical diagnosis: tubulovillous adenoma.",
        expected(
            L(
                size_mm=14,
                size_class="large",
                location="ascending",
                paris="0-IIa",
                lst="LST-NG-PD",
                jnet="2B",
                histology="tubulovillous_adenoma",
            )
        ),
    ),
]


# Report styles as gastroenterologists write them: assertion versus silence, hedges, numbered
# lists with a pathology addendum by number, telegraphic notes, abbreviations, sizes in cm and
# ranges, counts, scars, British spelling.
STYLE_CASES: list[tuple[str, dict[str, Any]]] = [
    # --- a text that states nothing about polyps
    ("", expected()),
    ("xq blorp zzt", expected()),
    ("Patient tolerated the procedure well.", expected()),
    ("Sigmoid diverticular disease. Internal haemorrhoids.", expected()),
    ("Good bowel preparation, BBPS 8. Caecum reached.", expected(bbps=8)),
    ("Mild erythema of the rectal mucosa, biopsied.", expected(resection=["biopsy"])),
    (
        "Poor bowel preparation (BBPS 3); examination incomplete. Repeat colonoscopy in 1 year.",
        expected(bbps=3, years=1),
    ),
    # --- explicit negations
    ("No polyps, masses or AVMs seen to the caecum.", expected(no_polyps=True)),
    ("No polypoid lesions identified.", expected(no_polyps=True)),
    (
        "Normal colour and vascular pattern of the colonic mucosa; no polyps.",
        expected(no_polyps=True),
    ),
    ("Haemorrhoids only; colonoscopy otherwise normal.", expected(no_polyps=True)),
    (
        "No polyps. Rule out microscopic colitis: random biopsies taken.",
        expected(no_polyps=True, resection=["biopsy"]),
    ),
    # --- hedges: neither findings nor negations
    ("Rule out adenoma.", expected(hedges=(H(histology="adenoma"),))),
    (
        "Possible polyp in the sigmoid colon.",
        expected(hedges=(H(location="sigmoid"),)),
    ),
    (
        "Cannot exclude a flat lesion in the caecum.",
        expected(hedges=(H(location="cecum", paris="0-IIb"),)),
    ),
    (
        "Likely adenoma in the transverse colon.",
        expected(hedges=(H(location="transverse", histology="adenoma"),)),
    ),
    (
        "Suspicious for a polyp at the hepatic flexure; poor views.",
        expected(hedges=(H(location="hepatic_flexure"),)),
    ),
    (
        "A 6 mm polyp in the sigmoid colon. Possible second polyp in the descending colon.",
        expected(
            L(size_mm=6, size_class="small", location="sigmoid"),
            hedges=(H(location="descending"),),
        ),
    ),
    (
        "A 5 mm polyp in the rectum, likely hyperplastic.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="rectum",
                histology="hyperplastic",
                hedged=True,
            )
        ),
    ),
    (
        "Suspected sessile serrated lesion in the ascending colon, 10 mm, removed by EMR.",
        expected(
            L(
                size_mm=10,
                size_class="large",
                location="ascending",
                histology="sessile_serrated_lesion",
                hedged=True,
            ),
            resection=["emr"],
        ),
    ),
    # --- numbered polyp lists with a pathology addendum by number
    (
        "Findings: 1. Sigmoid colon, 6 mm sessile polyp, removed with cold snare. 2. Rectum, "
        "3 mm sessile polyp, cold forceps. Pathology: 1) tubular adenoma 2) hyperplastic polyp.",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="sigmoid",
                paris="0-Is",
                histology="tubular_adenoma",
            ),
            L(
                size_mm=3,
                size_class="diminutive",
                location="rectum",
                paris="0-Is",
                histology="hyperplastic",
            ),
            resection=["cold_snare", "cold_forceps"],
        ),
    ),
    (
        "1) Cecum: 8 mm flat polyp (0-IIa), CSP. 2) Ascending colon: 4 mm polyp, CSP. "
        "3) Descending colon: 12 mm pedunculated polyp, HSP. "
        "Pathology: 1) SSL 2) TA 3) TA with LGD.",
        expected(
            L(
                size_mm=8,
                size_class="small",
                location="cecum",
                paris="0-IIa",
                histology="sessile_serrated_lesion",
            ),
            L(
                size_mm=4,
                size_class="diminutive",
                location="ascending",
                histology="tubular_adenoma",
            ),
            L(
                size_mm=12,
                size_class="large",
                location="descending",
                paris="0-Ip",
                histology="tubular_adenoma",
                dysplasia="low_grade",
            ),
            resection=["cold_snare", "hot_snare"],
        ),
    ),
    (
        "1. 5 mm polyp in the transverse colon. 2. 7 mm polyp in the sigmoid colon. "
        "Path: #2 tubular adenoma; #1 hyperplastic.",
        expected(
            L(size_mm=5, size_class="diminutive", location="transverse", histology="hyperplastic"),
            L(size_mm=7, size_class="small", location="sigmoid", histology="tubular_adenoma"),
        ),
    ),
    (
        "Polyp 1: ascending colon, 10 mm, Paris 0-Is, EMR. Polyp 2: rectum, 2 mm, 0-IIa, cold "
        "forceps. Histology: polyp 1 tubulovillous adenoma with low-grade dysplasia; polyp 2 "
        "hyperplastic.",
        expected(
            L(
                size_mm=10,
                size_class="large",
                location="ascending",
                paris="0-Is",
                histology="tubulovillous_adenoma",
                dysplasia="low_grade",
            ),
            L(
                size_mm=2,
                size_class="diminutive",
                location="rectum",
                paris="0-IIa",
                histology="hyperplastic",
            ),
            resection=["emr", "cold_forceps"],
        ),
    ),
    (
        "1. Two 3 mm polyps in the rectum, CSP. 2. A 9 mm polyp in the sigmoid colon, CSP. "
        "Pathology: 1) hyperplastic polyps 2) tubular adenoma.",
        expected(
            *[L(size_mm=3, size_class="diminutive", location="rectum", histology="hyperplastic")]
            * 2,
            L(size_mm=9, size_class="small", location="sigmoid", histology="tubular_adenoma"),
            resection=["cold_snare"],
        ),
    ),
    (
        "1. 4 mm sessile polyp in the caecum.\n2. 6 mm pedunculated polyp in the descending colon.",
        expected(
            L(size_mm=4, size_class="diminutive", location="cecum", paris="0-Is"),
            L(size_mm=6, size_class="small", location="descending", paris="0-Ip"),
        ),
    ),
    (
        "A 5 mm polyp in the caecum. A 7 mm polyp in the sigmoid colon. Pathology: 1) tubular "
        "adenoma, 2) sessile serrated lesion.",
        expected(
            L(size_mm=5, size_class="diminutive", location="cecum", histology="tubular_adenoma"),
            L(
                size_mm=7,
                size_class="small",
                location="sigmoid",
                histology="sessile_serrated_lesion",
            ),
        ),
    ),
    # --- telegraphic notes and abbreviations
    (
        "sigm 6mm sess polyp, CSP",
        expected(
            L(size_mm=6, size_class="small", location="sigmoid", paris="0-Is"),
            resection=["cold_snare"],
        ),
    ),
    (
        "asc 4mm polyp CSP; rect 3mm HP left in situ",
        expected(
            L(size_mm=4, size_class="diminutive", location="ascending"),
            L(size_mm=3, size_class="diminutive", location="rectum", histology="hyperplastic"),
            resection=["cold_snare"],
        ),
    ),
    (
        "TC 8mm ped polyp, HSP. Path TA.",
        expected(
            L(
                size_mm=8,
                size_class="small",
                location="transverse",
                paris="0-Ip",
                histology="tubular_adenoma",
            ),
            resection=["hot_snare"],
        ),
    ),
    (
        "AC: 5 mm SSL, CSP.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="ascending",
                histology="sessile_serrated_lesion",
            ),
            resection=["cold_snare"],
        ),
    ),
    (
        "HF 12 mm 0-IIa LST-G-H, EMR.",
        expected(
            L(
                size_mm=12,
                size_class="large",
                location="hepatic_flexure",
                paris="0-IIa",
                lst="LST-G-H",
            ),
            resection=["emr"],
        ),
    ),
    (
        "SF 7mm TVA, HSP",
        expected(
            L(
                size_mm=7,
                size_class="small",
                location="splenic_flexure",
                histology="tubulovillous_adenoma",
            ),
            resection=["hot_snare"],
        ),
    ),
    (
        "DC 3 mm HP x2, CFP",
        expected(
            *[
                L(
                    size_mm=3,
                    size_class="diminutive",
                    location="descending",
                    histology="hyperplastic",
                )
            ]
            * 2,
            resection=["cold_forceps"],
        ),
    ),
    (
        "RE: 4 mm HP, not removed.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum", histology="hyperplastic")
        ),
    ),
    (
        "CE 15 mm SSA/P with dysplasia, piecemeal EMR",
        expected(
            L(
                size_mm=15,
                size_class="large",
                location="cecum",
                histology="sessile_serrated_lesion",
            ),
            resection=["piecemeal", "emr"],
        ),
    ),
    (
        "IC valve 6 mm polyp, CSP",
        expected(L(size_mm=6, size_class="small", location="cecum"), resection=["cold_snare"]),
    ),
    (
        "SC 10mm VA, ESD",
        expected(
            L(size_mm=10, size_class="large", location="sigmoid", histology="villous_adenoma"),
            resection=["esd"],
        ),
    ),
    (
        "Transv colon 5mm SSP, cold snare.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="transverse",
                histology="sessile_serrated_lesion",
            ),
            resection=["cold_snare"],
        ),
    ),
    (
        "6 mm TA with HGD in the sigmoid colon.",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="sigmoid",
                histology="tubular_adenoma",
                dysplasia="high_grade",
            )
        ),
    ),
    (
        "TVA, 18 mm, rectum, LGD.",
        expected(
            L(
                size_mm=18,
                size_class="large",
                location="rectum",
                histology="tubulovillous_adenoma",
                dysplasia="low_grade",
            )
        ),
    ),
    (
        "Two SSLs in the ascending colon, 6 mm and 8 mm, CSP.",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="ascending",
                histology="sessile_serrated_lesion",
            ),
            L(
                size_mm=8,
                size_class="small",
                location="ascending",
                histology="sessile_serrated_lesion",
            ),
            resection=["cold_snare"],
        ),
    ),
    # --- sizes in cm and ranges
    (
        "A 1.2 cm sessile polyp in the descending colon.",
        expected(L(size_mm=12, size_class="large", location="descending", paris="0-Is")),
    ),
    (
        "A 0.5 cm polyp in the rectum.",
        expected(L(size_mm=5, size_class="diminutive", location="rectum")),
    ),
    (
        "Polyp measuring 1-1.5 cm in the ascending colon.",
        expected(L(size_mm=15, size_class="large", location="ascending")),
    ),
    (
        "A 6 to 8 mm polyp in the sigmoid colon.",
        expected(L(size_mm=8, size_class="small", location="sigmoid")),
    ),
    (
        "A 4-5mm polyp in the caecum.",
        expected(L(size_mm=5, size_class="diminutive", location="cecum")),
    ),
    (
        "Two polyps in the ascending colon measuring 5 and 7 mm.",
        expected(
            L(size_mm=5, size_class="diminutive", location="ascending"),
            L(size_mm=7, size_class="small", location="ascending"),
        ),
    ),
    # --- counts
    (
        "Three 3 mm polyps in the rectum.",
        expected(*[L(size_mm=3, size_class="diminutive", location="rectum")] * 3),
    ),
    (
        "2 polyps of 4-5 mm in the sigmoid colon.",
        expected(*[L(size_mm=5, size_class="diminutive", location="sigmoid")] * 2),
    ),
    (
        "Four diminutive polyps (2-4 mm) throughout the colon, all removed with cold snare.",
        expected(*[L(size_mm=4, size_class="diminutive")] * 4, resection=["cold_snare"]),
    ),
    (
        "A few diminutive polyps in the rectum.",
        expected(L(size_class="diminutive", location="rectum"), count=None),
    ),
    # --- scars are not polyps; the resection that made them is not today's
    ("Post-EMR scar in the ascending colon without recurrence.", expected()),
    (
        "Previous polypectomy site in the sigmoid colon seen, no residual polyp. No other polyps.",
        expected(no_polyps=True),
    ),
    (
        "Post-EMR scar at the hepatic flexure, no recurrence. A 4 mm polyp in the rectum, "
        "cold snare.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum"), resection=["cold_snare"]
        ),
    ),
    (
        "Scar from prior ESD in the rectum, tattooed, no residual neoplasia. No polyps elsewhere.",
        expected(no_polyps=True),
    ),
    (
        "EMR scar in the transverse colon with a 3 mm residual adenoma, removed by cold snare.",
        expected(
            L(size_mm=3, size_class="diminutive", location="transverse", histology="adenoma"),
            resection=["cold_snare"],
        ),
    ),
    # --- British spelling
    (
        "A 7 mm polyp in the caecum, polypectomised with a cold snare.",
        expected(L(size_mm=7, size_class="small", location="cecum"), resection=["cold_snare"]),
    ),
    (
        "Large pedunculated tumour in the sigmoid colon, 25 mm, no haemorrhage after hot snare "
        "polypectomy.",
        expected(
            L(size_mm=25, size_class="large", location="sigmoid", paris="0-Ip"),
            resection=["hot_snare"],
        ),
    ),
    (
        "The oesophagus and stomach were not examined. Colonoscopy: 5 mm tubular adenoma in the "
        "rectum.",
        expected(
            L(size_mm=5, size_class="diminutive", location="rectum", histology="tubular_adenoma")
        ),
    ),
    (
        "Laterally spreading tumour, granular homogeneous type, 30 mm, in the caecum; piecemeal "
        "EMR.",
        expected(
            L(size_mm=30, size_class="large", location="cecum", lst="LST-G-H"),
            resection=["piecemeal", "emr"],
        ),
    ),
    (
        "Caecal pole: 4 mm sessile serrated lesion.",
        expected(
            L(
                size_mm=4,
                size_class="diminutive",
                location="cecum",
                histology="sessile_serrated_lesion",
            )
        ),
    ),
    (
        "Flat lesion, 10 mm, at the splenic flexure, Paris 0-IIb, NICE 2, tattooed.",
        expected(
            L(size_mm=10, size_class="large", location="splenic_flexure", paris="0-IIb", nice="2")
        ),
    ),
]

STYLE_CASES += [
    # --- full reports: an indication names earlier lesions, an impression restates the findings
    (
        "Indication: surveillance, previous 12 mm adenoma removed by EMR in 2019. Findings: "
        "4 mm polyp in the rectum, CSP. Repeat colonoscopy in 5 years.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum"),
            resection=["cold_snare"],
            years=5,
        ),
    ),
    (
        "FINDINGS: 8 mm sessile polyp in the ascending colon, CSP. 4 mm polyp in the rectum, CSP. "
        "IMPRESSION: 1. Ascending colon polyp (8 mm). 2. Rectal polyp (4 mm).",
        expected(
            L(size_mm=8, size_class="small", location="ascending", paris="0-Is"),
            L(size_mm=4, size_class="diminutive", location="rectum"),
            resection=["cold_snare"],
        ),
    ),
    (
        "Two 4 mm polyps in the rectum, cold snare. Impression: two 4 mm rectal polyps removed.",
        expected(
            *[L(size_mm=4, size_class="diminutive", location="rectum")] * 2,
            resection=["cold_snare"],
        ),
    ),
    (
        "Findings: 5 mm polyp in the caecum, cold snare. Diagnosis: caecal polyp, likely adenoma.",
        expected(
            L(
                size_mm=5,
                size_class="diminutive",
                location="cecum",
                histology="adenoma",
                hedged=True,
            ),
            resection=["cold_snare"],
        ),
    ),
    # --- counted groups
    (
        "Four polyps: two 3 mm HPs in the rectum and two 6 mm TAs in the sigmoid colon.",
        expected(
            *[L(size_mm=3, size_class="diminutive", location="rectum", histology="hyperplastic")]
            * 2,
            *[L(size_mm=6, size_class="small", location="sigmoid", histology="tubular_adenoma")]
            * 2,
        ),
    ),
    (
        "Two polyps in the caecum (5 mm and 7 mm), both tubular adenomas.",
        expected(
            L(size_mm=5, size_class="diminutive", location="cecum", histology="tubular_adenoma"),
            L(size_mm=7, size_class="small", location="cecum", histology="tubular_adenoma"),
        ),
    ),
    (
        "Three diminutive polyps in the rectum, removed with cold snare. Pathology: hyperplastic "
        "polyps.",
        expected(
            *[L(size_class="diminutive", location="rectum", histology="hyperplastic")] * 3,
            resection=["cold_snare"],
        ),
    ),
    # --- numbered addenda with bare numbers
    (
        "1. Caecum: 6 mm polyp. 2. Rectum: 3 mm polyp. Path: 1 TA; 2 HP.",
        expected(
            L(size_mm=6, size_class="small", location="cecum", histology="tubular_adenoma"),
            L(size_mm=3, size_class="diminutive", location="rectum", histology="hyperplastic"),
        ),
    ),
    # --- notes with bare Paris classes and no lesion word
    (
        "asc 12mm IIa+IIc lesion, EMR",
        expected(
            L(size_mm=12, size_class="large", location="ascending", paris="0-IIa+IIc"),
            resection=["emr"],
        ),
    ),
    (
        "T colon 6mm IIa, NICE 2, JNET 2A, CSP. rect 4mm Ip",
        expected(
            L(
                size_mm=6,
                size_class="small",
                location="transverse",
                paris="0-IIa",
                nice="2",
                jnet="2A",
            ),
            L(size_mm=4, size_class="diminutive", location="rectum", paris="0-Ip"),
            resection=["cold_snare"],
        ),
    ),
    # --- a hedged diagnosis belongs to the lesion it follows
    (
        "A 6 mm polyp in the sigmoid colon, possibly an adenoma.",
        expected(
            L(size_mm=6, size_class="small", location="sigmoid", histology="adenoma", hedged=True)
        ),
    ),
    (
        "A 6 mm polyp in the sigmoid, adenoma vs hyperplastic.",
        expected(
            L(size_mm=6, size_class="small", location="sigmoid", histology="adenoma", hedged=True)
        ),
    ),
    (
        "Features suggestive of a polyp in the caecum, not confirmed on reinspection.",
        expected(hedges=(H(location="cecum"),)),
    ),
]

STYLE_CASES += [
    # --- distances along the colon are not sizes; "the polyp" is the polyp just described
    (
        "Sigmoid colon 25 cm: 5 mm polyp, CSP.",
        expected(
            L(size_mm=5, size_class="diminutive", location="sigmoid"), resection=["cold_snare"]
        ),
    ),
    (
        "A 20 mm LST-G in the rectum at 8 cm from the anal verge, removed by EMR; tattoo placed.",
        expected(
            L(size_mm=20, size_class="large", location="rectum", lst="LST-G"), resection=["emr"]
        ),
    ),
    (
        "A 12 mm polyp in the sigmoid colon, hot snare. Tattoo placed 3 cm distal to the lesion.",
        expected(L(size_mm=12, size_class="large", location="sigmoid"), resection=["hot_snare"]),
    ),
    (
        "A polyp in the sigmoid colon. The polyp measured 6 mm and was removed by cold snare.",
        expected(L(size_mm=6, size_class="small", location="sigmoid"), resection=["cold_snare"]),
    ),
    ("A 1 cm area of erythema in the rectum.", expected()),
    ("Angiodysplasia 4 mm in the caecum, treated with APC.", expected()),
    # --- template and British negations
    ("Polyps: 0. BBPS: 9.", expected(no_polyps=True, bbps=9)),
    ("Good colour and vascular pattern throughout. Tumour-free colon.", expected(no_polyps=True)),
    (
        "Polyps: 1. Rectum: 0.4 cm polyp, removed with cold snare.",
        expected(
            L(size_mm=4, size_class="diminutive", location="rectum"), resection=["cold_snare"]
        ),
    ),
]


def test_there_are_at_least_sixty_style_reports() -> None:
    assert len(STYLE_CASES) >= 60


@pytest.mark.parametrize(("text", "want"), STYLE_CASES, ids=[c[0][:50] for c in STYLE_CASES])
def test_extract_findings_in_real_styles(text: str, want: dict[str, Any]) -> None:
    assert extract_findings(text) == want


def test_there_are_at_least_sixty_sentences() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(("text", "want"), CASES, ids=[c[0][:50] for c in CASES])
def test_extract_findings(text: str, want: dict[str, Any]) -> None:
    assert extract_findings(text) == want


def test_lesions_keep_text_order() -> None:
    found = extract_findings(
        "A polyp in the rectum. A polyp in the cecum. A polyp at the splenic flexure."
    )
    assert [x["location"] for x in found["lesions"]] == ["rectum", "cecum", "splenic_flexure"]


def test_schema_version_and_type_errors() -> None:
    assert FINDINGS_SCHEMA_VERSION == "1"
    with pytest.raises(TypeError):
        extract_findings(None)  # type: ignore[arg-type]


def test_empty_text_states_nothing() -> None:
    assert extract_findings("") == expected()
