"""The held-out report set: field accuracy of `medvision extract` against hand-written gold.

`tests/metrics/data/heldout_reports/*.json` holds colonoscopy findings sections and short
full reports in the styles real reports are written in (numbered polyp lists with a pathology
addendum by number, telegraphic notes, abbreviations, sizes in cm, counted groups, hedges,
scars without recurrence, British spelling, normal examinations, texts that state nothing
about polyps), each with its gold findings; the conventions are in that folder's README.md.
The extractor is developed without reading this folder, so the number here is a held-out one.

Field accuracy = correct fields / scored fields, over every report, where the fields are:

- report fields: `no_polyps` (always scored; true, false and null are three values),
  `polyp_count`, `bbps_total`, `surveillance_years` (scored when the gold or the extraction
  holds a value), `resection` (scored when either lists a method; compared as a set);
- lesion fields: gold and extracted lesions are paired one-to-one by a Hungarian assignment
  that maximises the number of agreeing non-null values of `size_mm`, `size_class`,
  `location`, `paris`, `lst`, `nice`, `jnet`, `kudo`, `histology`, `dysplasia`. Every gold
  or extracted lesion scores one `lesion` field, correct when it is paired. In a pair, each of
  those ten keys and `hedged` (absent means false) is scored when either side holds a value
  (`hedged`: when either is true) and is correct when both agree (`size_mm` within 0.05 mm).
  Every non-null value of an unpaired lesion is a wrong field.

Fields both sides leave empty are not scored, so a silent extractor gains nothing from them.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from typer.testing import CliRunner

from metrics.clinical import normalize_findings
from metrics.clinical.vocab import LESION_FIELDS
from workbench.cli import app

HELDOUT = Path(__file__).parent / "data" / "heldout_reports"
BAR = 0.95
LESION_KEYS = (*LESION_FIELDS, "dysplasia")
REPORT_KEYS = ("no_polyps", "polyp_count", "bbps_total", "surveillance_years", "resection")
FIELDS = (*REPORT_KEYS, "lesion", *LESION_KEYS, "hedged")


def load_heldout() -> list[dict[str, Any]]:
    """Every held-out report: {"id", "style", "text", "findings"}, in file order."""
    rows: list[dict[str, Any]] = []
    for path in sorted(HELDOUT.glob("*.json")):
        rows.extend(json.loads(path.read_text(encoding="utf-8")))
    return rows


def _same(key: str, gold: Any, found: Any) -> bool:
    if key == "size_mm" and gold is not None and found is not None:
        return abs(float(gold) - float(found)) < 0.05
    if key == "hedged":
        return bool(gold) == bool(found)
    return gold == found


def _stated(key: str, value: Any) -> bool:
    return bool(value) if key == "hedged" else value is not None


def _agreement(gold: dict[str, Any], found: dict[str, Any]) -> int:
    return sum(
        1
        for key in LESION_KEYS
        if gold.get(key) is not None and _same(key, gold.get(key), found.get(key))
    )


def score_report(gold: dict[str, Any], found: dict[str, Any]) -> Counter[tuple[str, bool]]:
    """(field, correct) -> number of scored fields of one report (see the module docstring)."""
    tally: Counter[tuple[str, bool]] = Counter()
    tally["no_polyps", gold["no_polyps"] is found.get("no_polyps")] += 1
    for key in ("polyp_count", "bbps_total", "surveillance_years"):
        g, f = gold.get(key), found.get(key)
        if g is not None or f is not None:
            tally[key, g is not None and f is not None and abs(float(g) - float(f)) < 1e-9] += 1
    g_res, f_res = set(gold.get("resection") or ()), set(found.get("resection") or ())
    if g_res or f_res:
        tally["resection", g_res == f_res] += 1

    g_lesions, f_lesions = gold["lesions"], found.get("lesions") or []
    pairs: list[tuple[int, int]] = []
    if g_lesions and f_lesions:
        agree = np.array([[_agreement(g, f) for f in f_lesions] for g in g_lesions])
        rows, cols = linear_sum_assignment(-agree)
        pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
    for gi, fi in pairs:
        tally["lesion", True] += 1
        g, f = g_lesions[gi], f_lesions[fi]
        for key in (*LESION_KEYS, "hedged"):
            if _stated(key, g.get(key)) or _stated(key, f.get(key)):
                tally[key, _same(key, g.get(key), f.get(key))] += 1
    paired_g, paired_f = {gi for gi, _ in pairs}, {fi for _, fi in pairs}
    unpaired = [g for i, g in enumerate(g_lesions) if i not in paired_g]
    unpaired += [f for i, f in enumerate(f_lesions) if i not in paired_f]
    for lesion in unpaired:
        tally["lesion", False] += 1
        for key in (*LESION_KEYS, "hedged"):
            if _stated(key, lesion.get(key)):
                tally[key, False] += 1
    return tally


def accuracy(tally: Counter[tuple[str, bool]], fields: tuple[str, ...] = FIELDS) -> float:
    scored = sum(n for (key, _), n in tally.items() if key in fields)
    correct = sum(n for (key, ok), n in tally.items() if key in fields and ok)
    return correct / scored if scored else float("nan")


def extract_through_cli(texts: list[str]) -> list[dict[str, Any]]:
    stdin = "".join(json.dumps({"text": text}) + "\n" for text in texts)
    result = CliRunner().invoke(app, ["extract"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # An empty text is a line of its own, so the outputs line up with the reports.
    assert len(lines) == len(texts), f"{len(lines)} outputs for {len(texts)} reports"
    return [json.loads(line) for line in lines]


def measure() -> tuple[Counter[tuple[str, bool]], dict[str, Counter[tuple[str, bool]]], str]:
    """Tallies overall and per style, and the printed table."""
    reports = load_heldout()
    found = extract_through_cli([r["text"] for r in reports])
    total: Counter[tuple[str, bool]] = Counter()
    by_style: dict[str, Counter[tuple[str, bool]]] = {}
    misses: list[str] = []
    for report, extracted in zip(reports, found, strict=True):
        tally = score_report(report["findings"], extracted)
        total.update(tally)
        by_style.setdefault(report["style"], Counter()).update(tally)
        if any(not ok for (_, ok) in tally):
            misses.append(report["id"])
    lines = ["| field | scored | correct | accuracy |", "|---|---:|---:|---:|"]
    for key in FIELDS:
        scored = total[key, True] + total[key, False]
        if scored:
            lines.append(
                f"| {key} | {scored} | {total[key, True]} | {accuracy(total, (key,)):.3f} |"
            )
    lines.append(
        f"| **overall** | {sum(total.values())} | "
        f"{sum(n for (_, ok), n in total.items() if ok)} | {accuracy(total):.3f} |"
    )
    lines += ["", "| style | reports | accuracy |", "|---|---:|---:|"]
    counts = Counter(r["style"] for r in reports)
    lines += [f"| {s} | {counts[s]} | {accuracy(t):.3f} |" for s, t in by_style.items()]
    lines += ["", f"reports with a wrong field: {', '.join(misses) or 'none'}"]
    return total, by_style, "\n".join(lines)


def test_heldout_gold_is_in_the_vocabulary_and_covers_the_styles() -> None:
    reports = load_heldout()
    assert len(reports) >= 120
    assert len({r["id"] for r in reports}) == len(reports)
    for report in reports:
        gold = report["findings"]
        normalize_findings(gold, where=report["id"])  # raises on a value outside the vocabulary
        assert gold["no_polyps"] in (True, False, None), report["id"]
        assert (gold["no_polyps"] is False) == bool(gold["lesions"]), report["id"]
        assert all(set(lesion) == {*LESION_KEYS, "hedged"} for lesion in gold["lesions"])
    styles = Counter(r["style"] for r in reports)
    assert min(styles.values()) >= 8 and len(styles) >= 10
    assert sum(1 for r in reports if r["findings"]["no_polyps"] is None) >= 12
    assert sum(1 for r in reports for les in r["findings"]["lesions"] if les["hedged"]) >= 8


def test_score_report_counts_missing_and_invented_lesions() -> None:
    gold = {
        "no_polyps": False,
        "polyp_count": 1,
        "lesions": [{**dict.fromkeys(LESION_KEYS), "size_mm": 6, "location": "cecum"}],
        "bbps_total": None,
        "resection": [],
        "surveillance_years": None,
    }
    assert accuracy(score_report(gold, gold)) == 1.0
    silent = {"no_polyps": None, "polyp_count": None, "lesions": [], "resection": []}
    # no_polyps, polyp_count, the lesion and its two values: all wrong
    assert score_report(gold, silent) == Counter(
        {
            ("no_polyps", False): 1,
            ("polyp_count", False): 1,
            ("lesion", False): 1,
            ("size_mm", False): 1,
            ("location", False): 1,
        }
    )
    doubled = {**gold, "lesions": gold["lesions"] * 2}
    assert accuracy(score_report(gold, doubled)) < 1.0


def test_heldout_field_accuracy_through_medvision_extract() -> None:
    total, _, table = measure()
    print("\n" + table)
    assert accuracy(total) >= BAR, table
