"""Regenerate the initial migration from studies.store.schema (while unreleased).

Usage: python -m studies.store.migrations.autogen
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from studies.store.db import MIGRATIONS_DIR, alembic_config

INITIAL = "0001"


def main() -> None:
    versions = MIGRATIONS_DIR / "versions"
    for path in versions.glob(f"{INITIAL}_*.py"):
        path.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        command.revision(
            alembic_config(url),
            message="initial schema",
            autogenerate=True,
            rev_id=INITIAL,
        )
    written = next(versions.glob(f"{INITIAL}_*.py"))
    ruff = Path(sys.executable).parent / "ruff"
    if ruff.exists():
        subprocess.run([str(ruff), "format", "-q", str(written)], check=False)
        subprocess.run([str(ruff), "check", "-q", "--fix", str(written)], check=False)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
