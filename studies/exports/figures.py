"""The one figure writer: a matplotlib figure as PNG (300 dpi), SVG or PDF, for pages'
download buttons and the commands' `--out` folders."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Format -> MIME type, in the order pages offer them.
FIGURE_FORMATS: dict[str, str] = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
}
# Print quality for raster figures (journals ask for 300 dpi).
PNG_DPI = 300


def figure_bytes(figure: Any, fmt: str) -> bytes:
    """`figure` in one of FIGURE_FORMATS."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; use one of {', '.join(FIGURE_FORMATS)}")
    buffer = io.BytesIO()
    # A fixed creation date keeps SVG and PDF files the same from run to run.
    metadata = {"Date": None} if fmt in ("svg", "pdf") else None
    figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata)
    return buffer.getvalue()


def write_figures(figures: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Every figure as NAME.png, NAME.svg and NAME.pdf in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        for fmt in FIGURE_FORMATS:
            path = out / f"{name}.{fmt}"
            path.write_bytes(figure_bytes(figure, fmt))
            written.append(path)
    return written
