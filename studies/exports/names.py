"""File names of downloads and written outputs: no shell-special characters.

A study or system name may hold spaces, parentheses, quotes or slashes ("Demo reader study
(synthetic)"); a file named after it must be usable in a shell without quoting.
`file_slug` is the one rule every download and output name goes through.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def file_slug(name: str, default: str = "export") -> str:
    """`name` as a file-name part: lower-case letters, digits, '.', '_' and '-' only.

    Runs of anything else become one '-'; a name with nothing left gives `default`.
    """
    slug = re.sub(r"-{2,}", "-", _UNSAFE.sub("-", name.strip().lower())).strip("-._")
    return slug or default
