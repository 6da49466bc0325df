"""Writing one bench's section of docs/benchmarks.md: the section from its `## heading` to the
next `## ` is replaced (or appended when missing); the other sections stay as they are."""

from __future__ import annotations

import platform
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(heading: str, section: str, path: Path = DOCS) -> None:
    """Put `section` (which starts with `heading`) in place of the old one in `path`."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    section = section.rstrip("\n") + "\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if end == -1 else "\n" + text[end + 1 :])
    path.write_text(text, encoding="utf-8")


def cpu_name() -> str:
    """The processor's model name where Linux reports it, else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
