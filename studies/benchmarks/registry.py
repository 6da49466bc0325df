"""The registry of benchmark loaders, in the order `medvision benchmarks list` prints them."""

from __future__ import annotations

import importlib

from studies.benchmarks.base import BenchmarkLoader

# name -> "module:attribute"; loaders import lazily so a broken optional dependency of one
# layout never hides the others.
LOADER_PATHS: dict[str, str] = {
    "polyp-reports": "studies.benchmarks.polyp_reports:LOADER",
    "kvasir-vqa-x1": "studies.benchmarks.kvasir_vqa:LOADER",
    "iu-xray": "studies.benchmarks.iu_xray:LOADER",
    "polyp-video": "studies.benchmarks.polyp_video:LOADER",
    "synthetic-colon": "studies.benchmarks.synthetic_colon:LOADER",
}


def loader_names() -> list[str]:
    return list(LOADER_PATHS)


def get_loader(name: str) -> BenchmarkLoader:
    if name not in LOADER_PATHS:
        known = ", ".join(LOADER_PATHS)
        raise KeyError(f"unknown benchmark loader {name!r}; known loaders: {known}")
    module, attribute = LOADER_PATHS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def loaders() -> list[BenchmarkLoader]:
    return [get_loader(name) for name in LOADER_PATHS]
