"""Coverage bench: the 95% interval coverage and the null rejection rate of every interval and
test the workbench shows, over simulated reader studies with known truth.

Each scenario of `studies.reader_stats.simulation.SCENARIOS` (case difficulty, rater
leniency, rater x system taste, report effects, Davidson ties, position bias, unequal
workloads, a small study) is simulated `--studies` times; a section module measures its
methods on them and returns one row per method: coverage of the estimand (the method's
point estimate on a population-sized study of the scenario) and the share of null studies
(every system equally strong) in which the method rejects at 5% (family-wise where the
method corrects for several comparisons). A default should cover 0.93-0.97 and reject a
true null at most 6% of the time; alternatives are shown to say where each fails.

Sections are modules next to this file: coverage_bt.py (Bradley-Terry, win rates, sign
tests), coverage_likert.py (Likert means, paired tests, the mixed model, harm
non-inferiority, agreement), coverage_mrmc.py (MRMC and power). Each exposes
`section_rows(scenario, null, n_studies, seed) -> list[dict]` with the keys "method",
"default", "quantity", "coverage", "rejection" (a float or None when it does not apply) and
"coverage_se", "rejection_se": their Monte Carlo standard errors (`montecarlo.pooled`, each
study a cluster). A verdict outside a target by less than 1.96 standard errors says
"within Monte Carlo error": more studies, not another method, would settle it.

Usage: python bench/coverage.py [--studies 200] [--section bt] [--scenario NAME] [--only PART]
[--write-docs] [--json PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs_section import cpu_name, write_section  # noqa: E402

from studies.reader_stats.simulation import SCENARIOS, null_version  # noqa: E402

SECTION = "## Reader statistics: coverage and type-I error"
SECTIONS = ("bt", "likert", "mrmc")
COVERAGE_BAND = (0.93, 0.97)
MAX_REJECTION = 0.06


def load_section(name: str) -> Any | None:
    """The section module `coverage_<name>`, or None when it does not exist (yet)."""
    try:
        return importlib.import_module(f"coverage_{name}")
    except ModuleNotFoundError as error:
        if error.name == f"coverage_{name}":
            return None
        raise


def _fmt(value: float | None) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def verdict(row: dict[str, Any]) -> str:
    """'ok' when the row is within the targets, else what fails (for defaults and
    alternatives), with "(within Monte Carlo error)" when every failing rate is less than
    1.96 of its Monte Carlo standard errors from its target."""
    problems = []
    distances = []  # how far past its target each failing rate is, in standard errors
    coverage, rejection = row.get("coverage"), row.get("rejection")

    def distance(value: float, bound: float, se: float | None) -> float:
        return abs(value - bound) / se if _known(se) and se else math.inf

    if _known(coverage):
        if coverage < COVERAGE_BAND[0]:
            problems.append("undercovers")
            distances.append(distance(coverage, COVERAGE_BAND[0], row.get("coverage_se")))
        elif coverage > COVERAGE_BAND[1]:
            problems.append("conservative")
            distances.append(distance(coverage, COVERAGE_BAND[1], row.get("coverage_se")))
    # A one-sided test at 0.025 (row "nominal") is held to the target scaled alike: 0.03.
    limit = MAX_REJECTION * float(row.get("nominal", 0.05)) / 0.05
    if _known(rejection) and rejection > limit:
        problems.append("type-I too high")
        distances.append(distance(rejection, limit, row.get("rejection_se")))
    if not problems:
        return "ok"
    noise = " (within Monte Carlo error)" if max(distances) < 1.96 else ""
    return ", ".join(problems) + noise


def _cell(value: float | None, se: float | None) -> str:
    text = _fmt(value)
    return f"{text} ± {se:.3f}" if text and _known(se) else text


def markdown(rows: list[dict[str, Any]]) -> str:
    """The bench table: one row per (section, scenario, method)."""
    lines = [
        "| section | scenario | method | quantity | default | coverage | null rejection "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['section']} | {row['scenario']} | {row['method']} | {row.get('quantity', '')} "
            f"| {'yes' if row.get('default') else ''} "
            f"| {_cell(row.get('coverage'), row.get('coverage_se'))} "
            f"| {_cell(row.get('rejection'), row.get('rejection_se'))} | {verdict(row)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200, help="simulated studies per scenario")
    parser.add_argument("--section", action="append", choices=SECTIONS, help="repeatable")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable")
    parser.add_argument(
        "--only",
        action="append",
        help="measure only this part of a section that has parts (likert: means, paired, "
        "mixed, harm, agreement); repeatable",
    )
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--write-docs", action="store_true", help="write docs/benchmarks.md")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()
    scenarios = args.scenario or list(SCENARIOS)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for name in args.section or SECTIONS:
        module = load_section(name)
        if module is None:
            print(f"section {name}: bench/coverage_{name}.py not present, skipped")
            continue
        if args.only and hasattr(module, "ONLY"):
            unknown = set(args.only) - set(module.PARTS)
            if unknown:
                parser.error(f"--only {', '.join(sorted(unknown))}: {name} has {module.PARTS}")
            module.ONLY = set(args.only)
        for scenario_name in scenarios:
            scenario = SCENARIOS[scenario_name]
            t0 = time.perf_counter()
            found = module.section_rows(scenario, null_version(scenario), args.studies, args.seed)
            for row in found:
                rows.append({"section": name, "scenario": scenario_name, **row})
            print(
                f"{name} / {scenario_name}: {len(found)} rows in {time.perf_counter() - t0:.1f} s"
            )
    table = markdown(rows)
    print(table)
    failing = [r for r in rows if r.get("default") and verdict(r) != "ok"]
    beyond = [r for r in failing if "Monte Carlo" not in verdict(r)]
    summary = (
        f"{len(rows)} rows; defaults outside the targets: {len(failing)}, "
        f"{len(beyond)} of them by more than Monte Carlo error"
    ) + (
        ""
        if not failing
        else " ("
        + "; ".join(f"{r['section']}/{r['scenario']}/{r['method']}: {verdict(r)}" for r in failing)
        + ")"
    )
    print(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float) + "\n")
    if args.write_docs:
        chosen = "".join(f"--section {name} " for name in args.section or [])
        chosen += "".join(f"--scenario '{name}' " for name in args.scenario or [])
        section = (
            f"{SECTION}\n\n"
            f"`python bench/coverage.py {chosen}--studies {args.studies}` on {cpu_name()} "
            f"({os.cpu_count()} cores, no GPU), {time.perf_counter() - started:.0f} s. "
            "Coverage: share of 95% intervals that contain the estimand (the method's point "
            "estimate on a population-sized study of the scenario); null rejection: share of "
            "studies with every system equally strong in which the method rejects at 5% "
            "(family-wise for corrected families). Targets for a default: coverage "
            f"{COVERAGE_BAND[0]}-{COVERAGE_BAND[1]}, null rejection at most {MAX_REJECTION}. "
            "'±': the Monte Carlo standard error, each study a cluster (its intervals share "
            "cases and raters); a verdict 'within Monte Carlo error' is less than 1.96 of them "
            "past its target. Pairwise judgments do not "
            "depend on case difficulty or rater leniency (those shift Likert scores only), so "
            "the 'independent' and 'case+rater' scenarios give the same pairwise studies.\n\n"
            f"{table}\n\n{summary}\n"
        )
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
