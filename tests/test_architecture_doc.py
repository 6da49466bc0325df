"""docs/architecture.md stays the map: it names every module of the four packages, and every
module path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("metrics", "model", "studies", "workbench")


def _modules() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "versions" in relative.parts or path.name == "__init__.py":
                continue  # migrations are listed as a folder; packages by their modules
            found.add(relative.as_posix())
    return found


def test_the_map_names_every_module() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(m for m in _modules() if f"`{m}`" not in text)
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_every_module_the_map_names_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:metrics|model|studies|workbench)/[\w/]+\.py)`", text))
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []
