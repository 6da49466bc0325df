"""CLI start-up: wall time of `medvision --help` and `medvision GROUP --help` in fresh processes.

Baseline measured in the same run: `python -c pass` (the interpreter alone) and the import
of every command module up front (what the CLI did before it read one command table), so
the ratios say what the lazy table saves on this machine. Writes the table into
docs/benchmarks.md under '## CLI start-up'. Usage: python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.cli import COMMANDS  # noqa: E402

SECTION = "## CLI start-up"
# the installed entry point when there is one (what a user types), else the module
_SCRIPT = Path(sys.executable).with_name("medvision")
MEDVISION = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "workbench.cli"]


def wall(command: list[str], repeat: int) -> float:
    """Median wall seconds of `command` over `repeat` fresh processes."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="Do not touch docs/.")
    args = parser.parse_args()

    modules = sorted({c.target.partition(":")[0] for c in COMMANDS.values()})
    baseline = wall([sys.executable, "-c", "pass"], args.repeat)
    eager = wall([sys.executable, "-c", "; ".join(f"import {m}" for m in modules)], args.repeat)
    rows = [("medvision --help", wall([*MEDVISION, "--help"], args.repeat))]
    rows += [
        (f"medvision {name} --help", wall([*MEDVISION, name, "--help"], args.repeat))
        for name in COMMANDS
    ]

    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        "`python bench/cli_startup.py`: median wall time of "
        f"{args.repeat} fresh processes each. Machine: {os.cpu_count()}-core CPU, "
        f"Python {platform.python_version()}, 1-minute load {load:.1f} when measured. "
        f"Baselines in the same run: the interpreter alone {baseline:.2f} s; importing every "
        f"command module up front (the CLI before its lazy command table) {eager:.2f} s.",
        "",
        "| command | seconds | x interpreter | x all modules up front |",
        "|---|---:|---:|---:|",
        *(f"| `{name}` | {t:.2f} | {t / baseline:.1f} | {t / eager:.2f} |" for name, t in rows),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        path = ROOT / "docs" / "benchmarks.md"
        text = path.read_text(encoding="utf-8")
        start = text.find(SECTION)
        if start == -1:
            text = text.rstrip("\n") + "\n\n" + section
        else:
            end = text.find("\n## ", start + len(SECTION))
            text = text[:start] + section + ("" if end == -1 else text[end + 1 :])
        path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
