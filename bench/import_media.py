"""Import cost of decoding every image and every frame (`medvision benchmarks import`).

A polyp-video dataset of frame folders (JPEG frames, written here; nothing is downloaded) is
imported into a fresh SQLite store four ways, each against baselines run in the same process:
the check as it was at ebb17df (`Image.verify()` of the first and last frame of a folder, so
truncated frames passed) and sha256 of every frame alone. Then a re-import of the unchanged
dataset (nothing decoded or hashed again) and one with --rehash (everything again).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from docs_section import write_section  # noqa: E402

SECTION = "## Import: every frame decoded"


def write_dataset(root: Path, clips: int, frames: int, width: int, height: int) -> int:
    """`clips` frame folders of `frames` JPEGs and a manifest; returns the bytes written."""
    import csv

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    total = 0
    past = time.time_ns() - 3600 * 10**9  # settled files, as a dataset on disk is
    rows = []
    for clip in range(clips):
        folder = root / "clips" / f"clip{clip:03d}"
        folder.mkdir(parents=True)
        for index in range(frames):
            phase = clip * 7 + index / 5
            base = np.stack(
                [
                    np.sin(x / 40 + phase) * 60 + 120,
                    np.cos(y / 50 + phase) * 50 + 80,
                    np.sin((x + y) / 70) * 40 + 90,
                ],
                -1,
            )
            noisy = (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
            path = folder / f"frame_{index:05d}.jpg"
            Image.fromarray(noisy).save(path, format="JPEG", quality=90)
            os.utime(path, ns=(past, past))
            total += path.stat().st_size
        rows.append({"case_id": f"clip-{clip}", "video": f"clips/clip{clip:03d}", "split": "test"})
    with open(root / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["case_id", "video", "split", "report"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "report": "A 6 mm sessile polyp in the sigmoid colon."})
    return total


def ebb17df_check(path: Path) -> int:
    """The frame-folder check at ebb17df: verify() (no pixel decode) of the ends only."""
    from PIL import Image

    from model.video import frame_files

    frames = frame_files(path)
    for frame in (frames[0], frames[-1]):
        with Image.open(frame) as image:
            image.verify()
    return len(frames)


def timed(work: Callable[..., object], repeats: int, setup: Callable[[], tuple] = tuple) -> float:
    """Median seconds of `repeats` runs of `work(*setup())`; setup is not timed."""
    times = []
    for _ in range(repeats):
        arguments = setup()
        start = time.perf_counter()
        work(*arguments)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=560)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    from studies.benchmarks import base
    from studies.benchmarks.importer import import_benchmark
    from studies.store.db import Store
    from studies.store.media import sha256_file

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "frames"
        size = write_dataset(root, args.clips, args.frames, args.width, args.height)
        n_frames = args.clips * args.frames
        counter = iter(range(10**6))

        def fresh_store() -> tuple[Store]:
            # A migrated, empty store: its creation is not part of the import's time.
            return (Store(f"sqlite:///{Path(scratch) / f'store{next(counter)}.db'}"),)

        def fresh_import(store: Store) -> None:
            import_benchmark(store, "polyp-video", root)
            store.dispose()

        def hash_all() -> None:
            for path in sorted(root.glob("clips/*/*.jpg")):
                sha256_file(path)

        fresh_import(*fresh_store())  # warm-up: imports and first-use costs, not timed
        results: dict[str, float] = {}
        results["sha256 of every frame (baseline)"] = timed(hash_all, args.repeats)
        full_check = base.check_frame_folder
        base.check_frame_folder = ebb17df_check
        try:
            results["import, ebb17df's check (baseline)"] = timed(
                fresh_import, args.repeats, fresh_store
            )
        finally:
            base.check_frame_folder = full_check
        workers = base.DECODE_WORKERS
        base.DECODE_WORKERS = 1
        try:
            results["import, every frame decoded, 1 thread"] = timed(
                fresh_import, args.repeats, fresh_store
            )
        finally:
            base.DECODE_WORKERS = workers
        results[f"import, every frame decoded, {workers} threads"] = timed(
            fresh_import, args.repeats, fresh_store
        )
        store = Store(f"sqlite:///{Path(scratch) / 'again.db'}")
        import_benchmark(store, "polyp-video", root)
        results["re-import, unchanged"] = timed(
            lambda: import_benchmark(store, "polyp-video", root), args.repeats
        )
        results["re-import, --rehash"] = timed(
            lambda: import_benchmark(store, "polyp-video", root, rehash=True), args.repeats
        )
        store.dispose()

    old = results["import, ebb17df's check (baseline)"]
    hashing = results["sha256 of every frame (baseline)"]
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"`python bench/import_media.py` (defaults): {args.clips} frame folders of "
        f"{args.frames} JPEG frames, {args.width}x{args.height} ({n_frames} frames, "
        f"{size / 1e6:.1f} MB), imported into a fresh SQLite store; median of {args.repeats}. "
        f"Machine: 2-core x86-64 CPU VM, no GPU (Python {platform.python_version()}), 1-minute "
        f"load {load:.1f} when measured (the machine was shared). Baselines in the same run: "
        "the import with ebb17df's check (verify() of each folder's first and last frame, "
        "which let truncated frames through) and sha256 of every frame alone.",
        "",
        "| what | seconds | ms per frame | x ebb17df's import | x sha256 alone |",
        "|---|---:|---:|---:|---:|",
    ]
    for what, seconds in results.items():
        lines.append(
            f"| {what} | {seconds:.2f} | {seconds / n_frames * 1000:.2f} | "
            f"{seconds / old:.2f} | {seconds / hashing:.2f} |"
        )
    lines += [
        "",
        "A first import now decodes every frame (the price of refusing a truncated frame at "
        "import instead of on a rater's screen); a re-import of unchanged files decodes and "
        "hashes nothing, as before; `--rehash` decodes and hashes everything again. The "
        "decoding threads only help where cores are idle: on a machine as loaded as this one "
        "they add nothing.",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        write_section(SECTION, section)


if __name__ == "__main__":
    main()
