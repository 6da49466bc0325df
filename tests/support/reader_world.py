"""A small SYNTHETIC world for reader studies: a benchmark of generated images, systems and
their cached reports, written straight into the store (no model needed).

Used by the reader-study tests, the browser test and the rater load benchmark. Every
case, image and report here is synthetic and labelled so.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from metrics.clinical.vocab import HISTOLOGIES, location_phrase, size_class, subset
from metrics.clinical.vocab import LOCATIONS as SITES
from studies.store.db import Store
from studies.store.schema import Assignment, Benchmark, Case, Generation, StudyItem, System

# Values of the one findings vocabulary; a report names a site as a reader writes it.
LOCATIONS = tuple(
    map(location_phrase, subset(SITES, ("cecum", "ascending", "transverse", "sigmoid", "rectum")))
)
SHAPES = ("sessile (Paris 0-Is)", "flat (Paris 0-IIa)", "pedunculated (Paris 0-Ip)")
HISTOLOGY = subset(HISTOLOGIES, ("adenoma", "hyperplastic", "sessile_serrated_lesion"))


@dataclass
class SyntheticWorld:
    benchmark: str
    split: str
    systems: list[str]
    case_keys: list[str]
    root: Path


def _png(path: Path, seed: int) -> str:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (96, 72), (150 + rng.randint(0, 60), 60, 60))
    draw = ImageDraw.Draw(image)
    x, y = rng.randint(10, 60), rng.randint(10, 40)
    draw.ellipse((x, y, x + 20, y + 16), fill=(220, 150, 140))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def synthetic_report(case_index: int, quality: int, seed: int = 0) -> str:
    """A short synthetic colonoscopy report; lower `quality` drops and blurs details."""
    rng = random.Random(f"{seed}:{case_index}")
    size = rng.randint(3, 18)
    location = rng.choice(LOCATIONS)
    shape = rng.choice(SHAPES)
    if quality >= 2:
        return (
            f"Findings: one {size} mm {shape} polyp in the {location}, removed by cold snare. "
            f"Bowel preparation adequate. Recommendation: surveillance colonoscopy in "
            f"{3 if size >= 10 else 5} years. (Synthetic case {case_index}.)"
        )
    if quality == 1:
        return (
            f"Findings: a polyp of about {size + 2} mm in the {location}. "
            f"Recommendation: follow-up as appropriate. (Synthetic case {case_index}.)"
        )
    return f"Findings: normal colonoscopy, no polyps seen. (Synthetic case {case_index}.)"


def build_world(
    store: Store,
    root: Path,
    *,
    n_cases: int = 12,
    systems: tuple[str, ...] = ("sys-alpha", "sys-beta", "sys-gamma"),
    benchmark: str = "synthetic-reader",
    split: str = "test",
    seed: int = 0,
) -> SyntheticWorld:
    """Benchmark + cases (with PNG images under `root`) + systems + one generation each."""
    root.mkdir(parents=True, exist_ok=True)
    with store.session() as session:
        bench = Benchmark(
            name=benchmark,
            loader="synthetic",
            root=str(root.resolve()),
            task="report",
            synthetic=True,
            description="SYNTHETIC reader-study cases (generated images and reports)",
        )
        session.add(bench)
        session.flush()
        rows = []
        for index in range(n_cases):
            rel = f"images/img_{index:04d}.png"
            digest = _png(root / rel, seed * 10_000 + index)
            no_polyps = index % 4 == 3
            findings = {
                "no_polyps": no_polyps,
                "polyp_count": 0 if no_polyps else 1,
                "lesions": []
                if no_polyps
                else [{"histology": HISTOLOGY[index % 3], "size_class": size_class(7)}],
            }
            case = Case(
                benchmark_id=bench.id,
                case_key=f"case-{index:04d}",
                split=split,
                modality="image",
                media=[{"path": rel, "sha256": digest, "kind": "image"}],
                references=[synthetic_report(index, 2, seed)],
                findings=findings,
                meta={"synthetic": True},
                content_hash=digest,
            )
            session.add(case)
            rows.append(case)
        session.flush()
        for quality, name in enumerate(reversed(systems)):
            fingerprint = hashlib.sha256(f"synthetic-system:{name}".encode()).hexdigest()
            system = System(
                name=name,
                kind="template",
                version="1",
                config={"kind": "template", "synthetic": True},
                fingerprint=fingerprint,
                description="synthetic system for reader-study tests",
            )
            session.add(system)
            session.flush()
            for index, case in enumerate(rows):
                session.add(
                    Generation(
                        system_fingerprint=fingerprint,
                        system_id=system.id,
                        case_id=case.id,
                        prompt_hash="synthetic",
                        text=synthetic_report(index, min(quality, 2), seed),
                        meta={"synthetic": True},
                    )
                )
        keys = [c.case_key for c in rows]
    return SyntheticWorld(benchmark, split, list(systems), keys, root)


def set_report(store: Store, system: str, case_key: str, text: str) -> None:
    """Replace the cached report of `system` for `case_key` (tests of the identity filter)."""
    with store.session() as session:
        generation = session.scalar(
            select(Generation)
            .join(System, System.id == Generation.system_id)
            .join(Case, Case.id == Generation.case_id)
            .where(System.name == system, Case.case_key == case_key)
        )
        generation.text = text


def case_key_of(store: Store, token: str) -> str:
    """The case key behind a task's token (which case a rater was given)."""
    with store.session() as session:
        return session.scalar(
            select(Case.case_key)
            .join(StudyItem, StudyItem.case_id == Case.id)
            .join(Assignment, Assignment.item_id == StudyItem.id)
            .where(Assignment.token == token)
        )
