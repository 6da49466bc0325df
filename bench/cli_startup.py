"""CLI start-up: wall time of `medvision --help` and `medvision GROUP --help` in fresh processes.

Baselines measured in the same run: `python -c pass` (the interpreter alone), the import of
every command module up front, and, with `--before REV` (default ebb17df, the CLI before its
lazy command table), `medvision --help` and `medvision GROUP --help` of that commit, run from a
temporary git worktree with the same interpreter, so the ratios say what the change saved.
Writes the table into
docs/benchmarks.md under '## CLI start-up'. Usage: python bench/cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from docs_section import write_section  # noqa: E402

from workbench.cli import COMMANDS  # noqa: E402

SECTION = "## CLI start-up"
# the installed entry point when there is one (what a user types), else the module
_SCRIPT = Path(sys.executable).with_name("medvision")
MEDVISION = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "workbench.cli"]


def wall(command: list[str], repeat: int, cwd: Path = ROOT) -> float:
    """Median wall seconds of `command` over `repeat` fresh processes."""
    # Run from `cwd` with its packages first on the path (a worktree of an older commit).
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="Do not touch docs/.")
    parser.add_argument("--before", default="ebb17df", help="Commit to compare with ('' for none).")
    args = parser.parse_args()

    modules = sorted({c.target.partition(":")[0] for c in COMMANDS.values()})
    baseline = wall([sys.executable, "-c", "pass"], args.repeat)
    eager = wall([sys.executable, "-c", "; ".join(f"import {m}" for m in modules)], args.repeat)
    rows = [("medvision --help", wall([*MEDVISION, "--help"], args.repeat))]
    rows += [
        (f"medvision {name} --help", wall([*MEDVISION, name, "--help"], args.repeat))
        for name in COMMANDS
    ]

    before: dict[str, float] = {}
    if args.before:
        with tempfile.TemporaryDirectory() as folder:
            tree = Path(folder) / "before"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), args.before],
                cwd=ROOT,
                capture_output=True,
                check=True,
            )
            try:
                old = [sys.executable, "-c", "from workbench.cli import app; app()"]
                for name, _ in rows:
                    words = name.split()[1:]
                    try:
                        before[name] = wall([*old, *words], args.repeat, cwd=tree)
                    except subprocess.CalledProcessError:
                        continue  # a command that did not exist then
            finally:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )

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
        f"'before': the same command at {args.before or '(none)'}; '-': not a command then.",
        "",
        "| command | seconds | before | x before | x interpreter | x all modules up front |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| `{name}` | {t:.2f} | "
            + (f"{before[name]:.2f} | {t / before[name]:.2f}" if name in before else "- | -")
            + f" | {t / baseline:.1f} | {t / eager:.2f} |"
            for name, t in rows
        ),
        "",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
