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
"default", "quantity", "coverage", "rejection" (a float or None when it does not apply).

Usage: python bench/coverage.py [--studies 200] [--section bt] [--scenario NAME] [--only PART]
[--write-docs]
"""

from __future__ import annotations

import argparse
import importlib
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


def verdict(row: dict[str, Any]) -> str:
    """'ok' when the row is within the targets, else what fails (for defaults and alternatives)."""
    problems = []
    coverage, rejection = row.get("coverage"), row.get("rejection")
    if coverage is not None and not math.isnan(coverage):
        if coverage < COVERAGE_BAND[0]:
            problems.append("undercovers")
        elif coverage > COVERAGE_BAND[1]:
            problems.append("conservative")
    # A one-sided test at 0.025 (row "nominal") is held to the target scaled alike: 0.03.
    limit = MAX_REJECTION * float(row.get("nominal", 0.05)) / 0.05
    if rejection is not None and not math.isnan(rejection) and rejection > limit:
        problems.append("type-I too high")
    return "ok" if not problems else ", ".join(problems)


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
            f"| {'yes' if row.get('default') else ''} | {_fmt(row.get('coverage'))} "
            f"| {_fmt(row.get('rejection'))} | {verdict(row)} |"
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
    summary = f"{len(rows)} rows; defaults outside the targets: {len(failing)}" + (
        ""
        if not failing
        else " ("
        + "; ".join(f"{r['section']}/{r['scenario']}/{r['method']}: {verdict(r)}" for r in failing)
        + ")"
    )
    print(summary)
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
            "With this many studies, a coverage of 0.95 is measured to about +-"
            f"{1.96 * math.sqrt(0.95 * 0.05 / max(args.studies, 1)):.3f} and a 5% rejection "
            f"rate to about +-{1.96 * math.sqrt(0.05 * 0.95 / max(args.studies, 1)):.3f}, so a "
            "verdict within that distance of a target is noise. Pairwise judgments do not "
            "depend on case difficulty or rater leniency (those shift Likert scores only), so "
            "the 'independent' and 'case+rater' scenarios give the same pairwise studies.\n\n"
            f"{table}\n\n{summary}\n"
        )
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
