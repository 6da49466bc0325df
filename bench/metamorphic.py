"""Clinical metric, metamorphic suite: every seeded report pair of tests/metrics/metamorphic.py.

Each pair is scored against its case's ground truth before and after the edit; the table
says per edit kind how many pairs, the mean absolute change of the per-case clinical score,
and the share within the threshold (meaning-preserving: |delta| <= 0.02; meaning-changing:
a drop of at least 0.2 and an added error of the expected class). Writes the table into
docs/benchmarks.md under '## Clinical metric: metamorphic suite'.
Usage: python bench/metamorphic.py [--per-kind 20] [--seed N] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "metrics"))  # the suite lives with the tests

from docs_section import cpu_name, write_section  # noqa: E402
from metamorphic import (  # noqa: E402
    CHANGING_DROP,
    PRESERVING_LIMIT,
    SEED,
    generate_pairs,
    markdown_table,
    measure,
)

from metrics.clinical import CLINICAL_SIGNATURE  # noqa: E402

SECTION = "## Clinical metric: metamorphic suite"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=20, help="Pairs of each edit kind.")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--no-write", action="store_true", help="Do not touch docs/.")
    args = parser.parse_args()

    start = time.perf_counter()
    pairs = generate_pairs(per_kind=args.per_kind, seed=args.seed)
    outcomes = [measure(pair) for pair in pairs]
    seconds = time.perf_counter() - start
    preserving = [o for o in outcomes if o.pair.preserving]
    changing = [o for o in outcomes if not o.pair.preserving]

    def share(group: list) -> str:
        return f"{sum(o.within_threshold for o in group)}/{len(group)}"

    lines = [
        SECTION,
        "",
        f"`python bench/metamorphic.py`: {len(pairs)} report pairs ({args.per_kind} per edit "
        f"kind, seed {args.seed}), each scored against its case's ground truth before and after "
        f"the edit with `{CLINICAL_SIGNATURE}`. delta = edited minus original per-case "
        f"clinical score. Threshold: meaning-preserving |delta| <= {PRESERVING_LIMIT}; "
        f"meaning-changing delta <= -{CHANGING_DROP} and an added error of the expected "
        "class. 'expected class significant': the share of pairs whose added error of that "
        "class the scores grade clinically significant. Machine: "
        f"{os.cpu_count()}-core {cpu_name()}, Python {platform.python_version()}; "
        f"{seconds:.1f} s for the suite.",
        "",
        *markdown_table(outcomes),
        "",
        f"Within threshold: meaning-preserving {share(preserving)}, "
        f"meaning-changing {share(changing)}.",
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
